"""StarGAN v1 networks: shapes, paper sizes, layers, gradients, determinism, save/load."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from stargan.config import ModelConfig
from stargan.errors import StarGANError
from stargan.models import BUILDERS, Discriminator, Generator, build, count_parameters
from stargan.models.layers import ResidualBlock, instance_norm

TINY = ModelConfig(
    image_size=16, c_dim=3, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=2
)


def _tiny_nets(seed: int = 0, c_dim: int = 3) -> tuple[Generator, Discriminator]:
    torch.manual_seed(seed)
    return Generator(c_dim, 8, 1), Discriminator(16, c_dim, 8, 2)


def _inputs(n: int = 2, size: int = 16, c_dim: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    c = (torch.rand(n, c_dim, generator=g) > 0.5).float()
    return x, c


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize(
    ("size", "c_dim", "d_repeat"),
    [(16, 3, 2), (32, 5, 3), (32, 1, 5), (24, 8, 2)],
)
def test_output_shapes(size: int, c_dim: int, d_repeat: int) -> None:
    torch.manual_seed(0)
    G = Generator(c_dim, conv_dim=8, repeat_num=2)
    D = Discriminator(size, c_dim, conv_dim=8, repeat_num=d_repeat)
    x, c = _inputs(3, size, c_dim)
    y = G(x, c)
    assert y.shape == (3, 3, size, size)
    assert y.abs().max() <= 1.0  # tanh
    out_src, out_cls = D(y)
    side = size // 2**d_repeat
    assert out_src.shape == (3, 1, side, side)
    assert out_cls.shape == (3, c_dim)


def test_build_from_config() -> None:
    nets = build(TINY)
    assert set(nets) == {"G", "D"}
    assert isinstance(nets["G"], Generator) and isinstance(nets["D"], Discriminator)
    assert nets["G"].c_dim == 3
    assert nets["D"].conv_cls.out_channels == 3
    assert BUILDERS["v1"] is not None


def test_build_rejects_unresolved_c_dim_and_unknown_arch() -> None:
    with pytest.raises(StarGANError, match="c_dim"):
        build(ModelConfig(c_dim=0))
    with pytest.raises(StarGANError, match="unknown model arch 'v9'"):
        build(ModelConfig(arch="v9", c_dim=5))


# ---------------------------------------------------------------- paper sizes
def test_paper_parameter_counts_on_meta_device() -> None:
    with torch.device("meta"):
        G = Generator(5)
        D128 = Discriminator(128, 5)
        D256 = Discriminator(256, 5)
    assert next(G.parameters()).is_meta  # nothing was allocated
    assert count_parameters(G) == 8_430_528
    assert count_parameters(D128) == 44_762_048
    assert count_parameters(D256) == 44_884_928
    # D_cls's kernel covers the whole final map: 2x2 at 128 px, 4x4 at 256 px.
    assert D128.conv_cls.kernel_size == (2, 2)
    assert D256.conv_cls.kernel_size == (4, 4)


# ---------------------------------------------------------------- layers
def test_generator_convs_are_bias_free() -> None:
    G, _ = _tiny_nets()
    convs = [m for m in G.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(convs) == 1 + 2 + 2 * 1 + 2 + 1  # in, down, res block, up, out
    assert all(m.bias is None for m in convs)


def test_generator_norms_are_affine_instance_norms_without_running_stats() -> None:
    G, _ = _tiny_nets()
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._NormBase)]
    assert len(norms) == 1 + 2 + 2 + 2
    assert all(isinstance(m, nn.InstanceNorm2d) for m in norms)
    assert all(m.affine and not m.track_running_stats for m in norms)
    assert not any("running" in k for k in G.state_dict())


def test_discriminator_leaky_relu_and_no_normalisation() -> None:
    _, D = _tiny_nets()
    acts = [m for m in D.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 2  # one per trunk conv (repeat_num 2)
    assert all(m.negative_slope == 0.01 for m in acts)
    norm_types = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
    assert not any(isinstance(m, norm_types) for m in D.modules())
    assert not any(isinstance(m, nn.ReLU) for m in D.modules())
    # The output heads have no bias (as the official code).
    assert D.conv_src.bias is None and D.conv_cls.bias is None


def test_instance_norm_uses_per_image_statistics() -> None:
    norm = instance_norm(4)
    x = torch.randn(2, 4, 5, 5) * 3 + 7
    y = norm.eval()(x)
    assert torch.allclose(y.mean((2, 3)), torch.zeros(2, 4), atol=1e-5)
    assert torch.allclose(y.std((2, 3), unbiased=False), torch.ones(2, 4), atol=1e-3)


def test_residual_block_is_identity_plus_branch() -> None:
    torch.manual_seed(0)
    block = ResidualBlock(4)
    x = torch.randn(2, 4, 6, 6)
    assert torch.allclose(block(x), x + block.main(x))
    nn.init.zeros_(block.main[4].weight)  # zero the last IN's scale -> zero branch
    assert torch.equal(block(x), x)


def test_generator_same_output_in_train_and_eval() -> None:
    G, _ = _tiny_nets()
    x, c = _inputs(3)
    with torch.no_grad():
        y_train = G.train()(x, c)
        y_train_again = G(x, c)  # no state was updated by the first call
        y_eval = G.eval()(x, c)
    assert torch.equal(y_train, y_train_again)
    assert torch.allclose(y_train, y_eval, atol=0, rtol=0)


def test_output_independent_of_other_images_in_batch() -> None:
    G, D = _tiny_nets()
    x, c = _inputs(4)
    with torch.no_grad():
        y_batch = G(x, c)
        y_alone = torch.cat([G(x[i : i + 1], c[i : i + 1]) for i in range(4)])
        src_batch, cls_batch = D(x)
        src_alone, cls_alone = D(x[2:3])
    assert torch.allclose(y_batch, y_alone, atol=1e-6)
    assert torch.allclose(src_batch[2:3], src_alone, atol=1e-6)
    assert torch.allclose(cls_batch[2:3], cls_alone, atol=1e-6)


# ---------------------------------------------------------------- labels
def test_label_is_tiled_spatially() -> None:
    G, _ = _tiny_nets()
    x, c = _inputs(2)
    c_map = c[:, :, None, None].expand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(G(x, c), G.main(torch.cat([x, c_map], dim=1)))
        y1 = G(x, torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]))
        y2 = G(x, torch.tensor([[0.0, 1, 0], [0.0, 1, 0]]))
    assert (y1 - y2).abs().mean() > 1e-3  # the label changes the output


# ---------------------------------------------------------------- training
def test_every_parameter_gets_a_gradient() -> None:
    G, D = _tiny_nets()
    x, c = _inputs(2)
    out_src, out_cls = D(G(x, c))
    loss = out_src.mean() + out_cls.pow(2).mean()
    loss.backward()
    for net_name, net in (("G", G), ("D", D)):
        for name, p in net.named_parameters():
            assert p.grad is not None, f"{net_name}.{name} got no gradient"
            assert p.grad.abs().sum() > 0, f"{net_name}.{name} has an all-zero gradient"


def test_deterministic_under_manual_seed() -> None:
    x, c = _inputs(2)
    G1, D1 = _tiny_nets(seed=123)
    G2, D2 = _tiny_nets(seed=123)
    G3, _ = _tiny_nets(seed=124)
    for a, b in zip(G1.state_dict().values(), G2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        assert torch.equal(G1(x, c), G2(x, c))
        assert torch.equal(D1(x)[0], D2(x)[0])
        assert not torch.equal(G1(x, c), G3(x, c))


def test_state_dict_round_trip_through_safetensors(tmp_path) -> None:
    G, D = _tiny_nets(seed=5)
    save_file(G.state_dict(), str(tmp_path / "g.safetensors"))
    save_file(D.state_dict(), str(tmp_path / "d.safetensors"))
    G2, D2 = _tiny_nets(seed=6)  # different initial weights
    x, c = _inputs(2)
    with torch.no_grad():
        assert not torch.equal(G(x, c), G2(x, c))
        G2.load_state_dict(load_file(str(tmp_path / "g.safetensors")))
        D2.load_state_dict(load_file(str(tmp_path / "d.safetensors")))
        assert torch.equal(G(x, c), G2(x, c))
        for a, b in zip(D(x), D2(x), strict=True):
            assert torch.equal(a, b)
    # No "module." / "_orig_mod." prefixes: keys are the plain module paths.
    assert all(k.startswith("main.") for k in G.state_dict())


def test_parameter_count_scales_with_c_dim_only_at_input_and_cls_head() -> None:
    G3, D3 = _tiny_nets(c_dim=3)
    G5, D5 = _tiny_nets(c_dim=5)
    # G: 7x7 input conv gets 2 more input channels (bias-free): 2 * 8 * 49.
    assert count_parameters(G5) - count_parameters(G3) == 2 * 8 * 7 * 7
    # D: D_cls gets 2 more output channels over the final 4x4 map of 16 channels.
    assert count_parameters(D5) - count_parameters(D3) == 2 * 16 * 4 * 4
