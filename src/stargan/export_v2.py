"""A StarGAN v2 model folder as ONNX or TorchScript: two files, one per entry point.

StarGAN v2 synthesises in two ways (paper section 2), so an export is two files that
share one sidecar (``<file>.json``)::

    FILE                        latent-guided:    translated = G(image, F(z, domain))
    <stem>.reference<suffix>    reference-guided: translated = G(image, E(reference, domain))

    image       float32 [N, 3, S, S]    sources, RGB in [-1, 1]
    z           float32 [N, latent_dim] latent codes, N(0, 1) (no truncation: psi 1)
    reference   float32 [N, 3, S, S]    references, RGB in [-1, 1]
    domain      int64   [N]             the target domain of each row (index; names in
                                        the sidecar), which the references belong to
    translated  float32 [N, 3, S, S]    RGB, about [-1, 1] (not clamped: clip it)

N (the batch) is free. The networks are the folder's running-average G, F and E (what
``stargan sample`` uses). Models with ``w_hpf > 0`` need the FAN's face masks as well,
which are not exported: they are refused with that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

import stargan
from stargan.errors import StarGANError
from stargan.stylemodel import StyleModel, read_style_config

OUTPUT = "translated"
ENTRY_INPUTS = {"latent": ("image", "z", "domain"), "reference": ("image", "reference", "domain")}
TRACE_BATCH = 2  # example batch for export: not 1, so nothing can specialise on N == 1


class LatentNet(nn.Module):
    """G(image, F(z, domain))."""

    def __init__(self, G: nn.Module, F: nn.Module) -> None:
        super().__init__()
        self.G, self.F = G, F

    def forward(self, image: torch.Tensor, z: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        return self.G(image, self.F(z, domain))


class ReferenceNet(nn.Module):
    """G(image, E(reference, domain))."""

    def __init__(self, G: nn.Module, E: nn.Module) -> None:
        super().__init__()
        self.G, self.E = G, E

    def forward(
        self, image: torch.Tensor, reference: torch.Tensor, domain: torch.Tensor
    ) -> torch.Tensor:
        return self.G(image, self.E(reference, domain))


class LatentGuided(nn.Module):
    """``net`` (a LatentNet, eager or traced), refusing shapes the model was not trained
    for (a fully convolutional G would otherwise run at any size and give poor output)."""

    def __init__(self, net: nn.Module, image_size: int, latent_dim: int) -> None:
        super().__init__()
        self.net = net
        self.image_size, self.latent_dim = image_size, latent_dim
        self.image_error = f"image must be float32 [N, 3, {image_size}, {image_size}] in [-1, 1]"
        self.z_error = f"z must be float32 [N, {latent_dim}], N as for image"
        self.domain_error = "domain must be int64 [N], N as for image"

    def forward(self, image: torch.Tensor, z: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        if image.dim() != 4 or image.size(1) != 3 or image.size(2) != s or image.size(3) != s:
            raise ValueError(self.image_error)
        if z.dim() != 2 or z.size(0) != image.size(0) or z.size(1) != self.latent_dim:
            raise ValueError(self.z_error)
        if domain.dim() != 1 or domain.size(0) != image.size(0):
            raise ValueError(self.domain_error)
        return self.net(image, z, domain)

    def with_net(self, net: nn.Module) -> LatentGuided:
        return LatentGuided(net, self.image_size, self.latent_dim)


class ReferenceGuided(nn.Module):
    """``net`` (a ReferenceNet, eager or traced), refusing shapes the model was not
    trained for."""

    def __init__(self, net: nn.Module, image_size: int) -> None:
        super().__init__()
        self.net = net
        self.image_size = image_size
        self.image_error = (
            f"image and reference must be float32 [N, 3, {image_size}, {image_size}] in [-1, 1]"
        )
        self.domain_error = "domain must be int64 [N], N as for image"

    def forward(
        self, image: torch.Tensor, reference: torch.Tensor, domain: torch.Tensor
    ) -> torch.Tensor:
        s = self.image_size
        for x in (image, reference):
            if x.dim() != 4 or x.size(1) != 3 or x.size(2) != s or x.size(3) != s:
                raise ValueError(self.image_error)
        if reference.size(0) != image.size(0):
            raise ValueError(self.image_error)
        if domain.dim() != 1 or domain.size(0) != image.size(0):
            raise ValueError(self.domain_error)
        return self.net(image, reference, domain)

    def with_net(self, net: nn.Module) -> ReferenceGuided:
        return ReferenceGuided(net, self.image_size)


def load_exportable(model_dir: Path) -> StyleModel:
    """A v2 model folder that can be exported: w_hpf > 0 models are refused before any
    network (or their FAN) is loaded."""
    w_hpf = read_style_config(model_dir)["model"].get("w_hpf", 0.0)
    if isinstance(w_hpf, int | float) and w_hpf > 0:
        raise StarGANError(
            f"this StarGAN v2 model has w_hpf {w_hpf} > 0: its G needs the FAN's face "
            "masks, which are not exported; only w_hpf 0 models export"
        )
    return StyleModel.from_pretrained(model_dir)


def entry_modules(model: StyleModel) -> dict[str, LatentGuided | ReferenceGuided]:
    """The two entry points of a (w_hpf 0) v2 model, checked, in eval mode."""
    size, latent = model.image_size, model.latent_dim
    return {
        "latent": LatentGuided(LatentNet(model.G, model.F), size, latent).eval(),
        "reference": ReferenceGuided(ReferenceNet(model.G, model.E), size).eval(),
    }


def scripted(module: LatentGuided | ReferenceGuided, example: tuple) -> torch.jit.ScriptModule:
    """An entry point as TorchScript: its networks traced on ``example`` (StarGAN v2's
    networks are written for eager PyTorch, not for the script compiler; the batch stays
    free: every op is batch-agnostic, and the parity check runs other batch sizes), the
    shape checks scripted around them."""
    with torch.no_grad():
        traced = torch.jit.trace(module.net, example, check_trace=False)
    return torch.jit.script(module.with_net(traced))


def entry_files(out_file: Path) -> dict[str, Path]:
    """``afhq.onnx`` -> {"latent": afhq.onnx, "reference": afhq.reference.onnx}."""
    out_file = Path(out_file)
    return {
        "latent": out_file,
        "reference": out_file.with_name(f"{out_file.stem}.reference{out_file.suffix}"),
    }


def example_inputs(model: StyleModel, entry: str, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Seeded inputs of one entry point: images in [-1, 1], z ~ N(0, 1), every domain."""
    gen = torch.Generator().manual_seed(seed)
    s = model.image_size
    image = torch.rand(n, 3, s, s, generator=gen) * 2 - 1
    domain = torch.arange(n) % len(model.domains)
    if entry == "latent":
        return image, torch.randn(n, model.latent_dim, generator=gen), domain
    return image, torch.rand(n, 3, s, s, generator=gen) * 2 - 1, domain


