"""StarGAN v1's D and G losses as plain functions (paper section 3.1, eqs. 1-7); the
terms they share with other families are in :mod:`stargan.losses.terms`.

Each returns ``(loss, parts)`` where ``parts`` maps paper names to detached tensors, so
logging costs no device sync until it is read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stargan.data.labels import LabelKind
from stargan.losses.terms import classification_loss, total_variation

Parts = dict[str, torch.Tensor]


def adversarial(d_src: torch.Tensor, real: bool, adv: str = "wgan-gp") -> torch.Tensor:
    """The adversarial term of D_src's outputs judged as real (``real``) or fake.

    ``wgan-gp`` (eq. 8): -E[D_src] for real, E[D_src] for fake. ``ns-r1``: the
    non-saturating loss, BCE of D_src's logits, softplus(-D_src) for real and
    softplus(D_src) for fake (StarGAN v2, eq. 1)."""
    if adv == "wgan-gp":
        return -d_src.mean() if real else d_src.mean()
    if adv == "ns-r1":
        return F.softplus(-d_src if real else d_src).mean()
    raise ValueError(f"unknown adversarial loss {adv!r}")


def d_loss(
    d_src_real: torch.Tensor,
    d_cls_real: torch.Tensor,
    c_org: torch.Tensor,
    d_src_fake: torch.Tensor,
    gp: torch.Tensor | None,
    kind: LabelKind,
    lambda_cls: float,
    lambda_gp: float,
    adv: str = "wgan-gp",
    cls_grad: torch.Tensor | None = None,
    lambda_cls_grad: float = 0.0,
) -> tuple[torch.Tensor, Parts]:
    """L_D = -L_adv + lambda_cls L_cls^r (eq. 6), with L_adv the WGAN-GP objective (eq. 8).

    -L_adv = -E[D_src(x)] + E[D_src(G(x, c))] + lambda_gp E[(||grad D_src(x_hat)|| - 1)^2].
    ``adv="ns-r1"``: the non-saturating terms (see :func:`adversarial`), ``gp`` is then
    the R1 penalty and ``lambda_gp`` its weight (logged as ``D/loss_r1``); ``gp=None``
    leaves the penalty out (a step that ``loss.penalty_every`` skips). ``cls_grad``
    (:func:`classifier_gradient_penalty`) is added with weight ``lambda_cls_grad``.
    """
    loss_real = adversarial(d_src_real, True, adv)
    loss_fake = adversarial(d_src_fake, False, adv)
    loss_cls = classification_loss(d_cls_real, c_org, kind)
    loss = loss_real + loss_fake + lambda_cls * loss_cls
    parts = {"D/loss_real": loss_real, "D/loss_fake": loss_fake, "D/loss_cls": loss_cls}
    if gp is not None:
        loss = loss + lambda_gp * gp
        parts["D/loss_gp" if adv == "wgan-gp" else "D/loss_r1"] = gp
    if cls_grad is not None:
        loss = loss + lambda_cls_grad * cls_grad
        parts["D/loss_cls_grad"] = cls_grad
    parts["D/loss"] = loss
    return loss, {k: v.detach() for k, v in parts.items()}


def g_loss(
    d_src_fake: torch.Tensor,
    d_cls_fake: torch.Tensor,
    c_trg: torch.Tensor,
    x_real: torch.Tensor,
    x_rec: torch.Tensor,
    kind: LabelKind,
    lambda_cls: float,
    lambda_rec: float,
    adv: str = "wgan-gp",
    mask: torch.Tensor | None = None,
    lambda_mask: float = 0.0,
    lambda_mask_tv: float = 0.0,
) -> tuple[torch.Tensor, Parts]:
    """L_G = L_adv + lambda_cls L_cls^f + lambda_rec L_rec (eq. 7), with
    L_adv = -E[D_src(G(x, c))] and L_rec = E[||x - G(G(x, c), c')||_1] (eq. 4).

    ``adv="ns-r1"``: L_adv = E[softplus(-D_src(G(x, c)))]. ``mask`` (G's attention mask
    of the fake, 1 = keep the input): adds ``lambda_mask * E[mask]`` (GANimation's
    attention loss), so that copying the input is not free, and ``lambda_mask_tv`` times its
    total variation (mean absolute difference of neighbouring mask values), so that
    specks of change cost more than coherent regions."""
    loss_fake = adversarial(d_src_fake, True, adv)
    loss_cls = classification_loss(d_cls_fake, c_trg, kind)
    loss_rec = (x_real - x_rec).abs().mean()
    loss = loss_fake + lambda_rec * loss_rec + lambda_cls * loss_cls  # the official order
    parts = {
        "G/loss_fake": loss_fake,
        "G/loss_cls": loss_cls,
        "G/loss_rec": loss_rec,
    }
    if mask is not None:
        loss_mask = mask.float().mean()
        loss = loss + lambda_mask * loss_mask
        parts["G/loss_mask"] = loss_mask
        if lambda_mask_tv > 0:
            loss_tv = total_variation(mask.float())
            loss = loss + lambda_mask_tv * loss_tv
            parts["G/loss_mask_tv"] = loss_tv
    parts["G/loss"] = loss
    return loss, {k: v.detach() for k, v in parts.items()}
