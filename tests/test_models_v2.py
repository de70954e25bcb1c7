"""StarGAN v2 networks: paper-size parameter counts, shapes, per-domain heads, the high-pass
path of G, checkpoint key layout, gradients and He init."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stargan.errors import StarGANError
from stargan.models import count_parameters
from stargan.models.v2 import (
    AdaINResBlock,
    Discriminator,
    Generator,
    HighPass,
    MappingNetwork,
    ResBlock,
    StyleEncoder,
    build_v2,
    default_base_dim,
    he_init_,
)

SIZE, STYLE = 32, 64
TINY = {"img_size": SIZE, "max_conv_dim": 32, "base_dim": 8}


def _tiny(num_domains: int = 3, w_hpf: float = 0.0, seed: int = 0) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    return build_v2(num_domains=num_domains, w_hpf=w_hpf, **TINY)


def _images(n: int = 4, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1


def _masks(n: int = 4, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)  # heatmaps at a size other than the image's
    return torch.rand(n, 1, 64, 64, generator=g), torch.rand(n, 1, 64, 64, generator=g)


# ---------------------------------------------------------------- paper sizes
# Counts printed by the official code (core/model.py) for its two released models.
OFFICIAL_COUNTS = {
    ("celeba_hq", 2, 1.0): {"G": 43_467_395, "F": 2_438_272, "E": 20_916_928, "D": 20_852_290},
    ("afhq", 3, 0.0): {"G": 33_892_995, "F": 3_259_072, "E": 20_949_760, "D": 20_852_803},
}


@pytest.mark.parametrize(("dataset", "num_domains", "w_hpf"), list(OFFICIAL_COUNTS))
def test_official_parameter_counts_on_meta_device(
    dataset: str, num_domains: int, w_hpf: float
) -> None:
    with torch.device("meta"):
        nets = build_v2(256, num_domains, w_hpf=w_hpf)
    counts = {name: count_parameters(net) for name, net in nets.items()}
    assert counts == OFFICIAL_COUNTS[(dataset, num_domains, w_hpf)]
    assert next(nets["G"].parameters()).is_meta  # nothing was allocated


def test_state_dict_keys_follow_the_official_layout() -> None:
    """The released 100000_nets_ema.ckpt holds these keys; the hpf kernel is not saved."""
    with torch.device("meta"):
        nets = build_v2(256, 2, w_hpf=1.0)
    g_keys = set(nets["G"].state_dict())
    assert {
        "from_rgb.weight",
        "encode.0.norm1.weight",
        "encode.0.conv1x1.weight",
        "decode.0.norm1.fc.weight",
        "decode.6.conv1x1.weight",
        "to_rgb.0.weight",
        "to_rgb.2.bias",
    } <= g_keys
    # 5 down + 2 bottleneck blocks of 8 tensors; 3 change width (64-128-256-512) -> conv1x1
    assert len([k for k in g_keys if k.startswith("encode.")]) == 7 * 8 + 3
    assert not any("hpf" in k or "running" in k for k in g_keys)
    assert {"shared.0.weight", "shared.6.bias", "unshared.1.6.weight"} <= set(
        nets["F"].state_dict()
    )
    assert {"shared.0.weight", "shared.1.conv1x1.weight", "shared.8.weight", "unshared.1.bias"} <= (
        set(nets["E"].state_dict())
    )
    assert {"main.0.weight", "main.8.weight", "main.10.weight", "main.10.bias"} <= set(
        nets["D"].state_dict()
    )
    assert default_base_dim(256) == 64 and nets["G"].from_rgb.out_channels == 64


# ---------------------------------------------------------------- shapes and heads
@pytest.mark.parametrize("num_domains", [2, 3])
def test_output_shapes(num_domains: int) -> None:
    nets = _tiny(num_domains)
    x, z = _images(), torch.randn(4, 16)
    y = torch.arange(4) % num_domains
    s = nets["F"](z, y)
    assert s.shape == (4, STYLE)
    assert nets["E"](x, y).shape == (4, STYLE)
    x_fake = nets["G"](x, s)
    assert x_fake.shape == x.shape and torch.isfinite(x_fake).all()
    assert nets["D"](x_fake, y).shape == (4,)


def test_mapping_network_and_style_encoder_pick_each_samples_head() -> None:
    nets = _tiny(3)
    F, E = nets["F"], nets["E"]
    z, x, y = torch.randn(4, 16), _images(), torch.tensor([2, 0, 1, 2])
    with torch.no_grad():
        s_f, s_e = F(z, y), E(x, y)
        h_f, h_e = F.shared(z), E.shared(x).flatten(1)
        for i, k in enumerate(y.tolist()):
            torch.testing.assert_close(s_f[i], F.unshared[k](h_f[i : i + 1])[0])
            torch.testing.assert_close(s_e[i], E.unshared[k](h_e[i : i + 1])[0])
        assert not torch.allclose(F(z, (y + 1) % 3), s_f)  # the heads differ


def test_discriminator_returns_the_logit_of_each_samples_domain() -> None:
    D = _tiny(3)["D"]
    x, y = _images(), torch.tensor([1, 2, 0, 1])
    with torch.no_grad():
        all_logits = D.main(x).flatten(1)  # [N, num_domains]
        out = D(x, y)
    assert all_logits.shape == (4, 3) and out.shape == (4,)
    torch.testing.assert_close(out, all_logits[torch.arange(4), y])


def test_generator_output_depends_on_the_style_code() -> None:
    G = _tiny()["G"]
    x, s1, s2 = _images(), torch.randn(4, STYLE), torch.randn(4, STYLE)
    with torch.no_grad():
        out1, out2 = G(x, s1), G(x, s2)
        assert torch.equal(G(x, s1), out1)  # deterministic
    assert (out1 - out2).abs().mean() > 1e-3
    assert isinstance(G.to_rgb[-1], nn.Conv2d)  # no tanh: the output ends on a 1x1 conv
    assert not any(isinstance(m, nn.Tanh) for m in G.modules())


# ---------------------------------------------------------------- high-pass path
def test_w_hpf_generator_without_masks_names_the_landmark_network() -> None:
    G = _tiny(w_hpf=1.0)["G"]
    with pytest.raises(StarGANError, match="FAN.*set w_hpf 0"):
        G(_images(), torch.randn(4, STYLE))
    with pytest.raises(StarGANError, match="w_hpf 0: pass no masks"):
        _tiny()["G"](_images(), torch.randn(4, STYLE), masks=_masks())
    with pytest.raises(StarGANError, match="2 heatmaps"):
        G(_images(), torch.randn(4, STYLE), masks=_masks()[:1])


def test_w_hpf_generator_runs_with_masks_and_uses_them() -> None:
    G = _tiny(w_hpf=1.0)["G"]
    assert len(G.encode) == len(Generator(SIZE, base_dim=8).encode) + 1  # extra down/up pair
    x, s = _images(), torch.randn(4, STYLE)
    zeros = tuple(torch.zeros_like(m) for m in _masks())
    with torch.no_grad():
        out = G(x, s, masks=_masks())
        out_no_skip = G(x, s, masks=zeros)  # masked-out features add nothing
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert (out - out_no_skip).abs().mean() > 1e-3


def test_high_pass_filter_is_a_scaled_zero_sum_kernel() -> None:
    x = torch.randn(2, 5, 8, 8)
    hpf1, hpf2 = HighPass(1.0), HighPass(2.0)
    assert not list(hpf1.parameters()) and not hpf1.state_dict()
    torch.testing.assert_close(hpf2(x), hpf1(x) / 2)
    flat = hpf1(torch.full((1, 3, 8, 8), 0.7))
    assert flat[..., 1:-1, 1:-1].abs().max() < 1e-6  # constant regions are removed
    spike = torch.zeros(1, 1, 5, 5)
    spike[0, 0, 2, 2] = 1.0
    assert hpf1(spike)[0, 0, 1:4, 1:4].tolist() == [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]


# ---------------------------------------------------------------- training contract
@pytest.mark.parametrize("w_hpf", [0.0, 1.0])
def test_every_parameter_gets_a_gradient(w_hpf: float) -> None:
    nets = _tiny(2, w_hpf)
    x, y, z = _images(2), torch.tensor([0, 1]), torch.randn(2, 16)
    masks = _masks(2) if w_hpf > 0 else None
    s = nets["F"](z, y) + nets["E"](x, y)
    loss = nets["D"](nets["G"](x, s, masks=masks), y).sum()
    loss.backward()
    missing = {
        f"{net}.{name}"
        for net, module in nets.items()
        for name, p in module.named_parameters()
        if p.grad is None or not p.grad.abs().sum() > 0
    }
    # With w_hpf > 0 the official decoder blocks drop their shortcut but keep its 1x1 conv.
    expected = (
        {f"G.{n}" for n, _ in nets["G"].named_parameters() if "decode" in n and "conv1x1" in n}
        if w_hpf > 0
        else set()
    )
    assert missing == expected
    assert w_hpf == 0 or len(expected) == 2


def test_bad_sizes_raise_clear_errors() -> None:
    with pytest.raises(StarGANError, match="power of two"):
        Generator(48)
    with pytest.raises(StarGANError, match="power of two"):
        StyleEncoder(4)
    D = Discriminator(SIZE, 2, max_conv_dim=32, base_dim=8)
    with pytest.raises(StarGANError, match="32x32"):
        D(torch.zeros(1, 3, 64, 64), torch.zeros(1, dtype=torch.long))


def test_he_init_zeroes_biases_and_scales_weights_by_fan_in() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(64, 64, 3), nn.Linear(512, 512), nn.InstanceNorm2d(4, affine=True)
    )
    for p in net.parameters():
        nn.init.constant_(p, 0.5)
    assert he_init_(net) is net
    conv, linear, norm = net
    for layer, fan_in in [(conv, 64 * 9), (linear, 512)]:
        assert torch.count_nonzero(layer.bias) == 0
        assert layer.weight.mean().abs() < 0.05 * math.sqrt(2 / fan_in)
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.03)
    assert torch.all(norm.weight == 0.5)  # norms are left alone
    F = he_init_(MappingNetwork(16, STYLE, 2))
    assert all(torch.count_nonzero(m.bias) == 0 for m in F.modules() if isinstance(m, nn.Linear))


def _assert_same_values_and_gradients(
    ours: torch.Tensor, ref: torch.Tensor, params: list[torch.Tensor], allow_unused: bool
) -> None:
    """ours == ref (float64, to 1e-12), and so are their gradients for every tensor of
    params; with allow_unused, a tensor that one does not use (w_hpf > 0: conv1x1) the
    other must not use either (without it, an unused tensor is an error)."""
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    grads_ours = torch.autograd.grad(ours, params, g, allow_unused=allow_unused)
    grads_ref = torch.autograd.grad(ref, params, g, allow_unused=allow_unused)
    for a, b in zip(grads_ours, grads_ref, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("w_hpf", [0.0, 1.0])
def test_up_sampling_block_computes_the_official_order_of_operations(w_hpf: float) -> None:
    """The decoder's up-block runs nearest x2 + conv1 in the sub-pixel form and its 1x1
    shortcut before the nearest x2; both give the official block's output (up-sample,
    then convolve), values and gradients, in float64."""
    block = AdaINResBlock(6, 4, style_dim=5, w_hpf=w_hpf, upsample=True).double()
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 5, dtype=torch.float64)

    def official(x: torch.Tensor) -> torch.Tensor:
        up = lambda t: F.interpolate(t, scale_factor=2.0, mode="nearest")  # noqa: E731
        h = up(F.leaky_relu(block.norm1(x, s), 0.2))
        h = block.conv2(F.leaky_relu(block.norm2(block.conv1(h), s), 0.2))
        if w_hpf > 0:
            return h
        return (h + block.conv1x1(up(x))) / math.sqrt(2)

    ours = block(x, s)
    assert ours.shape == (2, 4, 10, 14)
    params = [x, *block.parameters()]
    _assert_same_values_and_gradients(ours, official(x), params, allow_unused=True)


@pytest.mark.parametrize("normalize", [False, True])
def test_down_sampling_block_computes_the_official_order_of_operations(normalize: bool) -> None:
    """The encoder's / D's down-block runs conv1 + avgpool as one strided conv and pools its
    1x1 shortcut first; both give the official block's output (convolve, then pool), values
    and gradients, in float64."""
    block = ResBlock(4, 6, normalize=normalize, downsample=True).double()
    x = torch.randn(2, 4, 8, 6, dtype=torch.float64, requires_grad=True)

    def official(x: torch.Tensor) -> torch.Tensor:
        h = block.norm1(x) if normalize else x
        h = F.avg_pool2d(block.conv1(F.leaky_relu(h, 0.2)), 2)
        h = block.norm2(h) if normalize else h
        h = block.conv2(F.leaky_relu(h, 0.2))
        return (F.avg_pool2d(block.conv1x1(x), 2) + h) / math.sqrt(2)

    ours = block(x)
    assert ours.shape == (2, 6, 4, 3)
    params = [x, *block.parameters()]
    _assert_same_values_and_gradients(ours, official(x), params, allow_unused=False)
