"""The pairwise CycleGAN baseline as one model: k(k-1) generators, one per ordered pair of
domains, behind the translate-to-a-domain surface that ``stargan eval`` uses. Reaching
domain j from an image of domain i takes G_{i->j}, so every call names the inputs' own
domain too (evaluation knows it from the labels; your own photos need ``--from``).

Folder layout (``kind`` ``cyclegan-pairs``, ``format_version`` 1)::

    config.json                 kind, format_version, model (CycleModelConfig), labels
                                (the domains), generators [{source, target, file}],
                                preprocessing and provenance, as a stargan-v1 folder's
    G_00_to_01.safetensors ...  one generator per ordered pair (domain 0 -> domain 1)
    D_00_to_01.safetensors ...  optional: the discriminator that judged G_00_to_01's
                                outputs (a D of domain 1); counted by ``params``, else unused
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from stargan.atomic import write_text
from stargan.config import from_dict
from stargan.cyclegan_config import CycleGANConfig, CycleModelConfig, load_cycle_config
from stargan.data.dataset import to_uint8
from stargan.data.joint import LabelLayout
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.model_folder import (
    MAX_IMAGE,
    MAX_WIDTH,
    PAIRS_KIND,
    check_meta,
    data_provenance,
    declared_kind,
    load_weights,
    model_resize_filter,
    preprocess,
    read_config,
    save_weights,
)
from stargan.models import count_parameters
from stargan.models.cyclegan import PatchDiscriminator, ResnetGenerator
from stargan.train.checkpoint import list_checkpoints, load_checkpoint
from stargan.train.cyclegan_run import PAIRS_FILE, find_pairs_run, plan_pairs

KIND = PAIRS_KIND
FORMAT_VERSION = 1
MAX_BLOCKS, MAX_LAYERS = 64, 10  # with model_folder's bounds: refuse absurd configs


def _key(source: int, target: int) -> str:
    return f"{source:02d}_to_{target:02d}"


class PairwiseGenerator(nn.Module):
    """The set's generators called as one: ``(x, c_trg, c_org)`` -> each row through
    G_{source -> target}; rows whose target is their own domain come back unchanged
    (what the identity loss asks of every CycleGAN generator)."""

    def __init__(self, nets: dict[tuple[int, int], nn.Module]) -> None:
        super().__init__()
        self.nets = nn.ModuleDict({_key(s, t): g for (s, t), g in sorted(nets.items())})

    def forward(self, x: torch.Tensor, c_trg: torch.Tensor, c_org: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, S, S] in [-1, 1]; c_trg, c_org: [N, k] one-hot -> [N, 3, S, S]
        src, trg = c_org.argmax(1), c_trg.argmax(1)
        y = x.clone()
        for s, t in sorted(set(zip(src.tolist(), trg.tolist(), strict=True))):
            if s != t:
                rows = ((src == s) & (trg == t)).nonzero().flatten()
                y[rows] = self.nets[_key(s, t)](x[rows])
        return y


class PairwiseModel:
    """A set of pairwise generators with the preprocessing of training."""

    needs_source = True  # evaluate/score.generate passes the inputs' own labels
    keeps_own_domain = True  # rows whose target is their own domain come back unchanged

    def __init__(
        self,
        G: PairwiseGenerator,
        model_cfg: CycleModelConfig,
        spec: LabelSpec,
        D: nn.ModuleDict | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.G = G.eval()
        self.D = D.eval() if D is not None else None
        self.model_cfg = model_cfg
        self.layout = LabelLayout.single(spec)
        self.meta = dict(meta or {})
        self.crop = int(self.meta.get("crop", 0))
        self.resize_filter = model_resize_filter(self.meta)

    @property
    def spec(self) -> LabelSpec:
        return self.layout.specs[0]

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    @property
    def image_size(self) -> int:
        return self.model_cfg.image_size

    # ------------------------------------------------------------ inference
    def preprocess(self, images: Any) -> torch.Tensor:
        """PIL image(s), uint8 numpy or tensors -> [N, 3, S, S] in [-1, 1]
        (:func:`stargan.model_folder.preprocess`, as every family's)."""
        return preprocess(images, self.image_size, self.crop, self.resize_filter, self.device)

    @torch.no_grad()
    def generate(
        self, x: torch.Tensor, c_trg: torch.Tensor, c_org: torch.Tensor | None
    ) -> torch.Tensor:
        """G_{source -> target} per input of ``x`` (preprocessed); ``c_org`` is required."""
        if c_org is None:
            raise StarGANError("a pairwise model set needs the inputs' own domains to translate")
        return self.G(x, c_trg, c_org)

    @torch.no_grad()
    def translate(self, images: Any, target: str, source: str) -> Any:
        """``images`` of domain ``source`` translated to domain ``target`` by G_{source ->
        target}. Returns the input's kind: PIL (list), uint8 tensor or [-1, 1] tensor."""
        x = self.preprocess(images)
        c_org, c_trg = (self._one_hot(name, len(x)) for name in (source, target))
        y = self.G(x, c_trg, c_org)
        if isinstance(images, torch.Tensor):
            return to_uint8(y) if images.dtype == torch.uint8 else y
        pils = [Image.fromarray(a) for a in to_uint8(y).permute(0, 2, 3, 1).cpu().numpy()]
        return pils[0] if isinstance(images, Image.Image) else pils

    def _one_hot(self, name: str, n: int) -> torch.Tensor:
        c = torch.zeros(n, self.spec.dim, device=self.device)
        c[:, self.spec.index(name)] = 1.0
        return c

    # ------------------------------------------------------------ save / load
    def save_pretrained(self, path: str | Path, with_discriminators: bool = True) -> Path:
        path, names = Path(path), self.spec.names
        entries = []
        try:
            path.mkdir(parents=True, exist_ok=True)
            for key, net in self.G.nets.items():
                s, t = (int(v) for v in key.split("_to_"))
                g_file = f"G_{key}.safetensors"
                entries.append({"source": names[s], "target": names[t], "file": g_file})
                save_weights(net, path / g_file)
                d_file = path / f"D_{key}.safetensors"
                if with_discriminators and self.D is not None:
                    save_weights(self.D[key], d_file)
                else:  # never leave an earlier export's D beside these Gs
                    d_file.unlink(missing_ok=True)
            config = {
                "kind": KIND,
                "format_version": FORMAT_VERSION,
                "model": asdict(self.model_cfg),
                "labels": self.spec.to_dict(),
                "generators": entries,
                **self.meta,
            }
            write_text(path / "config.json", json.dumps(config, indent=2))
        except OSError as err:
            raise StarGANError(f"cannot write model folder {path}: {err.strerror}") from err
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> PairwiseModel:
        path = Path(path)
        config = read_pairs_config(path)
        model_cfg, spec = _checked(path, config)
        gens, discs = {}, {}
        for s in range(spec.dim):
            for t in range(spec.dim):
                if s != t:
                    gens[(s, t)] = ResnetGenerator(model_cfg.g_dim, model_cfg.g_blocks)
                    load_weights(gens[(s, t)], path / f"G_{_key(s, t)}.safetensors")
                    d_file = path / f"D_{_key(s, t)}.safetensors"
                    if d_file.exists():
                        discs[_key(s, t)] = PatchDiscriminator(model_cfg.d_dim, model_cfg.d_layers)
                        load_weights(discs[_key(s, t)], d_file)
        D = nn.ModuleDict(discs).to(device) if len(discs) == len(gens) else None
        meta = {k: v for k, v in config.items() if k not in _STRUCTURE}
        return cls(PairwiseGenerator(gens).to(device), model_cfg, spec, D, meta)


_STRUCTURE = ("kind", "format_version", "model", "labels", "generators")


def is_pairwise_model(path: str | Path) -> bool:
    """Whether ``path`` is a ``cyclegan-pairs`` model folder."""
    return declared_kind(path) == KIND


def read_pairs_config(path: Path) -> dict[str, Any]:
    """config.json of a pairwise model set, checked for kind, format version and keys."""
    return read_config(path, KIND, FORMAT_VERSION, ("model", "labels"), run_markers=(PAIRS_FILE,))


def _checked(path: Path, config: dict[str, Any]) -> tuple[CycleModelConfig, LabelSpec]:
    """Typed model config and domains, bounded before any network is built."""
    where = f"{path}/config.json"
    m = from_dict(CycleModelConfig, config["model"], f"{where} model")
    try:
        spec = LabelSpec.from_dict(config["labels"])
    except StarGANError as err:
        raise StarGANError(f"{where}: {err}") from err
    if (
        not 16 <= m.image_size <= MAX_IMAGE
        or not 0 < max(m.g_dim, m.d_dim) <= MAX_WIDTH
        or not 0 <= m.g_blocks <= MAX_BLOCKS
        or not 0 < m.d_layers <= MAX_LAYERS
        or spec.kind != "categorical"
        or spec.dim < 2
    ):
        raise StarGANError(f"{where}: model sizes out of range, or not 2+ categorical domains")
    check_meta(config, where)
    return m, spec


# ---------------------------------------------------------------- export
def export_pairs(run: Path, out: Path, with_discriminators: bool = True) -> tuple[Path, list[str]]:
    """Write the model folder of a pairwise run from each pair's latest checkpoint;
    returns the folder and the pairs that have not finished their iterations."""
    run = find_pairs_run(Path("."), str(run))
    cfg = load_cycle_config(run / "config.json")
    recorded = json.loads((run / PAIRS_FILE).read_text())
    spec = LabelSpec(tuple(recorded["domains"]), "categorical")
    plan = plan_pairs(cfg, spec)
    gens, discs, steps = {}, {}, {}
    for pair in plan.pairs:
        found = list_checkpoints(run / "pairs" / pair.folder / "checkpoints")
        if not found:
            raise StarGANError(
                f"pair {pair.label} of {run} has no checkpoint yet: continue the run with "
                f"stargan cyclegan train --resume {run}"
            )
        nets = {"G": ResnetGenerator(cfg.model.g_dim, cfg.model.g_blocks)}
        nets["F"] = ResnetGenerator(cfg.model.g_dim, cfg.model.g_blocks)
        nets |= {k: PatchDiscriminator(cfg.model.d_dim, cfg.model.d_layers) for k in ("D_X", "D_Y")}
        state = load_checkpoint(found[-1], nets, None, torch.device("cpu"))
        gens[(pair.x, pair.y)], gens[(pair.y, pair.x)] = nets["G"], nets["F"]
        # D_Y judged G's outputs (domain Y), D_X judged F's
        discs[_key(pair.x, pair.y)], discs[_key(pair.y, pair.x)] = nets["D_Y"], nets["D_X"]
        steps[pair.label] = state.step
    meta = _provenance(cfg, run, steps, plan.iters)
    model = PairwiseModel(PairwiseGenerator(gens), cfg.model, spec, nn.ModuleDict(discs), meta)
    unfinished = [label for label, step in steps.items() if step < plan.iters]
    return model.save_pretrained(out, with_discriminators), unfinished


def _provenance(cfg: CycleGANConfig, run: Path, steps: dict[str, int], iters: int) -> dict:
    """Data source and preprocessing (the keys evaluation reads, as a stargan-v1 folder
    has them), run, and each pair's iterations."""
    return {
        **data_provenance([cfg.data]),
        "run_name": cfg.name,
        "source": str(run),
        "iters_per_pair": iters,
        "pair_steps": steps,
        "compare_to": cfg.compare_to,
    }


# ---------------------------------------------------------------- parameters
def pairwise_parameters(model_cfg: CycleModelConfig, k: int) -> dict[str, int]:
    """Parameters of one G and one D, and of the whole set of k(k-1) of each (counted on
    the meta device: nothing is allocated)."""
    with torch.device("meta"):
        g = count_parameters(ResnetGenerator(model_cfg.g_dim, model_cfg.g_blocks))
        d = count_parameters(PatchDiscriminator(model_cfg.d_dim, model_cfg.d_layers))
    n = k * (k - 1)
    return {"generators": n, "G_each": g, "D_each": d, "G": n * g, "D": n * d, "total": n * (g + d)}


def stargan_parameters(preset: str, k: int) -> dict[str, int]:
    """Parameters of the G and D of StarGAN preset ``preset`` for ``k`` domains."""
    from stargan.models import build
    from stargan.presets import get_preset

    model = replace(get_preset(preset).model, c_dim=k, mask_dim=0)
    if model.arch != "v1":
        raise StarGANError(f"compare_to {preset!r} is a StarGAN {model.arch} preset; give a v1 one")
    with torch.device("meta"):
        nets = build(model)
    g, d = count_parameters(nets["G"]), count_parameters(nets["D"])
    return {"G": g, "D": d, "total": g + d}
