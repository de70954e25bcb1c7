"""Scoring on real labelled data (CelebA, expression folders, own tables): no ground truth
translation exists, so a classifier trained on the real training images judges them.

Per target domain: the share of translations the classifier assigns the target label
(``target_acc``) and, for multi-label data, the share of the other attributes it still
reads as the input's own (``keep_acc``). The classifier's accuracy on real test images
is reported beside them: it bounds what the judgements can mean. Joint models are also
judged across datasets (a CelebA face given a CK+ expression), where the input's labels
in the other dataset's terms come from that dataset's classifier.
"""

from __future__ import annotations

from typing import Any

import torch

from stargan.config import DataConfig, from_dict
from stargan.data import load_dataset, named_paths
from stargan.data.dataset import to_model_range
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.evaluate.classifier import cached_classifier, predict
from stargan.evaluate.score import _translate
from stargan.translate import Translator


def source_configs(tr: Translator, data_args: tuple[str, ...] | list[str] = ()) -> list[DataConfig]:
    """Each dataset's config as trained, with ``--data [NAME=]PATH`` values replacing the
    recorded paths (a bare path: the model's only dataset)."""
    sources = tr.meta.get("sources") or []
    if not sources or not all(isinstance(s, dict) and "data" in s for s in sources):
        raise StarGANError("this model folder does not record its data; re-export it")
    configs = [from_dict(DataConfig, s["data"], "model sources") for s in sources]
    paths = named_paths([c.label for c in configs], data_args)
    return [_with_path(c, paths.get(c.label)) for c in configs]


def _with_path(cfg: DataConfig, path: str | None) -> DataConfig:
    from dataclasses import replace

    return replace(cfg, path=path) if path else cfg


def score_real(
    tr: Translator,
    configs: list[DataConfig],
    n: int = 1000,
    classifier_steps: int = 1500,
    batch_size: int = 100,
    progress: bool = True,
) -> dict[str, Any]:
    size, layout = tr.image_size, tr.layout
    tests = [load_dataset(c, size, "test", progress) for c in configs]
    for cfg, test, spec in zip(configs, tests, layout.specs, strict=True):
        if (test.spec.names, test.spec.kind) != (spec.names, spec.kind):
            raise StarGANError(
                f"the data at {cfg.path} has domains {list(test.spec.names)}, but the model "
                f"was trained on {list(spec.names)}"
            )
    judges = []
    for cfg in configs:
        train = load_dataset(cfg, size, "train", progress)
        key = (cfg.dataset, cfg.label, cfg.path, cfg.attrs, cfg.test_split, size, len(train))
        judges.append(cached_classifier(train, key, classifier_steps, progress))
    real_acc, per_domain = {}, {}
    for i, test in enumerate(tests):
        x = to_model_range(test.batch(torch.arange(min(n, len(test))))[0])
        c_own = torch.from_numpy(test.labels[: len(x)].astype("float32"))
        real_acc |= _accuracy(predict(judges[i], x, test.spec.kind), c_own, test.spec, layout, i)
        for j, spec in enumerate(layout.specs):
            base = c_own if i == j else predict(judges[j], x, spec.kind)
            for k, (domain, c_trg) in enumerate(spec.single_changes(base)):
                rows = (c_trg != base).any(1).nonzero().flatten()
                if len(rows) == 0:
                    continue
                fake = _translate(tr, x[rows], layout.encode(j, c_trg[rows]), batch_size)
                pred = predict(judges[j], to_model_range(fake), spec.kind)
                name = f"{layout.datasets[i]} > " if layout.joint else ""
                per_domain[name + layout.qualified(j, domain)] = _judged(pred, c_trg[rows], k, spec)
    return {
        "datasets": [c.label for c in configs],
        "n_test": [min(n, len(t)) for t in tests],
        "image_size": size,
        "classifier_real_acc": real_acc,
        "per_domain": per_domain,
        "overall": _mean(per_domain),
    }


def _accuracy(pred, c_own, spec: LabelSpec, layout, i: int) -> dict[str, float]:
    if spec.kind == "categorical":
        return {
            layout.qualified(i, "(all)"): float((pred.argmax(1) == c_own.argmax(1)).float().mean())
        }
    return {
        layout.qualified(i, name): float((pred[:, k] == c_own[:, k]).float().mean())
        for k, name in enumerate(spec.names)
    }


def _judged(pred: torch.Tensor, c_trg: torch.Tensor, k: int, spec: LabelSpec) -> dict[str, float]:
    out = {"n": len(pred), "target_acc": float((pred[:, k] == c_trg[:, k]).float().mean())}
    if spec.kind == "multi" and spec.dim > 1:
        others = [m for m in range(spec.dim) if m != k and spec.group_of(spec.names[m]) is None]
        if others:
            out["keep_acc"] = float((pred[:, others] == c_trg[:, others]).float().mean())
    return out


def _mean(per_domain: dict[str, dict[str, float]]) -> dict[str, float]:
    total = sum(d["n"] for d in per_domain.values())
    if not total:
        return {}
    out = {"n": total}
    out["target_acc"] = sum(d["target_acc"] * d["n"] for d in per_domain.values()) / total
    kept = [d for d in per_domain.values() if "keep_acc" in d]
    if kept:
        out["keep_acc"] = sum(d["keep_acc"] * d["n"] for d in kept) / sum(d["n"] for d in kept)
    return out


def format_real_table(result: dict[str, Any]) -> str:
    rows = [*result["per_domain"].items(), ("overall", result["overall"])]
    width = max(14, *(len(name) + 2 for name, _ in rows))
    lines = [f"{'domain':<{width}}{'n':>6}{'target acc':>12}{'others kept':>13}"]
    for name, d in rows:
        if d:
            keep = f"{d['keep_acc'] * 100:>12.1f}%" if "keep_acc" in d else f"{'-':>13}"
            lines.append(f"{name:<{width}}{d['n']:>6}{d['target_acc'] * 100:>11.1f}%{keep}")
    acc = ", ".join(f"{k} {v * 100:.1f}%" for k, v in result["classifier_real_acc"].items())
    lines.append(f"classifier accuracy on real test images: {acc}")
    return "\n".join(lines)
