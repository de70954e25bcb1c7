"""Official StarGAN v1 checkpoints (yunjey/stargan ``{iter}-G.ckpt`` / ``{iter}-D.ckpt``)
-> our model folder (``config.json`` + ``model.safetensors``).

The official code saves ``G.state_dict()`` and ``D.state_dict()`` with ``torch.save``.
Its networks have the layers of ours (models/v1.py) in the same forward order; they
differ in two ways, both handled here:

* its instance norms track running statistics (``running_mean``, ``running_var``,
  ``num_batches_tracked``); ours keep none, and dropping them is exact (see
  :func:`convert_generator`);
* its D heads are ``conv1`` (D_src) and ``conv2`` (D_cls); ours ``conv_src``, ``conv_cls``.

Layers are paired by walking both networks in forward order, checking each layer's
parameter names and shapes, so any ``conv_dim`` / ``repeat_num`` converts without a
table of key names. Sizes are read from the weights' shapes. Files are read with
``torch.load(weights_only=True)`` (or as safetensors): a pickle that needs anything but
tensors and plain containers is refused without running it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stargan.config import ModelConfig
from stargan.data import celeba
from stargan.data.folders import label_spec as categorical_spec
from stargan.data.labels import LabelSpec
from stargan.data.table import parse_exclusive
from stargan.errors import StarGANError
from stargan.model_folder import MAX_IMAGE, MAX_REPEAT, MAX_WIDTH
from stargan.models.v1 import Discriminator, Generator
from stargan.official_files import (
    State,
    checked_state,
    existing_file,
    provenance,
    read_pickle,
    read_safetensors,
)
from stargan.presets import RAFD
from stargan.translate import Translator

Layers = list[tuple[str, dict[str, torch.Tensor]]]  # (module path, {parameter: tensor})

# Top-level attributes of the official networks, in the order their __init__ defines
# them (= forward order); each pairs with ours at the same position.
OFFICIAL_G_HEADS = ("main",)
OFFICIAL_D_HEADS = ("main", "conv1", "conv2")
RUNNING_STATS = frozenset({"running_mean", "running_var", "num_batches_tracked"})
RAFD_CROP = 256  # the official --rafd_crop_size; CelebA's 178 is celeba.CROP


# ---------------------------------------------------------------- reading files
def read_official_state(path: Path) -> State:
    """A plain state dict (name -> tensor) from a ``.ckpt``/``.pth`` pickle, read with
    ``weights_only=True``, or from a ``.safetensors`` file. Anything else is refused."""
    path = existing_file(path)
    state = read_safetensors(path) if path.suffix == ".safetensors" else read_pickle(path)
    return checked_state(state, str(path), "pass the official {iter}-G.ckpt or {iter}-D.ckpt file")


# ---------------------------------------------------------------- converting
def convert_generator(
    state: Mapping[str, torch.Tensor], c_dim: int
) -> tuple[State, dict[str, int]]:
    """Official G state dict -> (our Generator's state dict, inferred ModelConfig fields
    ``c_dim``, ``g_conv_dim``, ``g_repeat_num``).

    Sizes come from the shapes: the first conv is ``[conv_dim, 3 + c_dim, 7, 7]``, and G
    has 6 convs plus 2 per residual block. ``c_dim`` (the number of attributes given)
    must match.

    Instance-norm running statistics are dropped, and that is exact for how the official
    model translates: its ``InstanceNorm2d(track_running_stats=True)`` layers use the
    running statistics only in eval mode, and the official code never calls ``eval()``
    (``Solver.test`` runs G in train mode under ``no_grad``), so every image is normalised
    by its own mean and variance. Our instance norm always does that (layers.py).
    """
    official = _official_layers(state, OFFICIAL_G_HEADS, "generator")
    convs = _conv_weights(official)
    if len(convs) < 6 or len(convs) % 2:
        raise StarGANError(
            f"generator checkpoint has {len(convs)} conv layers; a StarGAN v1 generator has "
            f"6 plus 2 per residual block"
        )
    fields = {
        "c_dim": convs[0].shape[1] - 3,
        "g_conv_dim": convs[0].shape[0],
        "g_repeat_num": (len(convs) - 6) // 2,
    }
    if fields["c_dim"] != c_dim:
        raise StarGANError(
            f"the generator takes {fields['c_dim']} labels (its first conv has "
            f"{convs[0].shape[1]} input channels = 3 + labels), but {c_dim} attributes were "
            f"given; list them in the order it was trained with"
        )
    _check_sizes(fields["g_conv_dim"], fields["g_repeat_num"], "generator")
    with torch.device("meta"):  # names and shapes only: nothing is allocated
        ours = Generator(c_dim, fields["g_conv_dim"], fields["g_repeat_num"])
    return _match(official, ours, "generator"), fields


def convert_discriminator(
    state: Mapping[str, torch.Tensor], image_size: int, c_dim: int | None = None
) -> tuple[State, dict[str, int]]:
    """Official D state dict -> (our Discriminator's state dict, inferred ModelConfig
    fields ``c_dim``, ``d_conv_dim``, ``d_repeat_num``).

    D has ``repeat_num`` trunk convs plus D_src and D_cls; D_cls's kernel is
    ``image_size / 2**repeat_num``, so the file fixes the image size it was trained at.
    """
    official = _official_layers(state, OFFICIAL_D_HEADS, "discriminator")
    convs = _conv_weights(official)
    if len(convs) < 3:
        raise StarGANError(
            f"discriminator checkpoint has {len(convs)} conv layers; a StarGAN v1 "
            f"discriminator has its trunk convs plus D_src and D_cls"
        )
    d_cls = convs[-1]  # [c_dim, ch, k, k]
    fields = {
        "c_dim": d_cls.shape[0],
        "d_conv_dim": convs[0].shape[0],
        "d_repeat_num": len(convs) - 2,
    }
    trained_size = d_cls.shape[-1] * 2 ** fields["d_repeat_num"]
    if trained_size != image_size:
        raise StarGANError(
            f"the discriminator was trained on {trained_size} px images (D_cls kernel "
            f"{d_cls.shape[-1]} x 2^{fields['d_repeat_num']}), not image size {image_size}"
        )
    if c_dim is not None and fields["c_dim"] != c_dim:
        raise StarGANError(
            f"the discriminator classifies {fields['c_dim']} labels, but {c_dim} attributes "
            f"were given"
        )
    _check_sizes(fields["d_conv_dim"], fields["d_repeat_num"], "discriminator")
    with torch.device("meta"):
        ours = Discriminator(
            image_size, fields["c_dim"], fields["d_conv_dim"], fields["d_repeat_num"]
        )
    return _match(official, ours, "discriminator"), fields


def _official_layers(
    state: Mapping[str, torch.Tensor], heads: tuple[str, ...], what: str
) -> Layers:
    """The checkpoint's tensors grouped by module, in the official forward order.

    Files need not list keys in that order (safetensors sorts them: ``main.10`` before
    ``main.2``), so modules are ordered by head, then by their numeric path."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        module, _, leaf = key.rpartition(".")
        head = module.split(".")[0]
        if head not in heads:
            hint = " (a discriminator file?)" if head in OFFICIAL_D_HEADS else ""
            raise StarGANError(
                f"{what} checkpoint has unexpected key {key!r}: an official StarGAN v1 "
                f"{what} has only {', '.join(h + '.*' for h in heads)}{hint}"
            )
        layers.setdefault(module, {})[leaf] = tensor
    missing = [h for h in heads if not any(m.split(".")[0] == h for m in layers)]
    if missing:
        raise StarGANError(
            f"{what} checkpoint has no {missing[0]}.* keys: not an official StarGAN v1 "
            f"{what} (the other network's file?)"
        )

    def order(module: str) -> tuple:
        head, *path = module.split(".")
        return heads.index(head), [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in path]

    return sorted(layers.items(), key=lambda item: order(item[0]))


