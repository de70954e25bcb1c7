"""``stargan score``: translations of built-in test faces against their exact ground truth.

For each domain, every test image whose labels that single change alters is translated;
the ideal translation is the renderer's output for the same face with the changed label
(same identity, pose, light, noise). Reported per domain: mean L1 and PSNR to the ground
truth (and, for scale, those of the untranslated input), and the share of translations
whose target attribute a classifier trained on real images judges right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stargan.data import faces
from stargan.data.builtin import BUILTIN, counterfactual_images, labels_of, load_builtin
from stargan.data.dataset import to_model_range, to_uint8
from stargan.data.joint import LabelLayout
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.evaluate.classifier import cached_classifier, predict
from stargan.evaluate.image_metrics import l1, psnr, ssim
from stargan.translate import Translator

CLASSIFIER_TRAIN_IMAGES = 10000


def score_model(
    tr: Translator,
    n: int = 500,
    batch_size: int = 100,
    classifier_steps: int = 600,
    progress: bool = True,
    lpips_model: torch.nn.Module | None = None,
    changes: str = "single",
    source: str | None = None,
) -> dict[str, Any]:
    """Score every built-in dataset of the model against every built-in dataset's domains:
    for joint models this includes cross-dataset translations (faces-attr images given
    faces-expr expressions, paper Fig. 1 right), judged against the exact ground truth.
    With ``lpips_model`` (images of 32 px or more) LPIPS to the ground truth is added.
    ``changes="multi"``: the multi-attribute combinations (paper Fig. 4) of multi-label
    datasets instead of single changes, each scored on the images it changes in every
    named domain, right only when the judge reads every one of them right. ``source``
    ("neutral", "Male=0"): only test images of those domains are translated."""
    scorer = _Scorer(tr, batch_size, lpips_model)
    sources = _builtin_sources(tr)
    if not any(tr.layout.specs[j].changes(changes) for j, _, _ in sources):
        raise StarGANError(
            "multi-attribute changes need a multi-label dataset with attributes of at least "
            "two kinds (e.g. hair colour and sex); this model has none"
        )
    size, layout = tr.image_size, tr.layout
    judges = {
        j: builtin_judge(name, seed, layout.specs[j], size, classifier_steps, progress)
        for j, name, seed in sources
    }
    real_acc, per_domain, by_pair = {}, {}, {}
    for i, name, seed in sources:
        test = load_builtin(
            name, "test", size, n, seed, _attrs(name, layout.specs[i]), progress=progress
        )
        x_u8 = torch.from_numpy(np.array(test.images)).permute(0, 3, 1, 2)
        x = to_model_range(x_u8)
        params = [faces.params_for(seed, "test", k) for k in range(len(test))]
        own = torch.from_numpy(labels_of(name, layout.specs[i], params))
        keep = source_rows(tr, source, i, own, "test image")
        for j, target_name, _ in sources:
            spec, prefix = layout.specs[j], _prefix(layout, i, j)
            c_own = torch.from_numpy(labels_of(target_name, spec, params))
            if i == j:
                real_acc |= _real_accuracy(judges[j], x, c_own, spec, layout.qualified(j, ""))
            rows_scored = {}
            for change in spec.changes(changes):
                c_trg = spec.change(c_own, change)
                scored = keep.clone()
                if changes == "multi":  # not rows where some named domain would not change
                    scored &= spec.changed_rows(c_own, change)
                c_trg = torch.where(scored[:, None], c_trg, c_own)
                cols = [spec.index(n) for n in change]
                result = scorer.domain(judges[j], x_u8, seed, c_own, c_trg, j, cols)
                if result is not None:
                    domain = "+".join(layout.qualified(j, n) for n in change)
                    rows_scored[f"{prefix}{domain}"] = result
            per_domain |= rows_scored
            if layout.joint and rows_scored:
                by_pair[f"{layout.datasets[i]} > {layout.datasets[j]}"] = _overall(rows_scored)
    result = {
        "dataset": "+".join(name for _, name, _ in sources),
        "n_test": n,
        "image_size": size,
        "changes": changes,
        "source": source,
        "classifier_real_acc": real_acc,
        "per_domain": per_domain,
        "overall": _overall(per_domain),
    }
    if by_pair:
        result["by_pair"] = by_pair
    return result


def source_rows(
    tr: Any, source: str | None, i: int, labels: torch.Tensor, what: str
) -> torch.Tensor:
    """Rows [N] bool of dataset ``i``'s ``labels`` that ``--from`` keeps: all, or those of
    the ``source`` domains when it names dataset ``i``'s (the RaFD protocol translates
    neutral faces only); ``what`` names the rows in the error when none is kept."""
    keep = torch.ones(labels.size(0), dtype=torch.bool)
    if source is None:
        return keep
    if not hasattr(tr, "parse_target"):
        raise StarGANError("--from is for StarGAN (v1) models")
    part, assignments = tr.parse_target(source)
    if part != i:
        return keep
    keep = tr.layout.specs[i].matching_rows(labels.float(), assignments)
    if not keep.any():
        raise StarGANError(f"no {what} is {source} (--from)")
    return keep


def _builtin_sources(tr: Translator) -> list[tuple[int, str, int]]:
    """(dataset index, built-in dataset name, data seed) of the model's built-in datasets."""
    sources = tr.meta.get("sources") or [
        {"dataset": tr.meta.get("dataset"), "data_seed": tr.meta.get("data_seed", 0)}
    ]
    found = [
        (i, str(src.get("dataset")), int(src.get("data_seed", 0)))
        for i, src in enumerate(sources)
        if isinstance(src, dict) and src.get("dataset") in BUILTIN
    ]
    if not found:
        trained_on = ", ".join(str(s.get("dataset")) for s in sources if isinstance(s, dict))
        raise StarGANError(
            f"score needs a model trained on built-in data ({', '.join(BUILTIN)}); this one "
            f"was trained on {trained_on!r}: use `stargan eval MODEL --data PATH`"
        )
    return found


