"""How an evaluation classifier (the judge) reads real test faces, value by value.

    python benchmarks/judge_reading.py --classifier judge64
    python benchmarks/judge_reading.py --data ../shared/data/celeba_20k \
        --classifier plain=judge64 --classifier balanced=judge-bal --by Male

A multi-label judge's error is one figure over both values of each attribute, and on
CelebA the values are far from even (celeba_20k's 885 test faces: 73% young, 12% blond): a
judge can be 90% right overall and call most real old faces young. For each judge and
attribute this prints the accuracy on the real test images, the recall of each value
(present / absent: how often real faces of that value are read as it), their mean (the
balanced accuracy), and the recall of the present value split by the ``--by`` attribute
(default Male where the judge has it: blond women and blond men). Target accuracy in
``stargan eval`` asks a translation to be read as its target, so the recall of the target
value on real faces is what a translation as good as a real face could score. The test
images are the judge's own data settings (its folder's ``meta.data``, written by
``stargan classifier train``), read from ``--data`` or else the path recorded there.
Prints a table, then one JSON line (balanced accuracy per attribute; null where a value
has no test image).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from _report import print_report
from stargan.config import DataConfig, from_dict
from stargan.data import load_dataset
from stargan.errors import StarGANError
from stargan.evaluate.domain_classifier import DomainClassifier


def _named(arg: str) -> tuple[str, Path]:
    name, sep, path = arg.partition("=")
    return (name, Path(path)) if sep else (Path(arg).name, Path(arg))


def _test_data(clf: DomainClassifier, data: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    meta = clf.meta.get("data", {})
    if "dataset" not in meta:
        raise StarGANError(
            "the classifier folder does not record its data settings (a judge `stargan eval` "
            "trained into its cache); use one from `stargan classifier train`"
        )
    cfg = from_dict(DataConfig, meta, "classifier meta.data")
    cfg = replace(cfg, path=data) if data is not None else cfg
    test = load_dataset(cfg, clf.image_size, "test", progress=False)
    return test.batch(torch.arange(len(test)))


def _rate(hit: torch.Tensor, rows: torch.Tensor) -> tuple[float, int]:
    n = int(rows.sum())
    return (float(hit[rows].float().mean()) if n else float("nan")), n


def _check(clf: DomainClassifier, by: str | None) -> str | None:
    """The judge is multi-label; ``by`` is one of its attributes (None: Male if it has it)."""
    if clf.spec.kind != "multi":
        raise StarGANError("judge_reading reads multi-label judges (CelebA's attributes)")
    names = list(clf.spec.names)
    if by is None:
        return "Male" if "Male" in names else None
    if by not in names:
        raise StarGANError(f"--by {by!r} is not an attribute of the judge: {', '.join(names)}")
    return by


def read(
    clf: DomainClassifier, x: torch.Tensor, c: torch.Tensor, by: str | None
) -> dict[str, dict[str, Any]]:
    """Per attribute of a multi-label judge (see :func:`_check`): accuracy, recall of present
    and absent, balanced accuracy, and the recall of present split by ``by`` (None: no
    split)."""
    names = list(clf.spec.names)
    pred = clf.predict(x).cpu() > 0.5
    true = c > 0.5
    out = {}
    for k, name in enumerate(names):
        hit = pred[:, k] == true[:, k]
        present, n_present = _rate(hit, true[:, k])
        absent, n_absent = _rate(hit, ~true[:, k])
        row = {
            "accuracy": float(hit.float().mean()),
            "present": present,
            "n_present": n_present,
            "absent": absent,
            "n_absent": n_absent,
            "balanced": (present + absent) / 2,
        }
        if by is not None and by != name:
            j = names.index(by)
            row[f"present, {by}"] = _rate(hit, true[:, k] & true[:, j])
            row[f"present, not {by}"] = _rate(hit, true[:, k] & ~true[:, j])
        out[name] = row
    return out


def _rows(judge: str, reading: dict, by: str | None) -> list[tuple[str, str]]:
    rows = []
    for name, r in reading.items():
        text = (
            f"{r['accuracy']:.1%} right; present {r['present']:.1%} of {r['n_present']}, "
            f"absent {r['absent']:.1%} of {r['n_absent']}; balanced {r['balanced']:.1%}"
        )
        if by is not None and by != name:
            (yes, n_yes), (no, n_no) = r[f"present, {by}"], r[f"present, not {by}"]
            text += f"; present with {by} {yes:.1%} of {n_yes}, without {no:.1%} of {n_no}"
        rows.append((f"{judge}: {name}", text))
    return rows


def _json(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def measure(classifiers: list[str], data: str | None, by: str | None) -> None:
    rows, result = [], {}
    for judge, path in map(_named, classifiers):
        clf = DomainClassifier.load(path)
        split_by = _check(clf, by)
        x, c = _test_data(clf, data)
        reading = read(clf, x, c, split_by)
        rows += _rows(judge, reading, split_by)
        result[judge] = {name: _json(r["balanced"]) for name, r in reading.items()}
        result[judge]["n"] = len(x)
    print_report(rows, result)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="the judge's dataset folder (default: the path it records)")
    ap.add_argument("--classifier", action="append", required=True, metavar="[NAME=]PATH")
    ap.add_argument("--by", help="split each present value by this attribute (default: Male)")
    args = ap.parse_args()
    try:
        measure(args.classifier, args.data, args.by)
    except StarGANError as err:
        raise SystemExit(str(err)) from err


if __name__ == "__main__":
    main()