def export_entries(
    model_dir: Path, out_file: Path, write: Callable[[str, nn.Module, tuple, Path], None]
) -> tuple[StyleModel, dict[str, Path]]:
    """Write both entry points of ``model_dir`` with ``write(entry, module, example,
    path)``."""
    model = load_exportable(model_dir)
    files = entry_files(out_file)
    for entry, module in entry_modules(model).items():
        write(entry, module, example_inputs(model, entry, TRACE_BATCH, seed=0), files[entry])
    return model, files


def describe(
    model: StyleModel, model_dir: Path, files: dict[str, Path], fmt: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """The sidecar: everything needed to call the two files without stargan."""
    s, latent = model.image_size, model.latent_dim
    image = {"dtype": "float32", "shape": ["N", 3, s, s], "layout": "NCHW, RGB", "range": [-1, 1]}
    shapes = {
        "image": image,
        "reference": image,
        "z": {"dtype": "float32", "shape": ["N", latent], "distribution": "N(0, 1)"},
        "domain": {"dtype": "int64", "shape": ["N"], "values": list(model.domains)},
    }
    output = {"name": OUTPUT, "dtype": "float32", "shape": ["N", 3, s, s], "layout": "NCHW, RGB"}
    return {
        "kind": "stargan-v2-generator",
        "format": fmt,
        **extra,
        "stargan": stargan.__version__,
        "entry_points": {
            entry: {
                "file": files[entry].name,
                "computes": (
                    "G(image, F(z, domain))"
                    if entry == "latent"
                    else "G(image, E(reference, domain))"
                ),
                "inputs": [{"name": name, **shapes[name]} for name in names],
                "outputs": [output],
            }
            for entry, names in ENTRY_INPUTS.items()
        },
        "domains": list(model.domains),
        "preprocessing": {
            "convert": "RGB (alpha composited onto white)",
            "crop": model.crop,
            "crop_rule": "centre square of side min(crop, width, height); crop 0: "
            "the largest centred square",
            "resize": [s, s],
            "resize_filter": model.resize_filter,
            "scale": "float32(uint8) / 127.5 - 1, to [-1, 1]",
        },
        "postprocessing": "round((clip(y, -1, 1) + 1) * 127.5) to uint8, then NCHW -> HWC",
        "notes": "z is drawn by the caller; stargan sample's --seeds draw it with torch's RNG "
        "(synthesis.latents), and psi < 1 (truncation) is not part of the file",
        "source": {
            "model_dir": str(model_dir),
            "model": asdict(model.model_cfg),
            "config": read_style_config(model_dir),
        },
    }
