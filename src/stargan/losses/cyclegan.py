"""CycleGAN's losses (Zhu et al. 2017, sections 3 and 4) as plain functions.

Paper names: G: X -> Y, F: Y -> X, D_X judges domain X, D_Y domain Y. Each function
returns ``(loss, dict_of_parts)``; the parts are detached tensors for logging.
"""

from __future__ import annotations

import torch


def lsgan(d_out: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN term (paper section 4, Mao et al. 2017): mean (D(.) - 1)^2 for
    ``real``, mean D(.)^2 otherwise."""
    return (d_out - 1.0).pow(2).mean() if real else d_out.pow(2).mean()


def d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """One discriminator's loss, halved as the paper does "to slow down D":
    1/2 [E_y (D_Y(y) - 1)^2 + E_x D_Y(G(x))^2]; ``d_fake`` on fakes from the image pool."""
    real, fake = lsgan(d_real, True), lsgan(d_fake, False)
    loss = 0.5 * (real + fake)
    return loss, {"real": real.detach(), "fake": fake.detach(), "loss": loss.detach()}


def g_loss(
    d_y_fake: torch.Tensor,
    d_x_fake: torch.Tensor,
    cycles: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    identities: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None,
    lambda_cyc: float,
    identity_ratio: float,
) -> tuple[torch.Tensor, dict]:
    """L(G, F) = L_LSGAN(G) + L_LSGAN(F) + lambda L_cyc + identity_ratio lambda L_identity.

    L_LSGAN(G) = E_x (D_Y(G(x)) - 1)^2 (``d_y_fake`` = D_Y(G(x))), likewise F with D_X.
    ``cycles`` = (x, F(G(x)), y, G(F(y))): L_cyc = E|F(G(x)) - x|_1 + E|G(F(y)) - y|_1 (eq. 2).
    ``identities`` = (x, F(x), y, G(y)): L_identity = E|F(x) - x|_1 + E|G(y) - y|_1
    (section 5.2, Taigman et al. 2017); None leaves it out.
    """
    adv = lsgan(d_y_fake, True) + lsgan(d_x_fake, True)
    cyc = _l1_pair(*cycles)
    loss = adv + lambda_cyc * cyc
    parts = {"adv": adv.detach(), "cyc": cyc.detach()}
    if identities is not None:
        idt = _l1_pair(*identities)
        loss = loss + identity_ratio * lambda_cyc * idt
        parts["idt"] = idt.detach()
    parts["loss"] = loss.detach()
    return loss, parts


def _l1_pair(
    x: torch.Tensor, x_back: torch.Tensor, y: torch.Tensor, y_back: torch.Tensor
) -> torch.Tensor:
    """Mean absolute error of each pair, summed: E|x_back - x|_1 + E|y_back - y|_1."""
    return (x_back - x).abs().mean() + (y_back - y).abs().mean()
