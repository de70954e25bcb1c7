"""StarGAN v2 inference: an exported model folder as a ``StyleModel``.

Folder layout (kind ``stargan-v2``, ``format_version`` 1)::

    config.json                  kind, format_version, model config, label spec (the
                                 domains, categorical), preprocessing (crop), data source
    generator.safetensors        G   (the running-average weights, which the official code
    mapping_network.safetensors  F    samples with)
    style_encoder.safetensors    E
    discriminator.safetensors    optional: D (not needed to synthesise)
    fan.safetensors              w_hpf > 0 only, optional: the FAN giving G's face masks

Paper names: G(x, s) -> x_fake; F(z, y) -> s (latent-guided); E(x_ref, y) -> s
(reference-guided). Domains are named by the label spec; the official networks' file
names (``generator``, ``mapping_network``, ``style_encoder``) name the weight files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stargan import synthesis
from stargan.atomic import write_text
from stargan.config import ModelConfig, from_dict
from stargan.data.joint import LabelLayout
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.inference_precision import InferencePrecision
from stargan.model_folder import (
    MAX_IMAGE,
    MAX_WIDTH,
    V2_KIND,
    check_meta,
    declared_kind,
    describe_model,
    like_input,
    load_weights,
    model_resize_filter,
    preprocess,
    read_config,
    save_weights,
)
from stargan.models.v2 import FAN_HINT, build_v2_config

KIND = V2_KIND
FORMAT_VERSION = 1  # the newest this code reads
FILES = {"G": "generator", "F": "mapping_network", "E": "style_encoder", "D": "discriminator"}
FAN_FILE = "fan.safetensors"
RESERVED = ("kind", "format_version", "model", "labels")  # config.json keys that are not meta

Domain = str | int
Domains = Domain | Sequence[Domain] | torch.Tensor


class StyleModel:
    """G, F and E of a StarGAN v2 model with the preprocessing of training. Batch in,
    batch out; inputs as :func:`stargan.model_folder.preprocess` takes them (PIL,
    uint8 numpy or tensors, float tensors in [-1, 1]) and outputs of the same kind.
    ``precision``: G's arithmetic, ``fp32``, ``bf16`` or ``auto``
    (:mod:`stargan.inference_precision`); F, E, D and the FAN run in fp32."""

    def __init__(
        self,
        G: nn.Module,
        F: nn.Module,
        E: nn.Module,
        model_cfg: ModelConfig,
        spec: LabelSpec,
        D: nn.Module | None = None,
        meta: dict[str, Any] | None = None,
        fan: nn.Module | None = None,
        precision: str = "fp32",
    ) -> None:
        if model_cfg.arch != "v2" or spec.dim != model_cfg.c_dim:
            raise StarGANError(
                f"a StyleModel needs a v2 model config with c_dim = {spec.dim} domains "
                f"({', '.join(spec.names)}), got arch {model_cfg.arch!r}, c_dim {model_cfg.c_dim}"
            )
        self.G, self.F, self.E = G.eval(), F.eval(), E.eval()
        self.D = D.eval() if D is not None else None
        self.model_cfg = model_cfg
        self.spec = spec
        self.meta = dict(meta or {})
        self.crop = int(self.meta.get("crop", 0))
        self.resize_filter = model_resize_filter(self.meta)
        self.fan = fan.eval() if fan is not None else None
        self._centres: dict[int, torch.Tensor] = {}  # domain -> mean style (psi < 1)
        self.precision = InferencePrecision(precision)

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    @property
    def image_size(self) -> int:
        return self.model_cfg.image_size

    @property
    def latent_dim(self) -> int:
        return self.model_cfg.latent_dim

    @property
    def domains(self) -> tuple[str, ...]:
        return self.spec.names

    def describe(self) -> str:
        """One line: what the model was trained on and at what size
        (:func:`stargan.model_folder.describe_model`)."""
        return describe_model(self.meta, self.image_size)

    @property
    def layout(self) -> LabelLayout:
        """The one dataset's domains as a label layout (what evaluation code reads)."""
        return LabelLayout.single(self.spec)

    def to(self, device: str | torch.device) -> StyleModel:
        for net in (self.G, self.F, self.E, self.D, self.fan):
            if net is not None:
                net.to(device)
        self._centres.clear()
        return self

    # ------------------------------------------------------------ save / load
    def save_pretrained(self, path: str | Path, with_discriminator: bool = True) -> Path:
        """Write the model folder (see the module docstring); returns it."""
        path = Path(path)
        nets = {"G": self.G, "F": self.F, "E": self.E}
        if with_discriminator and self.D is not None:
            nets["D"] = self.D
        config = {
            "kind": KIND,
            "format_version": FORMAT_VERSION,
            "model": asdict(self.model_cfg),
            "labels": self.spec.to_dict(),
            **{k: v for k, v in self.meta.items() if k not in RESERVED},
        }
        try:
            path.mkdir(parents=True, exist_ok=True)
            for key, net in nets.items():
                save_weights(net, path / f"{FILES[key]}.safetensors")
            # never leave an earlier export's optional files beside these weights
            if "D" not in nets:
                (path / f"{FILES['D']}.safetensors").unlink(missing_ok=True)
            if self.fan is not None:
                save_weights(self.fan, path / FAN_FILE)
            else:
                (path / FAN_FILE).unlink(missing_ok=True)
            write_text(path / "config.json", json.dumps(config, indent=2))
        except OSError as err:
            raise StarGANError(f"cannot write model folder {path}: {err.strerror}") from err
        return path

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        fan_path: str | Path | None = None,
        precision: str = "auto",
    ) -> StyleModel:
        """Load a model folder. w_hpf > 0 models also load the FAN, from ``fan_path``, else
        the folder's fan.safetensors, else the path the model was trained with."""
        path = Path(path)
        config = read_style_config(path)
        model_cfg, spec = _checked_model(path, config)
        fan = None
        if model_cfg.w_hpf > 0:  # before the big networks: a missing FAN fails fast
            own = path / FAN_FILE
            fan = load_fan(fan_path or (own if own.is_file() else model_cfg.fan_path))
        nets = build_v2_config(model_cfg)
        for key in ("G", "F", "E"):
            load_weights(nets[key], path / f"{FILES[key]}.safetensors")
        D = None
        if (path / f"{FILES['D']}.safetensors").exists():
            D = nets["D"]
            load_weights(D, path / f"{FILES['D']}.safetensors")
        meta = {k: v for k, v in config.items() if k not in RESERVED}
        model = cls(nets["G"], nets["F"], nets["E"], model_cfg, spec, D, meta, fan, precision)
        return model.to(device)

    def use_fan(self, fan_path: str | Path | None = None) -> StyleModel:
        """Load the FAN for a w_hpf > 0 model (``fan_path``, else the one it trained with);
        a no-op for w_hpf 0. Returns self."""
        if self.model_cfg.w_hpf > 0:
            self.fan = load_fan(fan_path or self.model_cfg.fan_path).to(self.device)
        return self

    # ------------------------------------------------------------ inputs
    def preprocess(self, images: Any) -> torch.Tensor:
        """PIL image(s), uint8 numpy or tensors -> [N, 3, S, S] in [-1, 1]
        (:func:`stargan.model_folder.preprocess`, as every family's)."""
        return preprocess(images, self.image_size, self.crop, self.resize_filter, self.device)

    def domain_index(self, domain: Domain) -> int:
        """A domain's index from its name (unknown names: an error with close matches) or
        from an index (checked)."""
        if isinstance(domain, str):
            return self.spec.index(domain)
        if isinstance(domain, bool) or not isinstance(domain, int):
            raise StarGANError(f"a domain is a name or an index, not {domain!r}")
        if not 0 <= domain < len(self.domains):
            raise StarGANError(
                f"domain index {domain} out of range: this model has {len(self.domains)} "
                f"domains ({', '.join(self.domains)})"
            )
        return domain

    def domain_labels(self, domain: Domains, n: int) -> torch.Tensor:
        """y [n]: one domain (name or index) for all n, or one per sample."""
        if isinstance(domain, torch.Tensor):
            y = domain.to(torch.long).flatten().cpu()
            for d in y.unique().tolist():
                self.domain_index(d)
        elif isinstance(domain, str | int):
            y = torch.tensor([self.domain_index(domain)])
        else:
            y = torch.tensor([self.domain_index(d) for d in domain], dtype=torch.long)
        if y.numel() == 1:
            y = y.expand(n)
        if y.numel() != n:
            raise StarGANError(f"got {y.numel()} domains for {n} images: give one, or one each")
        return y.to(self.device)

    def masks(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        """G's face masks for sources x [N, 3, S, S] in [-1, 1] (w_hpf > 0), else None."""
        if self.model_cfg.w_hpf == 0:
            return None
        if self.fan is None:
            raise StarGANError(f"w_hpf > 0 needs the FAN weights: this model {FAN_HINT}")
        return self.fan.get_heatmap(x)

    # ------------------------------------------------------------ styles
    @torch.no_grad()
    def mean_style(self, domain: Domain) -> torch.Tensor:
        """The domain's average style [style_dim] (truncation's centre), computed once."""
        d = self.domain_index(domain)
        if d not in self._centres:
            self._centres[d] = synthesis.mean_style(self.F, d, self.latent_dim)
        return self._centres[d]

    def mean_styles(self, domains: Sequence[int]) -> dict[int, torch.Tensor]:
        return {int(d): self.mean_style(int(d)) for d in domains}

    @torch.no_grad()
    def latent_styles(
        self,
        domain: Domains,
        seeds: Sequence[int] | None = None,
        z: torch.Tensor | None = None,
        psi: float = 1.0,
    ) -> torch.Tensor:
        """s = F(z, y) [N, style_dim], z from ``seeds`` (one z per seed, the same in every
        call) or given [N, latent_dim]; ``psi`` < 1 truncates toward the domain's mean."""
        z = self._latents(seeds, z)
        y = self.domain_labels(domain, z.size(0))
        centres = self.mean_styles(y.unique().tolist()) if psi != 1.0 else None
        return synthesis.latent_styles(self.F, z, y, psi, centres)

    @torch.no_grad()
    def reference_styles(self, references: Any, domain: Domains) -> torch.Tensor:
        """s = E(x_ref, y) [N, style_dim] of reference images (any input kind)."""
        x_ref = self.preprocess(references)
        return self.E(x_ref, self.domain_labels(domain, x_ref.size(0)))

    def _latents(self, seeds: Sequence[int] | None, z: torch.Tensor | None) -> torch.Tensor:
        if (seeds is None) == (z is None):
            raise StarGANError("give exactly one of seeds or z")
        if z is None:
            if isinstance(seeds, int):
                seeds = [seeds]
            if not len(seeds):
                raise StarGANError("seeds is empty")
            z = synthesis.latents(seeds, self.latent_dim)
        z = z[None] if z.dim() == 1 else z
        if z.dim() != 2 or z.size(1) != self.latent_dim:
            raise StarGANError(f"z must be [N, {self.latent_dim}], got {list(z.shape)}")
        return z.to(self.device, torch.float32)

    # ------------------------------------------------------------ synthesis
    @torch.no_grad()
    def generate(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """G(x, s) for preprocessed sources x [N, 3, S, S] and styles s [N or 1, style_dim];
        w_hpf > 0: with the FAN's masks of x. Returns [N, 3, S, S] in model range."""
        s = s.to(self.device)
        if s.dim() != 2 or s.size(0) not in (1, x.size(0)):
            raise StarGANError(f"styles must be [1 or {x.size(0)}, style_dim], got {list(s.shape)}")
        return self.run_g(x, s.expand(x.size(0), -1), masks=self.masks(x))

    def run_g(
        self, x: torch.Tensor, s: torch.Tensor, masks: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``G(x, s, masks=masks)`` in this model's precision: what ``generate`` and the
        sample grids (``stargan.synthesis``, called with it in place of G) run."""
        call = lambda x, s, *masks: self.G(x, s, masks=list(masks) or None)  # noqa: E731
        return self.precision(call, x, s, *(masks or []))

    @torch.no_grad()
    def latent(
        self,
        images: Any,
        domain: Domains,
        seeds: Sequence[int] | None = None,
        z: torch.Tensor | None = None,
        psi: float = 1.0,
    ) -> Any:
        """Latent-guided synthesis: each image rendered in ``domain`` with the style F(z, y)
        of its seed (one seed or z for all, or one per image). Returns the input's kind."""
        x = self.preprocess(images)
        z = self._latents(seeds, z)
        if z.size(0) == 1:  # one seed for every image
            z = z.expand(x.size(0), -1)
        return like_input(images, self.generate(x, self.latent_styles(domain, z=z, psi=psi)))

    @torch.no_grad()
    def reference(self, images: Any, references: Any, domain: Domains) -> Any:
        """Reference-guided synthesis: each image rendered with the style E(x_ref, y) of
        its reference (one for all, or one per image), ``domain`` being the references'.
        Returns the input's kind."""
        x = self.preprocess(images)
        return like_input(images, self.generate(x, self.reference_styles(references, domain)))


# ---------------------------------------------------------------- reading folders
def read_style_config(path: Path) -> dict[str, Any]:
    """config.json of a v2 model folder, checked for kind, format version and keys."""
    return read_config(path, KIND, FORMAT_VERSION, ("model", "labels"))


def is_style_model(path: Path) -> bool:
    """Whether ``path`` is a v2 model folder (a config.json of kind stargan-v2)."""
    return declared_kind(path) == KIND


def _checked_model(path: Path, config: dict[str, Any]) -> tuple[ModelConfig, LabelSpec]:
    """Typed model config and domains, sizes bounded before any network is built (a
    crafted config.json must not allocate gigabytes)."""
    where = f"{path}/config.json"
    m = from_dict(ModelConfig, config["model"], f"{where} model")
    try:
        spec = LabelSpec.from_dict(config["labels"])
    except StarGANError as err:
        raise StarGANError(f"{where}: {err}") from err
    widths = (m.latent_dim, m.style_dim, m.mapping_dim, m.max_conv_dim)
    if (
        m.arch != "v2"
        or spec.kind != "categorical"
        or m.c_dim != spec.dim
        or not 16 <= m.image_size <= MAX_IMAGE
        or m.image_size & (m.image_size - 1)
        or not all(0 < w <= MAX_WIDTH for w in widths)
        or not 0 <= m.base_dim <= MAX_WIDTH
        or not 0 <= m.w_hpf < float("inf")
    ):
        raise StarGANError(
            f"{where}: not a StarGAN v2 model of sensible size (arch {m.arch!r}, image size "
            f"{m.image_size}, widths {widths}), or c_dim {m.c_dim} does not match its "
            f"{spec.dim} {spec.kind} domains"
        )
    check_meta(config, where)
    return m, spec


def load_fan(path: str | Path | None) -> nn.Module:
    """The FAN landmark network (stargan.models.fan), for w_hpf > 0 models."""
    if not path:
        raise StarGANError(
            f"w_hpf > 0 needs the FAN weights: this model {FAN_HINT}; pass --fan PATH "
            f"(Python: fan_path=)"
        )
    try:
        from stargan.models.fan import load_fan as load
    except ImportError as err:  # pragma: no cover - fan.py ships with the package
        raise StarGANError("w_hpf > 0 needs the FAN weights and the FAN network") from err
    return load(path)
