"""``stargan score``: translations of built-in test faces against their exact ground truth.

For each domain, every test image whose labels that single change alters is translated;
the ideal translation is the renderer's output for the same face with the changed label
(same identity, pose, light, noise). Reported per domain: mean L1 and PSNR to the ground
truth (and, for scale, those of the untranslated input), and the share of translations
whose target attribute a classifier trained on real images judges right.
"""

from __future__ import annotations

from typing import Any

import torch

from stargan.data.builtin import BUILTIN, counterfactual_images, load_builtin
from stargan.data.dataset import to_model_range, to_uint8
from stargan.errors import StarGANError
from stargan.evaluate.classifier import cached_classifier, predict
from stargan.translate import Translator

CLASSIFIER_TRAIN_IMAGES = 10000


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of uint8 images [N, 3, H, W] (peak 255), capped at 100."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(255.0**2 / mse.clamp_min(1e-10))).clamp_max(100.0)


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute difference of uint8 images, on a [0, 1] scale."""
    return (a.float() - b.float()).abs().flatten(1).mean(1) / 255.0


def score_model(
    tr: Translator,
    n: int = 500,
    batch_size: int = 100,
    classifier_steps: int = 600,
    progress: bool = True,
) -> dict[str, Any]:
    dataset = tr.meta.get("dataset")
    if dataset not in BUILTIN:
        raise StarGANError(
            f"score needs a model trained on built-in data ({', '.join(BUILTIN)})"
            f"; this one was trained on {dataset!r}"
        )
    seed, size, spec = int(tr.meta.get("data_seed", 0)), tr.image_size, tr.spec
    attrs = spec.names if dataset == "faces-attr" else ()
    test = load_builtin(dataset, "test", size, n, seed, attrs, progress=progress)
    train = load_builtin(
        dataset, "train", size, CLASSIFIER_TRAIN_IMAGES, seed, attrs, progress=progress
    )
    clf = cached_classifier(train, (dataset, seed, size, spec.names), classifier_steps, progress)
    x_u8, c_org = test.batch(torch.arange(len(test)))
    x = to_model_range(x_u8)
    real_pred = predict(clf, x, spec.kind)
    real_acc = {
        name: float((real_pred[:, i] == c_org[:, i]).float().mean())
        for i, name in enumerate(spec.names)
    }
    per_domain = {}
    for i, (name, c_trg) in enumerate(spec.single_changes(c_org)):
        rows = (c_trg != c_org).any(1).nonzero().flatten()
        truth, valid = counterfactual_images(
            seed, "test", rows.tolist(), size, spec, c_trg[rows].numpy()
        )
        rows, truth = rows[torch.from_numpy(valid)], torch.from_numpy(truth[valid])
        if len(rows) == 0:
            continue
        truth = truth.permute(0, 3, 1, 2)
        fake = _translate(tr, x[rows], c_trg[rows], batch_size)
        pred = predict(clf, to_model_range(fake), spec.kind)
        per_domain[name] = {
            "n": len(rows),
            "target_acc": float((pred[:, i] == c_trg[rows, i]).float().mean()),
            "l1": float(l1(fake, truth).mean()),
            "psnr": float(psnr(fake, truth).mean()),
            "identity_l1": float(l1(x_u8[rows], truth).mean()),
            "identity_psnr": float(psnr(x_u8[rows], truth).mean()),
        }
    return {
        "dataset": dataset,
        "n_test": len(test),
        "image_size": size,
        "classifier_real_acc": real_acc,
        "per_domain": per_domain,
        "overall": _overall(per_domain),
    }


def _translate(
    tr: Translator, x: torch.Tensor, c_trg: torch.Tensor, batch_size: int
) -> torch.Tensor:
    outs = []
    with torch.no_grad():
        for s in range(0, x.size(0), batch_size):
            y = tr.G(x[s : s + batch_size].to(tr.device), c_trg[s : s + batch_size].to(tr.device))
            outs.append(to_uint8(y).cpu())
    return torch.cat(outs)


def _overall(per_domain: dict[str, dict[str, float]]) -> dict[str, float]:
    total = sum(d["n"] for d in per_domain.values())
    if total == 0:
        return {}
    keys = ("target_acc", "l1", "psnr", "identity_l1", "identity_psnr")
    return {k: sum(d[k] * d["n"] for d in per_domain.values()) / total for k in keys}


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"{'domain':<14}{'n':>6}{'target acc':>12}{'L1':>8}{'PSNR dB':>9}"
        f"{'input L1':>10}{'input PSNR':>12}"
    ]
    rows = list(result["per_domain"].items()) + [("overall", result["overall"])]
    for name, d in rows:
        n = d.get("n", sum(v["n"] for v in result["per_domain"].values()))
        lines.append(
            f"{name:<14}{n:>6}{d['target_acc'] * 100:>11.1f}%{d['l1']:>8.4f}"
            f"{d['psnr']:>9.2f}{d['identity_l1']:>10.4f}{d['identity_psnr']:>12.2f}"
        )
    acc = ", ".join(f"{k} {v * 100:.1f}%" for k, v in result["classifier_real_acc"].items())
    lines.append(f"classifier accuracy on real test images: {acc}")
    return "\n".join(lines)
