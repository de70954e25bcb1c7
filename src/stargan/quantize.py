"""Opt-in int8 inference of the StarGAN v1 generator on x86 CPUs (oneDNN, VNNI).

Static post-training quantization. Every convolution of G runs in int8 -- uint8
activations with one scale per tensor, from calibration on real images and target
labels; int8 weights with one symmetric scale per output channel -- through oneDNN's
int8 convolution (the kernel PyTorch's X86InductorQuantizer lowers to), which also
dequantizes and returns float32. Instance norm, ReLU, the residual sum and tanh stay in
float32: they are a small part of the work, and a float residual stream keeps most of
the accuracy. Each norm -> ReLU -> quantize runs as one in-place pass (the norm's
affine map and the quantization scale fold into one multiply-add; the ReLU is the
clamp at the zero point).

Inference only: no gradients and no ``state_dict`` to save; quantize again after
loading the float model (calibration takes seconds). ``Translator.quantize`` does that
for a model folder; ``stargan translate --int8`` and ``stargan serve --int8`` call it.

Why not the other PyTorch routes (torch 2.13, measured on a 2-core AVX512-VNNI CPU):
- eager ``torch.ao.quantization`` (deprecated) converts, but its quantized instance
  norm, ReLU and add are slower than the whole float model, and its x86/onednn int8
  ``ConvTranspose2d`` gives wrong outputs (14 dB against float);
- PT2E (``prepare_pt2e``, ``X86InductorQuantizer``) has left torch for torchao, which
  is not a dependency.

ConvTranspose2d(k=4, s=2, p=1) has no oneDNN int8 kernel here, so the up-sampling runs
as its exact sub-pixel form: a 2x2 convolution with 4x the output channels, one group
per output-pixel phase, interleaved afterwards (the same multiplies).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from stargan.errors import StarGANError
from stargan.model_folder import V1_KIND, declared_kind
from stargan.models.layers import ResidualBlock

if TYPE_CHECKING:
    from stargan.translate import Translator

__all__ = [
    "Int8Generator",
    "calibration_set",
    "int8_unsupported_reason",
    "quantize_generator",
    "require_int8",
]


def int8_unsupported_reason() -> str | None:
    """None when this machine can run the int8 path, else why it cannot."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.onednn, "qconv_prepack"):
        return "this PyTorch build has no oneDNN int8 convolution"
    # Without VNNI, oneDNN sums u8 x s8 products in saturating 16-bit steps (wrong outputs).
    if not torch.cpu._is_vnni_supported():
        return "this CPU lacks AVX512-VNNI, which the int8 convolution needs"
    return None


def require_int8(device: str | torch.device, model_dir: str | Path | None = None) -> None:
    """Raise one clear StarGANError unless int8 inference can run: a StarGAN v1 model
    (``model_dir``'s declared kind, when given), on the CPU, of a machine that supports it.
    Commands call it before loading anything."""
    kind = declared_kind(Path(model_dir)) if model_dir is not None else None
    if kind is not None and kind != V1_KIND:
        raise StarGANError(
            f"int8 inference is for StarGAN v1 models only; {model_dir} holds a {kind!r} model"
        )
    if str(device).split(":")[0] != "cpu":
        raise StarGANError(
            f"int8 inference is a CPU path (oneDNN on x86 with VNNI), not for device "
            f"{device!r}: drop --int8, or use --device cpu"
        )
    reason = int8_unsupported_reason()
    if reason is not None:
        raise StarGANError(f"int8 inference is not available: {reason}")


