"""Official StarGAN v2 checkpoints (clovaai/stargan-v2 ``{step}_nets_ema.ckpt``) -> our v2
model folder (``config.json`` + G, F, E weights; stylemodel.py).

The official ``CheckpointIO`` writes ``torch.save({name: network.state_dict()})``:
``100000_nets_ema.ckpt`` holds ``generator``, ``mapping_network`` and ``style_encoder``
(the running averages, which the official code samples with) and, for the CelebA-HQ model
(w_hpf 1), ``fan``; ``{step}_nets.ckpt`` (the trained networks) adds ``discriminator``.
Our networks keep the official attribute names (models/v2.py), so each state dict loads
with ``strict=True`` and no table of renamed keys. Sizes are read from tensor shapes and
checked against what the caller says. The generator's high-pass kernel ``hpf.filter`` may
be in the file or not: ours is a non-persistent buffer derived from w_hpf; when the file
has it, it gives w_hpf and must equal ours. The file is read with
``torch.load(weights_only=True)`` (official_files.read_pickle): a pickle that needs
anything but tensors and plain containers is refused without running it.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from stargan.config import ModelConfig
from stargan.data.folders import label_spec as categorical_spec
from stargan.errors import StarGANError
from stargan.model_folder import MAX_IMAGE, MAX_WIDTH
from stargan.models.v2 import build_v2_config
from stargan.official_files import checked_state, existing_file, provenance, read_pickle
from stargan.stylemodel import StyleModel, load_fan

State = dict[str, torch.Tensor]

NETWORKS = {"generator": "G", "mapping_network": "F", "style_encoder": "E", "discriminator": "D"}
REQUIRED = ("generator", "mapping_network", "style_encoder")
HINT = "pass the official {step}_nets_ema.ckpt"
HPF_CENTRE = 8.0  # the high-pass kernel's centre before division by w_hpf (models/v2.py)
OFFICIAL_W_HPF = 1.0  # the official CelebA-HQ model's, assumed when the file does not say


# ---------------------------------------------------------------- reading
def read_official_v2(path: Path) -> dict[str, State]:
    """{official network name: state dict} of an official StarGAN v2 checkpoint file;
    ``fan`` included when present. Anything else in the file is an error."""
    path = existing_file(path)
    ckpt = read_pickle(path)
    if not isinstance(ckpt, dict) or not all(isinstance(k, str) for k in ckpt):
        raise StarGANError(
            f"{path} holds a {type(ckpt).__name__}, not the official StarGAN v2 "
            f"{{network name: state dict}} ({HINT})"
        )
    missing = [name for name in REQUIRED if name not in ckpt]
    if missing:
        flat = all(isinstance(v, torch.Tensor) for v in ckpt.values())
        hint = " (a StarGAN v1 G or D file? import it without --v2)" if flat else ""
        raise StarGANError(
            f"{path} has no {missing[0]!r} network (it has {', '.join(map(repr, ckpt))})"
            f"{hint}: {HINT}"
        )
    unknown = sorted(set(ckpt) - set(NETWORKS) - {"fan"})
    if unknown:
        raise StarGANError(f"{path} has an unexpected entry {unknown[0]!r}: {HINT}")
    return {
        name: _unwrapped(checked_state(value, f"{path} [{name!r}]", HINT))
        for name, value in ckpt.items()
    }


def _unwrapped(state: State) -> State:
    """Keys of a network saved inside ``nn.DataParallel`` lose their ``module.`` prefix."""
    if all(k.startswith("module.") for k in state):
        return {k.removeprefix("module."): v for k, v in state.items()}
    return state


# ---------------------------------------------------------------- sizes
def infer_model_config(
    states: Mapping[str, State],
    num_domains: int,
    image_size: int | None = None,
    w_hpf: float | None = None,
) -> ModelConfig:
    """The ModelConfig of the official networks in ``states``, read from tensor shapes and
    checked against ``num_domains`` and, where given, ``image_size`` and ``w_hpf``.

    F: ``shared.0`` is [mapping_dim, latent_dim], one ``unshared`` head per domain. E: its
    first conv is [base_dim, 3, 3, 3], then log2(size) - 2 down-sampling blocks whose
    widest conv is max_conv_dim, and heads [style_dim, dim]. G: log2(size) - 4 down-
    sampling blocks (one more with the high-pass skips, w_hpf > 0) and 2 bottleneck blocks.
    """
    G, F, E = (states[name] for name in REQUIRED)
    mapping_dim, latent_dim = _shape(F, "shared.0.weight", "mapping network", 2)
    heads = _block_count(F, "unshared")
    if heads != num_domains:
        raise StarGANError(
            f"the mapping network has {heads} domain heads, but {num_domains} domains were "
            f"given; list them in the order the model was trained with (sorted folder names)"
        )
    base_dim = _shape(E, "shared.0.weight", "style encoder", 4)[0]
    style_dim = _shape(E, "unshared.0.weight", "style encoder", 2)[0]
    blocks = _block_count(E, "shared", "conv1.weight")
    if not 1 <= blocks <= int(math.log2(MAX_IMAGE)) - 2:
        raise StarGANError(f"the style encoder has {blocks} down-sampling blocks: not StarGAN v2")
    size = 2 ** (blocks + 2)
    if image_size is not None and image_size != size:
        raise StarGANError(
            f"the style encoder was trained on {size} px images ({blocks} down-sampling "
            f"blocks), not image size {image_size}"
        )
    convs = [t for k, t in E.items() if re.fullmatch(r"shared\.\d+\.conv2\.weight", k)]
    max_conv_dim = max((t.shape[0] for t in convs), default=base_dim)
    widths = (latent_dim, mapping_dim, style_dim, base_dim, max_conv_dim)
    if not all(0 < w <= MAX_WIDTH for w in widths):
        raise StarGANError(f"the networks' widths {widths} are out of range (1-{MAX_WIDTH})")
    if _shape(G, "from_rgb.weight", "generator", 4)[0] != base_dim:
        raise StarGANError("the generator and the style encoder differ in their first width")
    down = _block_count(G, "encode", "conv1.weight") - 2  # the rest are the bottleneck
    if down - (blocks - 2) not in (0, 1):
        raise StarGANError(
            f"the generator does not fit the style encoder's {size} px: it has {down} "
            f"down-sampling blocks, expected {blocks - 2} (or one more with the high-pass "
            f"skips)"
        )
    w_hpf = _w_hpf(G, down > blocks - 2, w_hpf)
    return ModelConfig(
        arch="v2",
        image_size=size,
        c_dim=num_domains,
        latent_dim=latent_dim,
        style_dim=style_dim,
        mapping_dim=mapping_dim,
        max_conv_dim=max_conv_dim,
        base_dim=base_dim,
        w_hpf=w_hpf,
    )


def _w_hpf(G: State, has_hpf: bool, given: float | None) -> float:
    """w_hpf from the generator's layout and ``hpf.filter`` (centre 8 / w_hpf), if any."""
    kernel = G.get("hpf.filter")
    if not has_hpf:
        if kernel is not None or (given or 0.0) > 0:
            raise StarGANError(
                "the generator has no high-pass skips (w_hpf 0) but "
                + ("an hpf.filter" if kernel is not None else f"--w-hpf {given} was given")
            )
        return 0.0
    found = None
    if kernel is not None:
        if kernel.shape != (3, 3) or not kernel[1, 1] > 0:
            raise StarGANError("the generator's hpf.filter is not a 3x3 high-pass kernel")
        found = HPF_CENTRE / float(kernel[1, 1])
    if given == 0.0:
        raise StarGANError("the generator has the high-pass skips of w_hpf > 0; --w-hpf is 0")
    if given is not None and found is not None and not math.isclose(given, found):
        raise StarGANError(f"the generator's hpf.filter says w_hpf {found:g}, not {given:g}")
    return given or found or OFFICIAL_W_HPF


