"""Reconstruction: how well G gives an image back, by two protocols, on any data.

- **Cycle** (paper eq. 4): for each test image and each single-domain change of its own
  labels, the translation ``G(x, c_trg)`` is translated back with the image's own labels:
  PSNR of ``G(G(x, c_trg), c_org)`` against ``x``. What the cycle loss asks of G, not
  whether the target was reached.
- **Self** (STGAN, Liu et al. CVPR 2019, Table 1; AttGAN): one pass with the image's own
  labels as the target, ``G(x, c_org)``, against ``x``: PSNR and SSIM. STGAN's and
  AttGAN's reconstruction figures are this one; it measures what G keeps when nothing is
  to change (a bottleneck's blur, colour drift), and is skipped for CycleGAN pair sets,
  which return such rows unchanged by construction.

Both passes go through uint8 images, as a user's files go.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from stargan.evaluate.image_metrics import SSIM_MIN_SIZE, psnr, ssim
from stargan.evaluate.metrics import EvalContext, Metric


def _cycle_psnr(
    ctx: EvalContext, i: int, x_u8: torch.Tensor, c_own: torch.Tensor, c_org: torch.Tensor
) -> Iterator[tuple[str, torch.Tensor]]:
    """Per single-domain change of dataset ``i``: (name, PSNR per image of the way back);
    ``c_org``: the images' own labels ``c_own`` encoded for G."""
    layout = ctx.tr.layout
    for name, c_trg in layout.specs[i].single_changes(c_own):
        rows = (c_trg != c_own).any(1).nonzero().flatten()
        if len(rows) == 0:
            continue
        c_fake = layout.encode(i, c_trg[rows])  # the fakes' own labels, back to c_org
        fake = ctx.translate(x_u8[rows], c_fake, remember=True, c_org=c_org[rows])
        rec = ctx.translate(fake, c_org[rows], c_org=c_fake)
        yield name, psnr(rec, x_u8[rows])


def _self_table(rows: list[list[Any]]) -> dict[str, Any]:
    return {
        "title": "Self-reconstruction G(x, c_org) per dataset (STGAN's protocol)",
        "kind": "table",
        "columns": ["data", "PSNR dB", "SSIM", "images"],
        "rows": rows,
        "formats": ["float", "float", "int"],
    }


def run_reconstruction(ctx: EvalContext) -> dict[str, Any]:
    layout = ctx.tr.layout
    with_self = not getattr(ctx.tr, "keeps_own_domain", False)
    with_ssim = ctx.tr.image_size >= SSIM_MIN_SIZE
    summary: dict[str, Any] = {}
    cycle_rows, self_rows, all_db, self_db, self_ssim, n_total = [], [], [], [], [], 0
    for i in range(len(layout.specs)):
        x_u8, c_own = ctx.test_images(i)
        n_total += len(x_u8)
        c_org = layout.encode(i, c_own)
        part_db = []
        for name, db in _cycle_psnr(ctx, i, x_u8, c_own, c_org):
            part_db.append(db)
            cycle_rows.append([layout.qualified(i, name), float(db.mean()), len(db)])
        if part_db and layout.joint:
            summary[f"{layout.datasets[i]}.rec_psnr"] = float(torch.cat(part_db).mean())
        all_db += part_db
        if not (with_self and len(x_u8)):
            continue
        same = ctx.translate(x_u8, c_org, c_org=c_org)  # G(x, c_org): STGAN's protocol
        self_db.append(psnr(same, x_u8))
        mean_ssim = None
        if with_ssim:
            self_ssim.append(ssim(same, x_u8))
            mean_ssim = float(self_ssim[-1].mean())
        self_rows.append([ctx.data[i].label, float(self_db[-1].mean()), mean_ssim, len(x_u8)])
        if layout.joint:
            summary[f"{layout.datasets[i]}.self_rec_psnr"] = float(self_db[-1].mean())
            if with_ssim:
                summary[f"{layout.datasets[i]}.self_rec_ssim"] = mean_ssim
    if all_db:
        summary["rec_psnr"] = float(torch.cat(all_db).mean())
    if self_db:
        summary["self_rec_psnr"] = float(torch.cat(self_db).mean())
    if self_ssim:
        summary["self_rec_ssim"] = float(torch.cat(self_ssim).mean())
    tables = [
        {
            "title": "Cycle reconstruction PSNR (dB) per target domain",
            "kind": "table",
            "columns": ["target", "PSNR dB", "translations"],
            "rows": cycle_rows,
            "formats": ["float", "int"],
        }
    ]
    if self_rows:
        tables.append(_self_table(self_rows))
    notes = [] if with_ssim or not self_db else [f"no SSIM below {SSIM_MIN_SIZE} px"]
    return {"n": n_total, "summary": summary, "tables": tables, "notes": notes}


METRIC = Metric(
    "reconstruction",
    "cycle reconstruction PSNR of G(G(x, c_trg), c_org) against x (paper eq. 4), and "
    "self-reconstruction PSNR / SSIM of G(x, c_org) (STGAN's protocol)",
    run_reconstruction,
    formats={"rec_psnr": "float", "self_rec_psnr": "float", "self_rec_ssim": "float"},
)
