"""StarGAN v2 losses as plain functions (paper section 2, eqs. 1-5; appendix B).

Adversarial: non-saturating, on the logit of the target domain's head; R1 penalty on
real images (``losses.terms.r1_penalty``, shared with v1's ns-r1). Each ``*_loss`` returns
``(loss, parts)`` with detached parts for logging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Parts = dict[str, torch.Tensor]


def adversarial(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Binary cross-entropy of D's logits against all-real (1) or all-fake (0) targets."""
    target = torch.full_like(logits, 1.0 if real else 0.0)
    return F.binary_cross_entropy_with_logits(logits, target)


def d_loss(
    d_real: torch.Tensor, d_fake: torch.Tensor, r1: torch.Tensor, lambda_r1: float
) -> tuple[torch.Tensor, Parts]:
    """L_D = BCE(D_y(x), real) + BCE(D_y~(G(x, s~)), fake) + lambda_r1 R1."""
    loss_real = adversarial(d_real, True)
    loss_fake = adversarial(d_fake, False)
    loss = loss_real + loss_fake + lambda_r1 * r1
    parts = {"real": loss_real, "fake": loss_fake, "reg": r1, "loss": loss}
    return loss, {k: v.detach() for k, v in parts.items()}


def diversity_weight(lambda_ds: float, step: int, ds_iter: int) -> float:
    """lambda_ds at iteration ``step`` (0-based): linear from lambda_ds to 0 over ds_iter
    iterations, then 0 (the official code subtracts lambda_ds / ds_iter per iteration)."""
    return lambda_ds * max(0.0, 1.0 - step / ds_iter)


def g_loss(
    d_fake: torch.Tensor,
    s_pred: torch.Tensor,
    s_trg: torch.Tensor,
    x_fake: torch.Tensor,
    x_fake2: torch.Tensor,
    x_rec: torch.Tensor,
    x_real: torch.Tensor,
    lambda_sty: float,
    lambda_ds: float,
    lambda_cyc: float,
) -> tuple[torch.Tensor, Parts]:
    """L_G = L_adv + lambda_sty L_sty - lambda_ds L_ds + lambda_cyc L_cyc (eq. 5):
    L_sty = |s~ - E_y~(G(x, s~))|, L_ds = |G(x, s~1) - G(x, s~2)| (x_fake2 detached),
    L_cyc = |x - G(G(x, s~), E_y(x))|, each a mean."""
    loss_adv = adversarial(d_fake, True)
    loss_sty = (s_pred - s_trg).abs().mean()
    loss_ds = (x_fake - x_fake2).abs().mean()
    loss_cyc = (x_rec - x_real).abs().mean()
    loss = loss_adv + lambda_sty * loss_sty - lambda_ds * loss_ds + lambda_cyc * loss_cyc
    parts = {"adv": loss_adv, "sty": loss_sty, "ds": loss_ds, "cyc": loss_cyc, "loss": loss}
    return loss, {k: v.detach() for k, v in parts.items()}