def _shape(state: State, key: str, what: str, dims: int) -> tuple[int, ...]:
    tensor = state.get(key)
    if tensor is None or tensor.dim() != dims:
        raise StarGANError(f"the {what} has no {dims}-d {key}: not a StarGAN v2 {what}")
    return tuple(tensor.shape)


def _block_count(state: State, prefix: str, leaf: str = "") -> int:
    """How many ``prefix.{i}.`` sub-modules (with a ``leaf`` tensor, if given) there are."""
    pattern = re.compile(rf"{re.escape(prefix)}\.(\d+)\.{re.escape(leaf) if leaf else ''}")
    return len({m.group(1) for k in state if (m := pattern.match(k))})


# ---------------------------------------------------------------- converting
def load_official(net: nn.Module, state: State, what: str) -> None:
    """``state`` into ``net`` strictly, except that keys of ``net``'s non-persistent
    buffers may be in the file too (and must equal ours)."""
    own = net.state_dict()
    derived = dict(net.named_buffers())
    for key in [k for k in state if k not in own and k in derived]:
        if state[key].shape != derived[key].shape or not torch.allclose(
            state[key].float(), derived[key].float()
        ):
            raise StarGANError(f"the {what}'s {key} differs from the one its sizes give")
        state = {k: v for k, v in state.items() if k != key}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
        raise StarGANError(
            f"the {what} does not fit a StarGAN v2 {what} of these sizes: "
            f"{(detail or [str(err)])[0][:240]}"
        ) from err


def import_official_v2(
    path: Path,
    out: Path,
    domains: Sequence[str],
    image_size: int | None = None,
    w_hpf: float | None = None,
    crop: int = 0,
) -> Path:
    """Write a v2 model folder from an official checkpoint; returns the folder.

    ``domains``: the domain names in the order of training (the official code sorts the
    domain folders: AFHQ cat, dog, wild; CelebA-HQ female, male). ``image_size`` and
    ``w_hpf``: checked against the file when given (w_hpf, else from ``hpf.filter``, else
    the official 1 where the generator has the high-pass skips). ``crop``: centre crop of
    input photos before resizing (0: the largest centred square); they are resized
    bilinear, as the official loaders (the folder records it). A ``fan`` entry is
    written as the folder's fan.safetensors."""
    spec = categorical_spec(tuple(domains))
    if crop < 0:
        raise StarGANError(f"crop must be >= 0, got {crop}")
    states = read_official_v2(path)
    cfg = infer_model_config(states, spec.dim, image_size, w_hpf)
    nets = build_v2_config(cfg)
    for name, state in states.items():
        if name in NETWORKS:
            load_official(nets[NETWORKS[name]], state, name.replace("_", " "))
    fan = _fan(states["fan"]) if "fan" in states and cfg.w_hpf > 0 else None
    meta = provenance(spec, crop, {"checkpoint": Path(path)}, "clovaai/stargan-v2")
    step = re.match(r"(\d+)_nets", Path(path).name)
    if step:
        meta["step"] = int(step.group(1))
    D = nets["D"] if "discriminator" in states else None
    model = StyleModel(nets["G"], nets["F"], nets["E"], cfg, spec, D, meta, fan)
    return model.save_pretrained(out, with_discriminator=D is not None)


def _fan(state: State) -> nn.Module:
    """The checkpoint's FAN, checked as the FAN loader checks any weights file."""
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "fan.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(file))
        return load_fan(file)
