"""What the page offers for each kind of model, and how a request becomes its outputs.

A model kind (``config.json``'s ``kind``) maps to a ``ModelKind`` in ``KINDS``: it loads the
folder, describes the controls the page draws (``GET /api/model``), names the aligned layout
its photos are warped into (``frame``) and the extra image uploads it takes (``uploads``),
checks a request's form fields before any work (``parse``), and turns one preprocessed image
(plus any extra uploads, preprocessed alike) into named outputs (``outputs``, run in a worker
thread). The page draws every control from that description, by its ``type``; StarGAN v1
needs only ``choice`` controls (radio buttons); StarGAN v2 adds a ``seeds`` text field and a
``reference`` image upload (``extra_controls``), each with a renderer in page.html's
``RENDERERS``; nothing else in the server changes.

Choice controls (v1):

- an exclusive group of a multi-label dataset (the hair colours): one radio button per member,
  "none of these" (all members 0), and "keep" (the photo's own, as D_cls estimates it);
- a free binary attribute: keep / no / yes;
- a categorical dataset (expressions): one radio button per class.

Each option carries ``set``, the assignments it adds to the target (``{"Blond_Hair": 1}``), with
joint models' names qualified (``ckplus.happy``); the page merges the chosen options of one
dataset into a JSON target. Without a discriminator the photo's own labels are unknown: there
is no "keep", every control starts on a definite value, and "all domains" is off.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image

from stargan.align import CELEBA, CELEBA_HQ, Frame
from stargan.data.labels import parse_pairs
from stargan.errors import StarGANError
from stargan.model_folder import V1_KIND, V2_KIND, declared_kind
from stargan.sample_files import parse_seeds
from stargan.serve.uploads import UploadError
from stargan.stylemodel import StyleModel
from stargan.translate import Translator

Outputs = list[tuple[str, torch.Tensor]]  # [(column name, [1, 3, S, S] in [-1, 1])]


class ModelKind(Protocol):
    frame: Frame  # the aligned layout photos are warped into (the page's face alignment)
    uploads: tuple[str, ...]  # file fields besides "image" that a request may carry

    def load(self, path: Path, device: str, precision: str = "auto") -> Any: ...
    def describe(self, model: Any) -> dict[str, Any]: ...
    def parse(self, model: Any, form: Mapping[str, str], uploads: set[str]) -> Any: ...
    def outputs(
        self, model: Any, x: torch.Tensor, request: Any, extra: Mapping[str, torch.Tensor]
    ) -> Outputs: ...
    def quantize(self, model: Any, images: list[Image.Image]) -> None: ...


@dataclass(frozen=True)
class V1Request:
    target: dict[str, float] | None  # None: every single-domain change ("all domains")
    part: int = 0  # the target's dataset


class V1:
    """StarGAN v1: G(x, c) with a label vector c (``stargan.translate.Translator``)."""

    frame = CELEBA
    uploads: tuple[str, ...] = ()

    def load(self, path: Path, device: str, precision: str = "auto") -> Translator:
        return Translator.from_pretrained(path, device=device, precision=precision)

    def describe(self, tr: Translator) -> dict[str, Any]:
        keep = tr.D is not None
        layout = tr.layout
        datasets = []
        for i, (name, spec) in enumerate(zip(layout.datasets, layout.specs, strict=True)):
            q = partial(layout.qualified, i)
            if spec.kind == "categorical":
                options = [_option(n, _label(n), {q(n): 1}) for n in spec.names]
                controls = [_choice(f"d{i}-class", "class", options, "radio", None)]
            else:
                controls = [
                    _group_control(i, k, g, q, keep) for k, g in enumerate(spec.exclusive_groups)
                ]
                controls += [
                    _choice(
                        f"d{i}-{n}",
                        _label(n),
                        ([_option("keep", "keep", {})] if keep else [])
                        + [_option("0", "no", {q(n): 0}), _option("1", "yes", {q(n): 1})],
                        "toggle",
                        "keep" if keep else "0",
                    )
                    for n in spec.names
                    if spec.group_of(n) is None
                ]
            datasets.append(
                {
                    "name": name,
                    "title": name or "attributes",
                    "kind": spec.kind,
                    "controls": controls,
                }
            )
        return {
            "about": tr.describe(),
            "datasets": datasets,
            "extra_controls": [],
            "keeps_own_labels": keep,
            "all_domains": keep,
            "domains": layout.domain_names(),
        }

    def parse(self, tr: Translator, form: Mapping[str, str], uploads: set[str]) -> V1Request:
        if flag(form, "all_domains"):
            if tr.D is None:
                raise UploadError(
                    400,
                    "'all domains' changes each of the photo's own attributes, which this model "
                    "cannot estimate (its folder has no discriminator.safetensors)",
                )
            return V1Request(None)
        raw = (form.get("target") or "").strip()
        if not raw:
            example = tr.layout.domain_names()[0]
            raise UploadError(400, f"no target: choose at least one attribute (e.g. {example}=1)")
        target = _json_target(raw) if raw.startswith("{") else raw
        part, assignments = tr.parse_target(target)  # StarGANError: unknown or mixed names
        if tr.D is None:
            _check_complete(tr, part, assignments)
        # the qualified names the user wrote, for the column title and for target_labels
        named = target if isinstance(target, dict) else _pairs(raw, tr)
        return V1Request(named, part)

    def quantize(self, tr: Translator, images: list[Image.Image]) -> None:
        """``--int8``: G swapped for its int8 copy, calibrated on ``images`` with every
        single-domain change of their labels (D_cls's estimate; without D, of all-0 labels:
        each domain alone, as complete targets set it)."""
        c_org = None if tr.D is not None else torch.zeros(len(images), tr.layout.dim)
        tr.quantize(images, c_org=c_org)

    @torch.no_grad()  # no_grad is per thread: this runs in a worker thread
    def outputs(
        self, tr: Translator, x: torch.Tensor, req: V1Request, extra: Mapping[str, torch.Tensor]
    ) -> Outputs:
        if req.target is None:
            return tr.all_domains(x)
        c_org = None
        if tr.D is None and not tr.needs_source:
            # every domain of the dataset is assigned (parse): any base will do
            c_org = tr.layout.encode(req.part, torch.zeros(len(x), tr.layout.specs[req.part].dim))
        name = ",".join(f"{k}={v:g}" for k, v in req.target.items())
        return [(name, tr.apply(x, req.target, c_org))]


MAX_PAGE_SEEDS = 16  # latent-guided outputs per domain in one request


@dataclass(frozen=True)
class V2Request:
    domains: tuple[int, ...]  # target domains (every one for "all domains")
    seeds: tuple[int, ...]  # latent-guided styles; unused with a reference
    reference: bool  # reference-guided: the style of the uploaded reference image


class V2:
    """StarGAN v2: G(x, s) with a style from a seed (F(z, y)) or a reference image
    (E(x_ref, y)); ``stargan.stylemodel.StyleModel``."""

    frame = CELEBA_HQ
    uploads = ("reference",)

    def load(self, path: Path, device: str, precision: str = "auto") -> StyleModel:
        return StyleModel.from_pretrained(path, device=device, precision=precision)

    def describe(self, model: StyleModel) -> dict[str, Any]:
        options = [_option(n, _label(n), {n: 1}) for n in model.domains]
        domain = _choice("domain", "domain", options, "radio", options[0]["value"])
        return {
            "about": model.describe(),
            "datasets": [
                {"name": "", "title": "Target", "kind": "categorical", "controls": [domain]}
            ],
            "extra_controls": [
                {
                    "type": "seeds",
                    "id": "seeds",
                    "label": "Style seeds (latent-guided): e.g. 0-3 or 1,5,9",
                    "default": "0-3",
                    "max": MAX_PAGE_SEEDS,
                },
                {
                    "type": "reference",
                    "id": "reference",
                    "label": "… or the style of a reference image of the domain (reference-guided)",
                },
            ],
            "keeps_own_labels": False,
            "target_hint": "The photo becomes the chosen domain, in the style of each seed or "
            "of the reference image.",
            "all_domains": True,
            "all_domains_label": "Every domain instead",
            "domains": list(model.domains),
        }

    def parse(self, model: StyleModel, form: Mapping[str, str], uploads: set[str]) -> V2Request:
        reference = "reference" in uploads
        if flag(form, "all_domains"):
            domains = tuple(range(len(model.domains)))
        else:
            raw = (form.get("target") or "").strip()
            if not raw:
                raise UploadError(400, f"no target: choose a domain (e.g. {model.domains[0]})")
            names = list(_json_target(raw) if raw.startswith("{") else _pairs_v2(raw))
            if len(names) != 1:
                raise UploadError(400, "choose one target domain (or 'every domain')")
            domains = (model.domain_index(names[0]),)  # StarGANError: unknown, close matches
        seeds: tuple[int, ...] = ()
        if not reference:
            try:
                seeds = tuple(parse_seeds(form.get("seeds") or "0"))
            except StarGANError as err:
                raise UploadError(400, str(err)) from err
            if len(seeds) > MAX_PAGE_SEEDS:
                raise UploadError(400, f"at most {MAX_PAGE_SEEDS} seeds in one request")
        return V2Request(domains, seeds, reference)

    def quantize(self, model: StyleModel, images: list[Image.Image]) -> None:
        raise StarGANError("int8 inference is for StarGAN v1 models only")

    @torch.no_grad()  # no_grad is per thread: this runs in a worker thread
    def outputs(
        self, model: StyleModel, x: torch.Tensor, req: V2Request, extra: Mapping[str, torch.Tensor]
    ) -> Outputs:
        out: Outputs = []
        for d in req.domains:
            name = model.domains[d]
            if req.reference:
                s = model.reference_styles(extra["reference"], d)
                out.append((f"{name}, reference", model.generate(x, s)))
                continue
            styles = model.latent_styles(d, seeds=req.seeds)  # [seeds, style_dim]
            for seed, s in zip(req.seeds, styles, strict=True):
                out.append((f"{name}, seed {seed}", model.generate(x, s[None])))
        return out


def _pairs_v2(raw: str) -> dict[str, float]:
    """``male`` or ``male=1``: the domain named (a v2 target is one domain)."""
    return {raw: 1.0} if "=" not in raw else parse_pairs(raw, example="male=1")


KINDS: dict[str, ModelKind] = {V1_KIND: V1(), V2_KIND: V2()}


def kind_of(path: Path) -> str:
    """The ``kind`` a model folder declares; unknown or unreadable folders are left to the
    v1 loader, whose errors say what is wrong with them."""
    kind = declared_kind(path)
    if kind is None:
        return V1_KIND
    if kind not in KINDS and kind.startswith("stargan-"):
        raise StarGANError(f"{path} holds a {kind!r} model; stargan serve knows {', '.join(KINDS)}")
    return kind if kind in KINDS else V1_KIND


def flag(form: Mapping[str, str], name: str) -> bool:
    raw = str(form.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "off", "no"):
        return False
    if raw in ("1", "true", "on", "yes"):
        return True
    raise UploadError(400, f"field {name!r} must be 0 or 1, not {raw[:20]!r}")


# ---------------------------------------------------------------------- helpers
def _label(name: str) -> str:
    return name.replace("_", " ")


def _option(value: str, label: str, assign: dict[str, float]) -> dict[str, Any]:
    return {"value": value, "label": label, "set": assign}


def _choice(
    cid: str, label: str, options: list[dict[str, Any]], style: str, default: str | None
) -> dict[str, Any]:
    return {
        "type": "choice",
        "id": cid,
        "label": label,
        "style": style,  # "radio": a list of buttons; "toggle": a compact keep/no/yes row
        "options": options,
        "default": default,
    }


def _group_control(i: int, k: int, group: tuple[str, ...], q, keep: bool) -> dict[str, Any]:
    options = [_option("keep", "keep", {})] if keep else []
    options += [_option(n, _label(n), {q(n): 1}) for n in group]
    options.append(_option("none", "none of these", {q(n): 0 for n in group}))
    return _choice(f"d{i}-group{k}", _group_label(group), options, "radio", options[0]["value"])


def _group_label(group: tuple[str, ...]) -> str:
    """ "Hair" for Black_Hair / Blond_Hair / Brown_Hair; the names joined otherwise."""
    tails = {n.rsplit("_", 1)[-1] for n in group}
    if len(tails) == 1 and all("_" in n for n in group):
        return tails.pop()
    return " / ".join(_label(n) for n in group)


def _json_target(raw: str) -> dict[str, float]:
    """``{"Blond_Hair": 1, "Male": 0.5}``: values in [0, 1] (0.5 asks G for a label it never
    saw in training; allowed for experiments, as Translator.translate allows it)."""
    try:
        data = json.loads(raw, object_pairs_hook=_unique_keys)
    except RecursionError as err:  # thousands of nested brackets
        raise UploadError(400, "target is nested too deeply") from err
    except ValueError as err:
        raise UploadError(400, f"target is not valid JSON ({err})") from err
    if not isinstance(data, dict) or not data:
        raise UploadError(400, 'target must be a JSON object like {"Blond_Hair": 1}')
    out = {}
    for k, v in data.items():
        if isinstance(v, bool):
            v = float(v)
        if not isinstance(v, int | float) or not math.isfinite(v) or not 0 <= v <= 1:
            raise UploadError(400, f"target value for {k!r} must be a number in [0, 1]")
        out[str(k)] = float(v)
    return out


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; a key given twice is an error, not "last wins"."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"{key!r} is given twice")
        out[key] = value
    return out


def _pairs(raw: str, tr: Translator) -> dict[str, float]:
    return parse_pairs(raw, example=tr.layout.domain_names()[0])


def _check_complete(tr: Translator, part: int, assignments: dict[str, float]) -> None:
    """Without D the photo's own labels are unknown, so the target must fix every label of
    its dataset: each free attribute, and each exclusive group (a member, or all 0)."""
    spec = tr.layout.specs[part]
    if spec.kind == "categorical":
        if any(v for v in assignments.values()):
            return
        missing = ["a class"]
    else:
        missing = []
        for n in spec.names:
            group = spec.group_of(n)
            if group is None and n not in assignments:
                missing.append(n)
        for group in spec.exclusive_groups:
            on = any(assignments.get(n) for n in group)
            if not on and not all(n in assignments for n in group):
                missing.append(" or ".join(group) + " (or all of them 0)")
    if missing:
        raise UploadError(
            400,
            "this model has no discriminator to estimate the photo's own attributes, so the "
            "target must set every one; missing: " + ", ".join(missing),
        )
