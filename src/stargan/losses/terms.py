"""Loss terms more than one family (or the evaluation classifiers) uses, as plain functions
of tensors: the domain classification loss, the gradient penalties (WGAN-GP, R1, D_cls's
input gradient) and total variation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stargan.data.labels import LabelKind


def classification_loss(
    logits: torch.Tensor, c: torch.Tensor, kind: LabelKind, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Domain classification, eqs. 2-3: -log D_cls(c|x).

    multi-label: binary cross-entropy summed over attributes, averaged over the batch;
    categorical: cross-entropy against the one-hot label's class. ``weights`` (the balanced
    evaluation judge, ``evaluate.domain_classifier.class_weights``): BCE's ``pos_weight``
    per attribute / cross-entropy's weight per class; None: the paper's unweighted loss.
    """
    if kind == "categorical":
        return F.cross_entropy(logits, c.argmax(1), weight=weights)
    bce = F.binary_cross_entropy_with_logits(logits, c, pos_weight=weights, reduction="sum")
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