def _attrs(name: str, spec: LabelSpec) -> tuple[str, ...]:
    return spec.names if name == "faces-attr" else ()


def _prefix(layout: LabelLayout, i: int, j: int) -> str:
    return f"{layout.datasets[i]} > " if layout.joint else ""


def builtin_judge(name: str, seed: int, spec: LabelSpec, size: int, steps: int, progress: bool):
    """(classifier, spec): a ResNet judge trained on real renders of built-in dataset
    ``name`` (data seed ``seed``) at ``size`` px, cached across calls."""
    train = load_builtin(
        name, "train", size, CLASSIFIER_TRAIN_IMAGES, seed, _attrs(name, spec), progress=progress
    )
    return cached_classifier(train, (name, seed, size, spec.names), steps, progress), spec


def _real_accuracy(judge, x, c_org, spec: LabelSpec, prefix: str) -> dict[str, float]:
    clf, _ = judge
    pred = predict(clf, x, spec.kind)
    return {
        f"{prefix}{name}": float((pred[:, k] == c_org[:, k]).float().mean())
        for k, name in enumerate(spec.names)
    }


class _Scorer:
    """Translations of the rows a target changes, compared with their ground truth."""

    def __init__(self, tr: Translator, batch_size: int, lpips_model) -> None:
        self.tr, self.batch_size, self.lpips_model = tr, batch_size, lpips_model

    def domain(self, judge, x_u8, seed, c_own, c_trg, j, cols: list[int]):
        clf, spec = judge
        rows, fake, truth = changed_with_truth(
            self.tr, x_u8, seed, c_own, c_trg, j, self.batch_size
        )
        if len(rows) == 0:
            return None
        pred = predict(clf, to_model_range(fake), spec.kind)
        hit = (pred[:, cols] == c_trg[rows][:, cols]).all(1).float()
        scores = {"target_acc": hit, **self._compare(fake, truth)}
        scores |= {f"identity_{m}": v for m, v in self._compare(x_u8[rows], truth).items()}
        result = _means(scores)
        if spec.kind == "categorical":
            source = c_own[rows].argmax(1)
            result["by_source"] = {
                spec.names[s]: _means(scores, source == s) for s in source.unique().tolist()
            }
        return result

    def _compare(self, images: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {"l1": l1(images, truth), "psnr": psnr(images, truth), "ssim": ssim(images, truth)}
        if self.lpips_model is not None:
            from stargan.evaluate.lpips import lpips_distance

            out["lpips"] = lpips_distance(images, truth, model=self.lpips_model)
        return out


def changed_with_truth(
    tr: Translator,
    x_u8: torch.Tensor,
    seed: int,
    c_own: torch.Tensor,
    c_trg: torch.Tensor,
    j: int = 0,
    batch_size: int = 100,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The test rows of built-in dataset ``j`` (data seed ``seed``) that ``c_trg`` changes and
    that have a ground truth: (row indices, their translations, their truths), images uint8
    [n, 3, S, S]."""
    spec = tr.layout.specs[j]
    rows = (c_trg != c_own).any(1).nonzero().flatten()
    truth, valid = counterfactual_images(
        seed, "test", rows.tolist(), x_u8.size(-1), spec, c_trg[rows].numpy()
    )
    rows, truth = rows[torch.from_numpy(valid)], torch.from_numpy(truth[valid])
    c_rows = tr.layout.encode(j, c_trg[rows])
    c_org = tr.layout.encode(j, c_own[rows])  # pairwise sets need the source
    fake = translate_batched(tr, x_u8[rows], c_rows, batch_size, c_org)
    return rows, fake, truth.permute(0, 3, 1, 2)


def _means(scores: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> dict:
    first = next(iter(scores.values()))
    mask = torch.ones(len(first), dtype=torch.bool) if mask is None else mask
    return {"n": int(mask.sum()), **{k: float(v[mask].double().mean()) for k, v in scores.items()}}


def translate_batched(
    tr: Translator,
    x: torch.Tensor,
    c_trg: torch.Tensor,
    batch_size: int,
    c_org: torch.Tensor | None = None,
) -> torch.Tensor:
    """G(x, c_trg) in batches: uint8 [N, 3, S, S] on the CPU. ``x``: uint8 images (each
    batch brought to [-1, 1] as it goes) or floats already in [-1, 1]. ``c_org``: the
    inputs' own labels, which pairwise model sets need (see :func:`generate`)."""
    outs = [torch.empty(0, 3, tr.image_size, tr.image_size, dtype=torch.uint8)]
    with torch.no_grad():
        for s in range(0, x.size(0), batch_size):
            x_batch = x[s : s + batch_size]
            if x_batch.dtype == torch.uint8:
                x_batch = to_model_range(x_batch)
            rows = slice(s, s + batch_size)
            y = generate(tr, x_batch, c_trg[rows], None if c_org is None else c_org[rows])
            outs.append(to_uint8(y).cpu())
    return torch.cat(outs)


def generate(
    tr: Translator, x: torch.Tensor, c_trg: torch.Tensor, c_org: torch.Tensor | None
) -> torch.Tensor:
    """G(x, c_trg) on the model's device. Models that need the inputs' own labels
    ``c_org`` (``needs_source``: a difference-conditioned StarGAN G; the CycleGAN
    baseline, stargan/cyclegan.py, which picks G_{source -> target} per input) get them."""
    x, c_trg = x.to(tr.device), c_trg.to(tr.device)
    return tr.generate(x, c_trg, None if c_org is None else c_org.to(tr.device))


def _overall(per_domain: dict[str, dict[str, float]]) -> dict[str, float]:
    total = sum(d["n"] for d in per_domain.values())
    if total == 0:
        return {}
    first = next(iter(per_domain.values()))
    keys = [k for k, v in first.items() if k != "n" and not isinstance(v, dict)]
    out = {k: sum(d[k] * d["n"] for d in per_domain.values()) / total for k in keys}
    return {"n": total, **out}


def format_table(result: dict[str, Any]) -> str:
    rows = list(result["per_domain"].items())
    rows += [(f"overall {k}", v) for k, v in result.get("by_pair", {}).items()]
    rows += [("overall", result["overall"])]
    width = max(14, *(len(name) + 2 for name, _ in rows))
    lines = [
        f"{'domain':<{width}}{'n':>6}{'target acc':>12}{'L1':>8}{'PSNR dB':>9}{'SSIM':>7}"
        f"{'input L1':>10}{'input PSNR':>12}{'input SSIM':>12}"
    ]
    for name, d in rows:
        if not d:
            continue
        n = d.get("n", sum(v["n"] for v in result["per_domain"].values()))
        lines.append(
            f"{name:<{width}}{n:>6}{d['target_acc'] * 100:>11.1f}%{d['l1']:>8.4f}"
            f"{d['psnr']:>9.2f}{d['ssim']:>7.3f}{d['identity_l1']:>10.4f}"
            f"{d['identity_psnr']:>12.2f}{d['identity_ssim']:>12.3f}"
        )
    acc = ", ".join(f"{k} {v * 100:.1f}%" for k, v in result["classifier_real_acc"].items())
    lines.append(f"classifier accuracy on real test images: {acc}")
    return "\n".join(lines)
