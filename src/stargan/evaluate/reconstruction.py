"""Cycle reconstruction: how well G undoes its own translation, on any data.

For each test image and each single-domain change of its own labels, the translation
``G(x, c_trg)`` is translated back with the image's own labels and compared with ``x``:
PSNR of ``G(G(x, c_trg), c_org)`` against ``x`` (both passes through uint8 images, as a
user's files go). STGAN (Liu et al., CVPR 2019) reports this on CelebA; it measures what
the cycle loss (paper eq. 4) asks of G, not whether the target was reached.
"""

from __future__ import annotations

from typing import Any

import torch

from stargan.evaluate.image_metrics import psnr
from stargan.evaluate.metrics import EvalContext, Metric


def run_reconstruction(ctx: EvalContext) -> dict[str, Any]:
    layout = ctx.tr.layout
    summary: dict[str, Any] = {}
    rows_out, all_db, n_total = [], [], 0
    for i, spec in enumerate(layout.specs):
        x_u8, c_own = ctx.test_images(i)
        n_total += len(x_u8)
        c_org = layout.encode(i, c_own)
        part_db = []
        for name, c_trg in spec.single_changes(c_own):
            rows = (c_trg != c_own).any(1).nonzero().flatten()
            if len(rows) == 0:
                continue
            c_fake = layout.encode(i, c_trg[rows])  # the fakes' own labels, back to c_org
            fake = ctx.translate(x_u8[rows], c_fake, remember=True, c_org=c_org[rows])
            rec = ctx.translate(fake, c_org[rows], c_org=c_fake)
            db = psnr(rec, x_u8[rows])
            part_db.append(db)
            rows_out.append([layout.qualified(i, name), float(db.mean()), len(rows)])
        if part_db and layout.joint:
            summary[f"{layout.datasets[i]}.rec_psnr"] = float(torch.cat(part_db).mean())
        all_db += part_db
    if all_db:
        summary["rec_psnr"] = float(torch.cat(all_db).mean())
    table = {
        "title": "Cycle reconstruction PSNR (dB) per target domain",
        "kind": "table",
        "columns": ["target", "PSNR dB", "translations"],
        "rows": rows_out,
        "formats": ["float", "int"],
    }
    return {"n": n_total, "summary": summary, "tables": [table]}


METRIC = Metric(
    "reconstruction",
    "cycle reconstruction PSNR of G(G(x, c_trg), c_org) against x (paper eq. 4; STGAN)",
    run_reconstruction,
    formats={"rec_psnr": "float"},
)
