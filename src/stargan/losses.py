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
    # sqrt(sum(g^2)) as the official solver writes it: torch's norm() reduces in another
    # order, which moved G by 1.9e-4 from the official weights after 10 iterations
    norm = torch.sqrt(torch.sum(grad.flatten(1) ** 2, dim=1))
    return ((norm - 1.0) ** 2).mean()


def r1_penalty(
    d_src_real: torch.Tensor, x_real: torch.Tensor, loss_scale: float | None = None
) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): 0.5 E[||grad_x D(x)||^2] on real images, as the official
    StarGAN v2 ``r1_reg`` (the 0.5 is there; the paper's gamma is the caller's weight);
    for v1, the gradient of D_src's patch map summed. ``loss_scale``: as
    :func:`gradient_penalty`."""
    out = d_src_real.sum() if loss_scale is None else d_src_real.float().sum() * loss_scale
    (grad,) = torch.autograd.grad(out, x_real, create_graph=True)
    if loss_scale is not None:
        grad = grad.float() / loss_scale
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()


def classifier_gradient_penalty(
    d_cls_real: torch.Tensor,
    c_org: torch.Tensor,
    kind: LabelKind,
    x_real: torch.Tensor,
    loss_scale: float | None = None,
) -> torch.Tensor:
    """E[||grad_x -log D_cls(c_org|x)||^2] over real images: the squared norm of each
    image's own classification-loss gradient, averaged over the batch.

    A classifier whose loss changes little under small input changes cannot be fooled by
    specks of colour: to move its verdict, G has to change the image a lot (input-gradient
    regularisation, Ross & Doshi-Velez, AAAI 2018; Santurkar et al., NeurIPS 2019 on
    the perceptually aligned gradients of robust classifiers). D has no batch coupling,
    so the gradient of the summed per-image losses is each image's own gradient.
    ``loss_scale``: as :func:`gradient_penalty`."""
    out = classification_loss(d_cls_real.float(), c_org, kind) * d_cls_real.size(0)
    if loss_scale is not None:
        out = out * loss_scale
    (grad,) = torch.autograd.grad(out, x_real, create_graph=True)
    if loss_scale is not None:
        grad = grad.float() / loss_scale
    return grad.float().pow(2).flatten(1).sum(1).mean()


def total_variation(a: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between vertically and horizontally adjacent values of
    maps [N, C, H, W] (the sum of both means)."""
    dy = (a[:, :, 1:, :] - a[:, :, :-1, :]).abs().mean()
    dx = (a[:, :, :, 1:] - a[:, :, :, :-1]).abs().mean()
    return dy + dx


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
    gp: torch.Tensor,
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
    the R1 penalty and ``lambda_gp`` its weight (logged as ``D/loss_r1``). ``cls_grad``
    (:func:`classifier_gradient_penalty`) is added with weight ``lambda_cls_grad``.
    """
    loss_real = adversarial(d_src_real, True, adv)
    loss_fake = adversarial(d_src_fake, False, adv)
    loss_cls = classification_loss(d_cls_real, c_org, kind)
    loss = loss_real + loss_fake + lambda_cls * loss_cls + lambda_gp * gp
    parts = {
        "D/loss_real": loss_real,
        "D/loss_fake": loss_fake,
        "D/loss_cls": loss_cls,
        "D/loss_gp" if adv == "wgan-gp" else "D/loss_r1": gp,
    }
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