@torch.no_grad()
def quantize_generator(
    G: nn.Module,
    calibration_images: torch.Tensor,
    calibration_labels: torch.Tensor,
    batch_size: int = 8,
) -> Int8Generator:
    """An int8 copy of the v1 generator ``G``, called like ``G(x, c)``; ``G`` is unchanged.

    ``calibration_images``: [N, 3, H, W] in [-1, 1], real inputs of the size G will see;
    ``calibration_labels``: [N, c_dim] target labels, one per image, like those used at
    inference (e.g. single-domain changes of each image's labels). Each conv's input
    range is the min/max over these N images: the same inputs give the same model.
    """
    if any(p.device.type != "cpu" for p in G.parameters()):
        raise StarGANError("int8 inference runs on the CPU only; load the model on the CPU")
    q = Int8Generator(G)
    x, c = calibration_images, calibration_labels
    if x.dim() != 4 or x.size(1) != 3 or x.size(0) == 0 or not x.is_floating_point():
        raise StarGANError(f"calibration images must be float [N, 3, H, W], got {list(x.shape)}")
    if c.shape != (x.size(0), q.c_dim):
        raise StarGANError(
            f"calibration labels must be [{x.size(0)}, {q.c_dim}], got {list(c.shape)}"
        )
    reason = int8_unsupported_reason()
    if reason is not None:
        raise StarGANError(f"int8 inference is not available: {reason}")
    for i in range(0, x.size(0), batch_size):  # float forward, recording each conv's input range
        q(x[i : i + batch_size].float(), c[i : i + batch_size])
    for m in q.modules():
        if isinstance(m, _Int8Conv):
            m.freeze()
    return q.eval()