def _conv_weights(layers: Layers) -> list[torch.Tensor]:
    return [p["weight"] for _, p in layers if "weight" in p and p["weight"].dim() == 4]


def _match(official: Layers, net: nn.Module, what: str) -> State:
    """Pair the official layers with ``net``'s parameterised modules in forward order;
    each pair must hold the same parameter names and shapes. Returns ``net``'s keys."""
    ours = [
        (name, dict(module.named_parameters(recurse=False)), module)
        for name, module in net.named_modules()
        if next(module.parameters(recurse=False), None) is not None
    ]
    out: State = {}
    for i, (name, expected, module) in enumerate(ours):
        if i == len(official):
            raise StarGANError(
                f"{what} checkpoint ends after {i} layers; a StarGAN v1 {what} of these "
                f"sizes has {len(ours)} (the next would be a {type(module).__name__})"
            )
        where, tensors = official[i]
        if isinstance(module, nn.InstanceNorm2d):  # see convert_generator: unused, exact
            tensors = {k: v for k, v in tensors.items() if k not in RUNNING_STATS}
        if set(tensors) < set(expected):
            missing = sorted(set(expected) - set(tensors))
            raise StarGANError(f"{what} checkpoint lacks {where}.{missing[0]}")
        if set(tensors) != set(expected) or any(
            tensors[k].shape != p.shape or not tensors[k].is_floating_point()
            for k, p in expected.items()
        ):
            raise StarGANError(
                f"{what} checkpoint does not fit a StarGAN v1 {what} at {where}: the file "
                f"has {_describe(tensors)}, expected {type(module).__name__} with "
                f"{_describe(expected)}"
            )
        out.update({f"{name}.{k}": tensors[k] for k in expected})
    if len(official) > len(ours):
        where, tensors = official[len(ours)]
        raise StarGANError(
            f"{what} checkpoint has unexpected layer {where} ({_describe(tensors)}) after "
            f"the {len(ours)} layers of a StarGAN v1 {what}"
        )
    return out


