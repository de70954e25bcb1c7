"""StarGAN v1 losses as plain functions (paper section 3.1, eqs. 1-7).

Each returns ``(loss, parts)`` where ``parts`` maps paper names to detached tensors, so
logging costs no device sync until it is read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stargan.data.labels import LabelKind

Parts = dict[str, torch.Tensor]


def classification_loss(logits: torch.Tensor, c: torch.Tensor, kind: LabelKind) -> torch.Tensor:
    """Domain classification, eqs. 2-3: -log D_cls(c|x).

    multi-label: binary cross-entropy summed over attributes, averaged over the batch;
    categorical: cross-entropy against the one-hot label's class.
    """
    if kind == "categorical":
        return F.cross_entropy(logits, c.argmax(1))
    bce = F.binary_cross_entropy_with_logits(logits, c, reduction="sum")
    return bce / logits.size(0)


def gradient_penalty(
    d_src_hat: torch.Tensor, x_hat: torch.Tensor, loss_scale: float | None = None
) -> torch.Tensor:
    """WGAN-GP term of eq. 8: E[(||grad_x_hat D_src(x_hat)||_2 - 1)^2], per sample.

    ``loss_scale`` (fp16 training): differentiate ``loss_scale * D_src`` so small gradients
    survive fp16, then divide the gradient by it (the norm is taken in fp32). It must be
    small enough for fp16 (see ``train.precision.PENALTY_SCALE_CAP``)."""
    out = d_src_hat if loss_scale is None else d_src_hat.float() * loss_scale
    (grad,) = torch.autograd.grad(
        outputs=out,
        inputs=x_hat,
        grad_outputs=torch.ones_like(out),
        create_graph=True,
        retain_graph=True,
        only_inputs=True,
    )
    if loss_scale is not None:
        grad = grad.float() / loss_scale
    norm = grad.flatten(1).norm(2, dim=1)
    return ((norm - 1.0) ** 2).mean()


def d_loss(
    d_src_real: torch.Tensor,
    d_cls_real: torch.Tensor,
    c_org: torch.Tensor,
    d_src_fake: torch.Tensor,
    gp: torch.Tensor,
    kind: LabelKind,
    lambda_cls: float,
    lambda_gp: float,
) -> tuple[torch.Tensor, Parts]:
    """L_D = -L_adv + lambda_cls L_cls^r (eq. 6), with L_adv the WGAN-GP objective (eq. 8).

    -L_adv = -E[D_src(x)] + E[D_src(G(x, c))] + lambda_gp E[(||grad D_src(x_hat)|| - 1)^2].
    """
    loss_real = -d_src_real.mean()
    loss_fake = d_src_fake.mean()
    loss_cls = classification_loss(d_cls_real, c_org, kind)
    loss = loss_real + loss_fake + lambda_cls * loss_cls + lambda_gp * gp
    parts = {
        "D/loss_real": loss_real,
        "D/loss_fake": loss_fake,
        "D/loss_cls": loss_cls,
        "D/loss_gp": gp,
        "D/loss": loss,
    }
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
) -> tuple[torch.Tensor, Parts]:
    """L_G = L_adv + lambda_cls L_cls^f + lambda_rec L_rec (eq. 7), with
    L_adv = -E[D_src(G(x, c))] and L_rec = E[||x - G(G(x, c), c')||_1] (eq. 4)."""
    loss_fake = -d_src_fake.mean()
    loss_cls = classification_loss(d_cls_fake, c_trg, kind)
    loss_rec = (x_real - x_rec).abs().mean()
    loss = loss_fake + lambda_cls * loss_cls + lambda_rec * loss_rec
    parts = {
        "G/loss_fake": loss_fake,
        "G/loss_cls": loss_cls,
        "G/loss_rec": loss_rec,
        "G/loss": loss,
    }
    return loss, {k: v.detach() for k, v in parts.items()}
