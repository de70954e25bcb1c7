"""Inference: an exported model folder as a ``Translator``.

Folder layout (``format_version`` 1; 2 for joint models, whose ``datasets`` list each
dataset's name and label spec in place of ``labels``)::

    config.json               kind, format_version, model config, label spec, preprocessing
    model.safetensors         generator G weights
    discriminator.safetensors optional: D, used only to estimate the input's own labels
                              (D_cls is trained on real images) when the caller gives none
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from stargan.atomic import write_text
from stargan.config import G_CONDITIONS, MAX_STRENGTH, ModelConfig, from_dict
from stargan.data.joint import LabelLayout
from stargan.data.labels import LabelSpec, parse_pairs
from stargan.errors import StarGANError
from stargan.inference_precision import InferencePrecision
from stargan.model_folder import (
    MAX_IMAGE,
    MAX_REPEAT,
    MAX_WIDTH,
    V1_KIND,
    check_meta,
    describe_model,
    like_input,
    load_weights,
    model_resize_filter,
    preprocess,
    read_config,
    save_weights,
)
from stargan.models.v1 import Discriminator, Generator, discriminator, generator, label_input
from stargan.quantize import Int8Generator, calibration_set, quantize_generator, require_int8

FORMAT_VERSION = 2  # the newest this code reads; single-dataset folders are still written as 1
KIND = V1_KIND

Target = str | Mapping[str, float] | torch.Tensor


class Translator:
    """G(x, c) with the preprocessing of training. Batch in, batch out.

    Joint models (several datasets, mask vector) take targets of one dataset at a time,
    named ``dataset.domain`` or by a domain name that only one dataset has.

    ``precision``: G's arithmetic, ``fp32``, ``bf16`` (autocast) or ``auto``
    (:mod:`stargan.inference_precision`: bf16 where native and within 35 dB of fp32);
    D (label estimates) always runs in fp32.

    ``strength``: how hard a difference-conditioned G (``model.g_condition=difference``)
    pushes the change: G gets ``strength * (c_trg - c_org)`` (AttGAN's and STGAN's
    test-time intensity); 1, as trained, by default."""

    def __init__(
        self,
        G: Generator,
        model_cfg: ModelConfig,
        labels: LabelSpec | LabelLayout,
        D: Discriminator | None = None,
        meta: dict[str, Any] | None = None,
        precision: str = "fp32",
    ) -> None:
        self.G = G.eval()
        self.precision = InferencePrecision(precision)
        self.D = D.eval() if D is not None else None
        self.model_cfg = model_cfg
        self.layout = labels if isinstance(labels, LabelLayout) else LabelLayout.single(labels)
        self.meta = dict(meta or {})
        self.crop = int(self.meta.get("crop", 0))
        self.resize_filter = model_resize_filter(self.meta)
        self._strength = 1.0

    @property
    def strength(self) -> float:
        """The scale of G's label difference (1: as trained); see the class docstring."""
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        if not 0.0 < float(value) <= MAX_STRENGTH:  # also refuses nan
            raise StarGANError(f"strength {value}: must be above 0 and at most {MAX_STRENGTH:g}")
        if self.int8 and float(value) != self._strength:
            raise StarGANError(
                "this translator's int8 G was calibrated at strength "
                f"{self._strength:g}: set the strength before quantize()"
            )
        check_strength(float(value), self.model_cfg.g_condition)
        self._strength = float(value)

    @property
    def spec(self) -> LabelSpec:
        """The label spec (of the first dataset, for joint models)."""
        return self.layout.specs[0]

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    @property
    def image_size(self) -> int:
        return self.model_cfg.image_size

    def describe(self) -> str:
        """One line: what the model was trained on and at what size
        (:func:`stargan.model_folder.describe_model`), and the strength when not 1."""
        line = describe_model(self.meta, self.image_size)
        return line if self._strength == 1.0 else f"{line}; strength {self._strength:g}"

    @property
    def int8(self) -> bool:
        """Whether G is the int8 copy made by ``quantize``."""
        return isinstance(self.G, Int8Generator)

    # ------------------------------------------------------------ save / load
    def save_pretrained(self, path: str | Path, with_discriminator: bool = True) -> Path:
        if self.int8:  # its packed int8 kernels are not G's weights: nothing loadable to write
            raise StarGANError(
                "cannot save an int8 translator (quantized G has no weights to save): save "
                "the float model, and call .quantize() again after loading it"
            )
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            labels = (
                {"format_version": 2, "datasets": self.layout.to_dict()}
                if self.layout.joint
                else {"format_version": 1, "labels": self.spec.to_dict()}
            )
            config = {"kind": KIND, "model": asdict(self.model_cfg), **labels, **self.meta}
            save_weights(self.G, path / "model.safetensors")
            if with_discriminator and self.D is not None:
                save_weights(self.D, path / "discriminator.safetensors")
            else:  # never leave an earlier export's D beside this G
                (path / "discriminator.safetensors").unlink(missing_ok=True)
            write_text(path / "config.json", json.dumps(config, indent=2))
        except OSError as err:
            raise StarGANError(f"cannot write model folder {path}: {err.strerror}") from err
        return path

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device = "cpu", precision: str = "auto"
    ) -> Translator:
        path = Path(path)
        config = read_model_config(path)
        model_cfg, layout = _checked_model(path, config)
        G = generator(model_cfg)
        load_weights(G, path / "model.safetensors")
        D = None
        if (path / "discriminator.safetensors").exists():
            D = discriminator(model_cfg)
            load_weights(D, path / "discriminator.safetensors")
        meta = {
            k: v
            for k, v in config.items()
            if k not in ("format_version", "kind", "model", "labels", "datasets")
        }
        D = D.to(device) if D else None
        return cls(G.to(device), model_cfg, layout, D, meta, precision)

    # ------------------------------------------------------------ int8
    @torch.no_grad()
    def quantize(
        self,
        calibration_images: Any,
        target: Target | None = None,
        c_org: torch.Tensor | None = None,
    ) -> Translator:
        """Swap G for its int8 copy (``stargan.quantize``: CPU only, x86 with VNNI), in
        place; returns self. Calibrated on ``calibration_images`` (any input ``translate``
        takes; the images to translate, or ones like them) with ``target``'s labels, or,
        when None, with every single-domain change (the targets of ``all_domains``).
        ``c_org``: the images' labels, else D_cls estimates them. The int8 translator
        cannot be saved: save the float one, quantize after loading."""
        if self.int8:
            raise StarGANError("this translator's G is already int8")
        require_int8(self.device)
        x = self.preprocess(calibration_images)
        if target is None:
            x, c_input = calibration_set(self, x, c_org)
        else:
            c_src, c_trg = self.source_and_target(target, c_org, x)
            c_input = self.label_input(c_trg, self._source(x, c_trg, c_src))
        self.G = quantize_generator(self.G, x, c_input)
        return self

    # ------------------------------------------------------------ inference
    def preprocess(self, images: Any) -> torch.Tensor:
        """PIL image(s), uint8 numpy [H, W, 3] / [N, H, W, 3], or tensors -> [N, 3, S, S]
        in [-1, 1] (:func:`stargan.model_folder.preprocess` with this model's size, crop
        and resize filter)."""
        return preprocess(images, self.image_size, self.crop, self.resize_filter, self.device)

    @torch.no_grad()
    def estimate_labels(self, x: torch.Tensor, part: int = 0) -> torch.Tensor:
        """The input's own labels in dataset ``part``'s domains, from D_cls (0/1
        multi-label, one-hot categorical)."""
        return self.layout.estimate(self._logits(x), part)

    @torch.no_grad()
    def _logits(self, x: torch.Tensor | None) -> torch.Tensor:
        if x is None:
            raise StarGANError("labels of another dataset need the images to estimate them")
        if self.D is None:
            raise StarGANError(
                "this model folder has no discriminator.safetensors, so the "
                "input's own labels cannot be estimated; export it without "
                "--no-discriminator (Python: pass c_org=)"
            )
        return self.D(x)[1].float()

    def parse_target(self, target: str | Mapping[str, float]) -> tuple[int, dict[str, float]]:
        """``"Blond_Hair=1,Male=0"`` or a dict -> (dataset index, {domain: value})."""
        if isinstance(target, str):
            if not self.layout.joint:
                return 0, self.spec.parse_assignments(target)
            target = parse_pairs(target, example=self.layout.domain_names()[0])
        return self.layout.resolve({k: float(v) for k, v in target.items()})

    def target_labels(self, target: Target, c_org: torch.Tensor | None, x=None) -> torch.Tensor:
        """Full generator labels for ``target``. Unnamed domains of the target's dataset
        keep ``c_org`` (full labels; rows of that dataset), else D_cls's estimate of ``x``."""
        return self.source_and_target(target, c_org, x)[1]

    def source_and_target(
        self, target: Target, c_org: torch.Tensor | None, x=None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(the inputs' own full labels, ``target_labels``): the source is ``c_org`` where
        given and D_cls's estimate where needed; None for a labels tensor target without
        ``c_org`` (``generate`` estimates it if the model needs it)."""
        if isinstance(target, torch.Tensor):
            c_trg = target.to(self.device, torch.float32)
            n = c_org.size(0) if c_org is not None else x.size(0)
            if c_trg.dim() == 1:
                c_trg = c_trg.expand(n, -1)
            if tuple(c_trg.shape) != (n, self.layout.dim):
                raise StarGANError(
                    f"target labels must be [N, {self.layout.dim}], got {list(c_trg.shape)}"
                )
            return (None if c_org is None else c_org.to(self.device)), c_trg
        part, assignments = self.parse_target(target)
        if c_org is not None:
            logits = lambda: self._logits(x)  # noqa: E731
            base = self.layout.known_or_estimated(c_org.to(self.device), logits, part)
        else:
            base = self.estimate_labels(x, part)
        c_trg = self.layout.specs[part].apply(base, assignments)
        return self.layout.encode(part, base), self.layout.encode(part, c_trg)

    @property
    def needs_source(self) -> bool:
        """Whether G needs the inputs' own labels (``model.g_condition=difference``);
        ``generate`` estimates them with D_cls when the caller has none."""
        return self.model_cfg.g_condition != "target"

    def label_input(self, c_trg: torch.Tensor, c_org: torch.Tensor | None) -> torch.Tensor:
        """G's label input (models/v1.label_input): the targets, or their difference from
        the inputs' own labels."""
        m = self.model_cfg
        return label_input(c_trg, c_org, m.g_condition, m.mask_dim, self._strength)

    @torch.no_grad()
    def generate(
        self, x: torch.Tensor, c_trg: torch.Tensor, c_org: torch.Tensor | None = None
    ) -> torch.Tensor:
        """G on preprocessed inputs ``x`` [N, 3, S, S] for full target labels ``c_trg``;
        ``c_org``: the inputs' full labels, which a difference-conditioned G needs
        (D_cls's estimate when None)."""
        c_input = self.label_input(c_trg, self._source(x, c_trg, c_org))
        if self.int8:  # its own int8 kernels
            return self.G(x, c_input)
        return self.precision(self.G, x, c_input)

    def _source(
        self, x: torch.Tensor, c_trg: torch.Tensor, c_org: torch.Tensor | None
    ) -> torch.Tensor | None:
        """``c_org``, or D_cls's estimate where G needs the inputs' labels and has none."""
        if not self.needs_source or c_org is not None:
            return c_org
        logits = self._logits(x)
        if not self.layout.joint:
            return self.layout.encode(0, self.layout.estimate(logits, 0))
        parts = c_trg[:, self.layout.cls_dim :].argmax(1)
        c_org = torch.zeros_like(c_trg)
        for i in range(len(self.layout.specs)):
            own = self.layout.encode(i, self.layout.estimate(logits, i))
            c_org = torch.where((parts == i)[:, None], own, c_org)
        return c_org

    @torch.no_grad()
    def apply(
        self,
        x: torch.Tensor,
        target: Target,
        c_org: torch.Tensor | None = None,
        mask: str | None = None,
    ) -> torch.Tensor:
        """``translate`` on preprocessed inputs: [N, 3, S, S] in [-1, 1] in and out."""
        c_src, c_trg = self.source_and_target(target, c_org, x)
        if mask is not None:
            c_src = self._source(x, c_trg, c_src)  # the target's dataset, not the mask's
            c_trg = self.layout.with_mask(c_trg, mask)
        return self.generate(x, c_trg, c_src)

    @torch.no_grad()
    def translate(
        self,
        images: Any,
        target: Target,
        c_org: torch.Tensor | None = None,
        mask: str | None = None,
    ) -> Any:
        """Translate ``images`` to ``target`` ("Blond_Hair=1,Male=0", a dict, or labels
        [N, c]). Unmentioned attributes keep the input's labels: ``c_org`` when given
        (:meth:`source_labels` builds it from domain names), else D_cls's estimate.
        ``mask``: a joint model's dataset whose mask bit G gets instead of the target's
        (paper Fig. 8, the wrong mask vector). Returns the input's kind: PIL (list), uint8
        numpy, uint8 tensor, or a float tensor in [-1, 1]."""
        x = self.preprocess(images)
        return like_input(images, self.apply(x, target, c_org, mask))

    @torch.no_grad()
    def source_labels(self, x: torch.Tensor, source: str | Mapping[str, float]) -> torch.Tensor:
        """Full labels [N, dim] of inputs declared to be of ``source`` ("neutral",
        "Male=0,Young=1"; the RaFD protocol translates neutral faces only): the named
        domains as given; a multi-label dataset's unnamed ones D_cls's estimate of ``x``."""
        part, assignments = self.parse_target(source)
        spec = self.layout.specs[part]
        if spec.kind == "categorical":
            base = x.new_zeros(x.size(0), spec.dim)
        else:
            base = self.estimate_labels(x, part)
        return self.layout.encode(part, spec.apply(base, assignments))

    @torch.no_grad()
    def dataset_labels(self, x: torch.Tensor, c_org: torch.Tensor | None) -> list[torch.Tensor]:
        """Each dataset's labels of the inputs [N, d_i]: ``c_org`` (full labels) for a
        single-dataset model; for a joint one D_cls's estimate (one D forward for every
        dataset), with ``c_org``'s part in place for the dataset its mask names."""
        if c_org is not None and not self.layout.joint:
            return [c_org.to(x.device)]
        logits = self._logits(x)  # raises a clear error when there is no D
        labels = [self.layout.estimate(logits, i) for i in range(len(self.layout.specs))]
        if c_org is not None:
            c_org = c_org.to(x.device)
            parts = c_org[:, self.layout.cls_dim :].argmax(1)
            for i, own in enumerate(labels):
                rows = (parts == i)[:, None]
                labels[i] = torch.where(rows, c_org[:, self.layout.part(i)], own)
        return labels

    @torch.no_grad()
    def all_domains(
        self, x: torch.Tensor, c_org: torch.Tensor | None = None, how: str = "single"
    ) -> list[tuple[str, torch.Tensor]]:
        """Each input translated to every single-domain change of every dataset (``how=
        "multi"``: every multi-attribute combination, paper Fig. 4): [(name, [N, 3, S, S])].
        ``c_org``: the inputs' full labels (single-dataset models); otherwise, and for
        joint models, D_cls estimates them."""
        changes = self.layout.changes_with_sources(self.dataset_labels(x, c_org), how)
        return [(name, self.generate(x, c_trg, c_src)) for name, c_src, c_trg in changes]


def check_strength(strength: float, g_condition: str) -> None:
    """A strength other than 1 needs a G told the change (``model.g_condition=difference``)."""
    if strength != 1.0 and g_condition != "difference":
        raise StarGANError(
            "strength scales the change c_trg - c_org, which only a model trained with "
            f"model.g_condition=difference is given; this one was trained with {g_condition!r}"
        )


def read_model_config(path: Path) -> dict[str, Any]:
    """config.json of a v1 model folder, checked for kind, format version and keys."""
    config = read_config(path, KIND, FORMAT_VERSION, ("model",))
    key = "datasets" if "datasets" in config else "labels"
    if key not in config:
        raise StarGANError(f"{path}/config.json lacks {key!r}: corrupt model folder")
    return config


def _checked_model(path: Path, config: dict[str, Any]) -> tuple[ModelConfig, LabelLayout]:
    """Typed model config and label layout of a model folder, with sizes bounded before
    any network is built (a crafted config.json must not allocate gigabytes)."""
    where = f"{path}/config.json"
    model_cfg = from_dict(ModelConfig, config["model"], f"{where} model")
    try:
        if "datasets" in config:
            layout = LabelLayout.from_dict(config["datasets"])
        else:
            layout = LabelLayout.single(LabelSpec.from_dict(config["labels"]))
    except StarGANError as err:
        raise StarGANError(f"{where}: {err}") from err
    m = model_cfg
    if (
        (m.c_dim, m.mask_dim) != (layout.cls_dim, layout.mask_dim)
        or not 0 < m.image_size <= MAX_IMAGE
        or not 0 < max(m.g_conv_dim, m.d_conv_dim) <= MAX_WIDTH
        or not 0 <= max(m.g_repeat_num, m.d_repeat_num) <= MAX_REPEAT
    ):
        raise StarGANError(
            f"{where}: model sizes out of range, or c_dim/mask_dim do not match the "
            f"{layout.cls_dim} labels of {len(layout.specs)} dataset(s)"
        )
    if m.g_condition not in G_CONDITIONS:
        raise StarGANError(f"{where}: model.g_condition {m.g_condition!r} is unknown")
    check_meta(config, where)
    return model_cfg, layout
