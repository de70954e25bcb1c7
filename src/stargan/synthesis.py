"""StarGAN v2 synthesis as plain functions of the networks (paper section 2, Figs. 1, 4-6).

Latent-guided: s = F(z, y), optionally truncated toward the domain's mean style (``psi``);
reference-guided: s = E(x_ref, y_ref); the output is G(x, s). The grid builders return
uint8 image stacks laid out like the paper's figures, for training samples and
``stargan sample`` alike. Masks (w_hpf > 0) are passed through as ``masks``. ``G`` is the
generator or anything called like it, ``G(x, s, masks=...)`` (``StyleModel.run_g``: G in
the model's inference precision).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from stargan.data.dataset import to_uint8

N_MEAN_STYLE = 10_000  # latents averaged for a domain's mean style (official: 10,000)


def latents(seeds: Sequence[int], latent_dim: int) -> torch.Tensor:
    """One z [len(seeds), latent_dim] per seed: z of seed k is the same in every call."""
    return torch.stack(
        [torch.randn(latent_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    )


@torch.no_grad()
def mean_style(
    mapping: nn.Module, domain: int, latent_dim: int, n: int = N_MEAN_STYLE
) -> torch.Tensor:
    """The domain's average style [style_dim] over n seeded latents (truncation's centre)."""
    device = next(mapping.parameters()).device
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(0)).to(device)
    y = torch.full((n,), domain, dtype=torch.long, device=device)
    return mapping(z, y).mean(0)


def latent_styles(
    mapping: nn.Module,
    z: torch.Tensor,
    y: torch.Tensor,
    psi: float = 1.0,
    centres: Mapping[int, torch.Tensor] | None = None,
) -> torch.Tensor:
    """s = F(z, y); psi < 1 pulls each style toward its domain's mean (psi 0: the mean).
    ``centres``: domain -> mean style already computed (each costs N_MEAN_STYLE F passes);
    the missing ones are computed here."""
    s = mapping(z, y)
    if psi == 1.0:
        return s
    known = dict(centres or {})
    for d in y.unique().tolist():
        if d not in known:
            known[d] = mean_style(mapping, d, z.size(1))
    s_avg = torch.stack([known[int(d)] for d in y])
    return torch.lerp(s_avg, s, psi)


@torch.no_grad()
def latent_grid(
    G: Callable[..., torch.Tensor],
    mapping: nn.Module,
    x_src: torch.Tensor,
    num_domains: int,
    z: torch.Tensor,
    psi: float = 1.0,
    masks=None,
    *,
    domains: Sequence[int] | None = None,
    centres: Mapping[int, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, int]:
    """Rows: sources; columns: the source, then for each domain one output per z
    (paper Fig. 4). Returns (uint8 [rows * cols, 3, H, W], cols). ``domains``: which
    domains, in column order (default all ``num_domains``); ``centres``: as
    :func:`latent_styles`."""
    n = x_src.size(0)
    cols = [x_src]
    for domain in range(num_domains) if domains is None else domains:
        y = torch.full((n,), domain, dtype=torch.long, device=x_src.device)
        for z_k in z:
            s = latent_styles(mapping, z_k.expand(n, -1).to(x_src.device), y, psi, centres)
            cols.append(G(x_src, s, masks=masks))
    return to_uint8(torch.stack(cols, 1).flatten(0, 1)), len(cols)


@torch.no_grad()
def interpolation_grid(
    G: Callable[..., torch.Tensor],
    s_from: torch.Tensor,
    s_to: torch.Tensor,
    x_src: torch.Tensor,
    steps: int,
    masks=None,
) -> tuple[torch.Tensor, int]:
    """Style interpolation strips: a row per source, the source, then G(x, s) for ``steps``
    styles spaced evenly on the line from ``s_from`` to ``s_to`` (each [style_dim], or
    [N, style_dim] per source), both ends included. Returns (uint8 cells, cols)."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    n = x_src.size(0)
    cols = [x_src]
    for t in torch.linspace(0.0, 1.0, steps).tolist():
        s = torch.lerp(s_from, s_to, t).expand(n, -1).to(x_src.device)
        cols.append(G(x_src, s, masks=masks))
    return to_uint8(torch.stack(cols, 1).flatten(0, 1)), len(cols)


@torch.no_grad()
def reference_grid(
    G: Callable[..., torch.Tensor],
    style_encoder: nn.Module,
    x_src: torch.Tensor,
    x_ref: torch.Tensor,
    y_ref: torch.Tensor,
    masks=None,
) -> tuple[torch.Tensor, int]:
    """First row: a blank corner, then the references; each next row: a source, then it
    rendered in each reference's style and domain (paper Fig. 1 / 5)."""
    s_ref = style_encoder(x_ref, y_ref)
    rows = [torch.cat([torch.full_like(x_ref[:1], 1.0), x_ref])]
    for i in range(x_src.size(0)):
        x = x_src[i : i + 1].expand(x_ref.size(0), -1, -1, -1)
        m = (
            None
            if masks is None
            else [mk[i : i + 1].expand(x_ref.size(0), -1, -1, -1) for mk in masks]
        )
        rows.append(torch.cat([x_src[i : i + 1], G(x, s_ref, masks=m)]))
    return to_uint8(torch.cat(rows)), x_ref.size(0) + 1


@torch.no_grad()
def cycle_grid(
    G: Callable[..., torch.Tensor],
    style_encoder: nn.Module,
    x_src: torch.Tensor,
    y_src: torch.Tensor,
    x_ref: torch.Tensor,
    y_ref: torch.Tensor,
    masks=None,
    fake_masks=None,
) -> tuple[torch.Tensor, int]:
    """Columns: source, reference, the source in the reference's style, and that output
    mapped back with the source's own style (the cycle loss's reconstruction)."""
    x_fake = G(x_src, style_encoder(x_ref, y_ref), masks=masks)
    x_rec = G(x_fake, style_encoder(x_src, y_src), masks=fake_masks)
    return to_uint8(torch.stack([x_src, x_ref, x_fake, x_rec], 1).flatten(0, 1)), 4