def _describe(tensors: Mapping[str, torch.Tensor]) -> str:
    return ", ".join(f"{k} {list(v.shape)}" for k, v in sorted(tensors.items()))


def _check_sizes(conv_dim: int, repeat_num: int, what: str) -> None:
    """The bounds a model folder is loaded with (translate.py), checked before writing."""
    if not 0 < conv_dim <= MAX_WIDTH or not 0 <= repeat_num <= MAX_REPEAT:
        raise StarGANError(
            f"{what} checkpoint has conv_dim {conv_dim}, repeat_num {repeat_num}: out of "
            f"range (conv_dim 1-{MAX_WIDTH}, repeat_num 0-{MAX_REPEAT})"
        )


# ---------------------------------------------------------------- model folder
def import_official(
    g_path: Path,
    out: Path,
    attrs: Sequence[str],
    image_size: int,
    d_path: Path | None = None,
    categorical: bool = False,
    exclusive_groups: Sequence[str] | None = None,
    crop: int | None = None,
) -> Path:
    """Write a model folder from official checkpoints; returns the folder.

    ``attrs``: the label names in the order the model was trained with (the official
    ``--selected_attrs``; RaFD: its expression folders in sorted order). Empty: the
    official defaults, CelebA's 5 paper attributes or RaFD's 8 expressions.
    ``categorical``: one-hot labels (RaFD) instead of multi-label (CelebA).
    ``exclusive_groups``: multi-label groups written ``A|B|C`` whose members exclude each
    other; None: the hair colours among ``attrs``, as the official ``create_labels``.
    ``crop``: centre crop of input photos before resizing; None: the official default
    (178 CelebA, 256 RaFD). Photos are resized bilinear, as the official loader (the
    folder records it). ``d_path``: the matching ``{iter}-D.ckpt``, which lets the
    model estimate an input's own labels.
    """
    spec = _label_spec(attrs, categorical, exclusive_groups)
    crop = (RAFD_CROP if categorical else celeba.CROP) if crop is None else crop
    if image_size <= 0 or image_size % 4 or image_size > MAX_IMAGE or crop < 0:
        raise StarGANError(
            f"image size must be a positive multiple of 4 up to {MAX_IMAGE} (got "
            f"{image_size}) and crop >= 0 (got {crop})"
        )
    g_state, g_fields = convert_generator(read_official_state(g_path), spec.dim)
    fields = {"image_size": image_size, **g_fields, **_unused_d_fields(image_size)}
    d_state = None
    if d_path is not None:
        d_state, d_fields = convert_discriminator(read_official_state(d_path), image_size, spec.dim)
        fields.update(d_fields)
    cfg = ModelConfig(**fields)
    G = Generator(cfg.c_dim, cfg.g_conv_dim, cfg.g_repeat_num)
    G.load_state_dict(g_state, strict=True)
    D = None
    if d_state is not None:
        D = Discriminator(cfg.image_size, cfg.c_dim, cfg.d_conv_dim, cfg.d_repeat_num)
        D.load_state_dict(d_state, strict=True)
    meta = _meta(spec, crop, Path(g_path), None if d_path is None else Path(d_path))
    return Translator(G, cfg, spec, D, meta).save_pretrained(out, with_discriminator=D is not None)


def _label_spec(
    attrs: Sequence[str], categorical: bool, exclusive_groups: Sequence[str] | None
) -> LabelSpec:
    names = tuple(attrs) or (RAFD if categorical else celeba.PAPER_ATTRS)
    if categorical:
        if exclusive_groups:
            raise StarGANError("exclusive groups are for multi-label models; one-hot is exclusive")
        return categorical_spec(names)
    if exclusive_groups is None:
        return celeba.label_spec(names)  # hair colours exclusive, as the official code
    return LabelSpec(names, "multi", parse_exclusive(tuple(exclusive_groups), names, names))


def _unused_d_fields(image_size: int) -> dict[str, int]:
    """D sizes for a folder without D: the paper's, with as many halvings as the image
    size allows, so the config stays one that ``config.validate`` accepts."""
    repeat = 6
    while image_size % 2**repeat:
        repeat -= 1
    return {"d_conv_dim": 64, "d_repeat_num": repeat}


def _meta(spec: LabelSpec, crop: int, g_path: Path, d_path: Path | None) -> dict[str, Any]:
    """The folder's provenance, in the keys export.py writes, plus ``imported``."""
    files = {"generator": g_path, **({"discriminator": d_path} if d_path else {})}
    meta = provenance(spec, crop, files, "yunjey/stargan")
    step = re.fullmatch(r"(\d+)-G\.(ckpt|pth|safetensors)", g_path.name)
    if step:
        meta["step"] = int(step.group(1))
    return meta