@torch.no_grad()
def calibration_set(
    translator: Translator, x: torch.Tensor, c_org: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``quantize_generator``'s inputs for a model folder: each image of ``x`` ([N, 3, S, S]
    in [-1, 1], e.g. ``translator.preprocess(images)``) with G's label input for every
    single-domain change of its labels (``c_org``, else D_cls's estimate) -- the targets
    ``all_domains`` uses.
    With 32 CelebA / CK+ images (x every target), trained models kept 46 dB against fp32
    (43 dB for the worst image); with 4, rare inputs clipped (34 dB worst)."""
    changes = translator.layout.changes_with_sources(translator.dataset_labels(x, c_org))
    inputs = [translator.label_input(c_trg, c_src) for _, c_src, c_trg in changes]
    return x.repeat(len(inputs), 1, 1, 1), torch.cat(inputs)


class Int8Generator(nn.Module):
    """The v1 generator with int8 convolutions (paper Table 4). Built by ``quantize_generator``;
    until then it runs in float32 and records the ranges that calibration needs.

    ``chunk``: images per pass. Per image the int8 kernels are as fast at batch 1 as at
    batch 16, and small chunks keep the float activations in cache and under glibc's
    32 MiB mmap threshold (fresh pages for each big tensor cost more than a conv).
    Measured at 128 px, 1 thread: chunk 1-4 ~110 ms/image, 16 ~145."""

    def __init__(self, G: nn.Module, chunk: int = 4) -> None:
        super().__init__()
        if not getattr(G, "is_paper", True):  # anything else fails the layer check below
            raise StarGANError(
                "int8 covers the paper's generator only, not one with model.g_skip, "
                "g_output, g_upsample or g_cond_norm (the quality recipe): translate in float"
            )
        layers = list(getattr(G, "main", []))
        n_res = sum(isinstance(m, ResidualBlock) for m in layers)
        expected = (
            [nn.Conv2d, nn.InstanceNorm2d, nn.ReLU] * 3
            + [ResidualBlock] * n_res
            + [nn.ConvTranspose2d, nn.InstanceNorm2d, nn.ReLU] * 2
            + [nn.Conv2d, nn.Tanh]
        )
        if n_res == 0 or [type(m) for m in layers] != expected:
            raise StarGANError("int8: G is not a StarGAN v1 generator")
        self.c_dim, self.chunk = G.c_dim, chunk
        self.down = _stages(layers[:9])  # stem + 2 down-sampling convs
        self.blocks = nn.ModuleList(_stages(list(b.main)) for b in layers[9 : 9 + n_res])
        self.up = _stages(layers[9 + n_res : -2])
        self.last = _int8_conv(layers[-2])

    @torch.no_grad()
    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, H, W] in [-1, 1]; c: [N, c_dim] target labels -> [N, 3, H, W]
        return torch.cat(
            [
                self._forward(xs, cs)
                for xs, cs in zip(x.split(self.chunk), c.split(self.chunk), strict=True)
            ]
        )

    def _forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c_map = c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.size(2), x.size(3))
        # oneDNN works in channels-last; keeping every activation so saves reorders.
        h = torch.cat([x, c_map], dim=1).contiguous(memory_format=torch.channels_last)
        q = self.down[0].conv.quantize(h)
        # stem and down-sampling: conv -> IN -> ReLU
        for stage, nxt in zip(self.down[:-1], self.down[1:], strict=True):
            q = nxt.conv.quantize(stage.conv(q), stage.norm, relu=True)
        h = self.down[-1].norm(self.down[-1].conv(q)).relu_()  # float residual stream
        for a, b in self.blocks:  # h + IN(conv(ReLU(IN(conv(h)))))
            q = b.conv.quantize(a.conv(a.conv.quantize(h, inplace=False)), a.norm, relu=True)
            h = b.norm(b.conv(q)).add_(h)
        q = self.up[0].conv.quantize(h)
        # up-sampling: conv -> IN -> ReLU
        for stage, nxt_conv in zip(
            self.up, [*(s.conv for s in self.up[1:]), self.last], strict=True
        ):
            q = nxt_conv.quantize(stage.conv(q), stage.norm, relu=True)
        return self.last(q).tanh_().contiguous()


def _stages(layers: list[nn.Module]) -> nn.ModuleList:
    """One stage per conv -> IN [-> ReLU] run of ``layers``."""
    return nn.ModuleList(
        _Stage(
            _Int8ConvTranspose(m) if isinstance(m, nn.ConvTranspose2d) else _int8_conv(m),
            _Norm(layers[i + 1]),
        )
        for i, m in enumerate(layers)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    )


def _int8_conv(m: nn.Conv2d) -> _Int8Conv:
    if m.dilation != (1, 1) or m.groups != 1 or m.padding_mode != "zeros":
        raise StarGANError("int8: only plain (undilated, ungrouped, zero-padded) convolutions")
    return _Int8Conv(m.weight, m.bias, m.stride, m.padding)


class _Stage(nn.Module):
    def __init__(self, conv: nn.Module, norm: _Norm) -> None:
        super().__init__()
        self.conv, self.norm = conv, norm


class _Norm(nn.Module):
    """InstanceNorm2d (affine, per-image statistics) as a per-(image, channel) affine map,
    computed for channels-last activations."""

    def __init__(self, m: nn.InstanceNorm2d) -> None:
        super().__init__()
        if m.track_running_stats or not m.affine:
            raise StarGANError("int8: only affine InstanceNorm2d without running stats")
        self.weight = nn.Parameter(m.weight.detach().float().clone(), requires_grad=False)
        self.bias = nn.Parameter(m.bias.detach().float().clone(), requires_grad=False)
        self.eps = m.eps

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b), each [N, C, 1, 1], with IN(x) = a * x + b."""
        n, c, h, w = x.shape
        # Sums over [N, H*W, C], the channels-last memory order: one vectorised pass each,
        # ~30x faster here than torch.var_mean over dims (2, 3) of the same tensor.
        v = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
        mean = v.sum(1) / (h * w)
        var = (v.square().sum(1) / (h * w) - mean.square()).clamp_min(0)
        a = self.weight * torch.rsqrt(var + self.eps)
        return a[:, :, None, None], (self.bias - mean * a)[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """IN(x), in place."""
        a, b = self.coefficients(x)
        return x.mul_(a).add_(b)


class _Int8Conv(nn.Module):
    """Conv2d on uint8 activations x int8 weights -> float32. Until ``freeze()`` it runs in
    float32 and ``quantize`` records the range of the input."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: tuple[int, int],
        padding: tuple[int, int],
    ) -> None:
        super().__init__()
        self.args = (list(stride), list(padding), [1, 1], 1)  # stride, padding, dilation, groups
        self.weight = weight.detach().float().clone()  # float until freeze()
        self.bias = None if bias is None else bias.detach().float().clone()
        self.lo, self.hi = 0.0, 0.0  # input range seen so far (always holding 0)
        self.packed: torch.Tensor | None = None

    def freeze(self) -> None:
        """Quantize: input scale and zero point from the observed range; weights
        symmetric per output channel."""
        scale = max(self.hi - self.lo, 1e-8) / 255
        self.x_scale, self.x_zp = scale, min(max(round(-self.lo / scale), 0), 255)
        w = self.weight
        self.w_scale = (w.abs().amax(dim=(1, 2, 3)) / 127).clamp_min(1e-12)
        w_int8 = torch.round(w / self.w_scale[:, None, None, None]).to(torch.int8)
        self.w_zp = torch.zeros(w.size(0), dtype=torch.int64)
        self.packed = torch.ops.onednn.qconv_prepack(
            w_int8, self.w_scale, self.x_scale, self.x_zp, *self.args, None
        )
        self.weight = None  # the packed copy is all inference needs

    def quantize(
        self, x: torch.Tensor, norm: _Norm | None = None, relu: bool = False, inplace: bool = True
    ) -> torch.Tensor:
        """float x -> this conv's input: uint8 of ReLU(IN(x)) (each optional), in one
        in-place pass over x unless ``inplace=False``."""
        a, b = norm.coefficients(x) if norm is not None else (1.0, 0.0)
        if self.packed is None:  # calibrating: the float activation, range recorded
            x = x * a + b
            x = x.relu() if relu else x
            self.lo, self.hi = min(self.lo, x.min().item()), max(self.hi, x.max().item())
            return x
        s = 1 / self.x_scale
        y = x.mul_(a * s) if inplace else x.mul(a * s)
        # + 0.5 and truncation = round half up; the clamp at the zero point is the ReLU
        y = y.add_(b * s + (self.x_zp + 0.5)).clamp_(self.x_zp if relu else 0, 255)
        return y.to(torch.int32).to(torch.uint8)  # 2x faster than float -> uint8 directly

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        if self.packed is None:
            return F.conv2d(q, self.weight, self.bias, *self.args)
        return torch.ops.onednn.qconv2d_pointwise(
            q, self.x_scale, self.x_zp, self.packed, self.w_scale, self.w_zp, self.bias,
            *self.args, 1.0, 0, torch.float32, "none", [], "",
        )  # fmt: skip


class _Int8ConvTranspose(nn.Module):
    """ConvTranspose2d(k=4, s=2, p=1) as a 2x2 conv (padding 1) with one output group per
    output phase (a, b): out[2m + a, 2n + b] = conv[phase (a, b)][m + a, n + b]."""

    TAPS = ((3, 1), (2, 0))  # kernel taps of phase a, applied to inputs m - 1 + a, m + a

    def __init__(self, m: nn.ConvTranspose2d) -> None:
        super().__init__()
        shape = (m.kernel_size, m.stride, m.padding, m.output_padding, m.dilation, m.groups)
        if shape != ((4, 4), (2, 2), (1, 1), (0, 0), (1, 1), 1):
            raise StarGANError("int8: only ConvTranspose2d(k=4, s=2, p=1) is supported")
        w = m.weight.detach()  # [C_in, C_out, 4, 4]
        phases = [
            w[:, :, list(ta)][:, :, :, list(tb)].transpose(0, 1)  # [C_out, C_in, 2, 2]
            for ta in self.TAPS
            for tb in self.TAPS
        ]
        bias = None if m.bias is None else m.bias.detach().repeat(4)
        self.c_out = w.size(1)
        self.conv = _Int8Conv(torch.cat(phases), bias, stride=(1, 1), padding=(1, 1))

    def quantize(self, *args, **kwargs) -> torch.Tensor:
        return self.conv.quantize(*args, **kwargs)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        n, _, h, w = q.shape
        y = self.conv(q)  # [N, 4 * C_out, H + 1, W + 1]
        out = torch.empty(
            n, self.c_out, 2 * h, 2 * w, dtype=y.dtype, memory_format=torch.channels_last
        )
        for i, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            out[:, :, a::2, b::2] = y[
                :, i * self.c_out : (i + 1) * self.c_out, a : a + h, b : b + w
            ]
        return out
