"""The fast training path: the same math as the plain one, within float rounding; the plain
path: bit-identical to the official solver's order and stock kernels."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stargan.models.layers import Conv2d, LeakyReLU, conv2d_as_matmul, use_matmul_convs
from stargan.models.v1 import Discriminator
from test_train import _official_order_step, _tiny_cfg, _trainer, _weights


def _cfg(fast: bool):
    cfg = _tiny_cfg()
    return replace(cfg, train=replace(cfg.train, fast_kernels=fast))


def _as_official(tr) -> None:
    """The official networks and optimizers: nn's LeakyReLU and convolution in D, in-place
    ReLUs in G, torch's default Adam."""
    for parent in (tr.D.main,):
        for i, m in enumerate(parent):
            if isinstance(m, LeakyReLU):
                parent[i] = nn.LeakyReLU(m.negative_slope)
    use_matmul_convs(tr.D, 0)
    for m in tr.G.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = True
    o = tr.cfg.optim
    tr.g_opt = torch.optim.Adam(tr.G.parameters(), o.g_lr, (o.beta1, o.beta2))
    tr.d_opt = torch.optim.Adam(tr.D.parameters(), o.d_lr, (o.beta1, o.beta2))
    tr.optims = {"G": tr.g_opt, "D": tr.d_opt}


def test_plain_path_is_bit_identical_to_the_official_solver(tmp_path: Path) -> None:
    plain, official = _trainer(_cfg(False), tmp_path / "a"), _trainer(_cfg(False), tmp_path / "b")
    _as_official(official)
    assert not any(isinstance(m, LeakyReLU) for m in official.D.modules())
    for _ in range(10):  # two G updates
        plain.train_step()
        _official_order_step(official)
    a, b = _weights(plain), _weights(official)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_fast_path_matches_the_plain_path_within_rounding(tmp_path: Path) -> None:
    fast, plain = _trainer(_cfg(True), tmp_path / "a"), _trainer(_cfg(False), tmp_path / "b")
    assert fast.d_opt.defaults["fused"] and not plain.d_opt.defaults["fused"]
    assert any(m.matmul_max_out for m in fast.D.modules() if isinstance(m, Conv2d))
    parts_fast, parts_plain = fast.train_step(), plain.train_step()
    for k in parts_plain:  # the first D step: losses and gradients agree to float rounding
        torch.testing.assert_close(parts_fast[k], parts_plain[k], rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(fast.D.named_parameters(), plain.D.parameters(), strict=True):
        scale = q.grad.abs().max().item()
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5 * scale, msg=name)
    for _ in range(9):  # ten iterations (two G updates)
        fast.train_step()
        plain.train_step()
    a, b = _weights(fast), _weights(plain)
    nets = [k for k in a if ".opt" not in k]
    assert any(not torch.equal(a[k], b[k]) for k in nets), "should really run other kernels"
    # Adam divides by sqrt(v): where a gradient is ~0, rounding can flip its sign and move
    # the weight by up to ~lr per update. So: no weight off by more than a few updates'
    # worth, and all but a handful of elements equal to float rounding.
    lr = max(fast.cfg.optim.g_lr, fast.cfg.optim.d_lr)
    assert max((a[k] - b[k]).abs().max().item() for k in nets) < 3 * lr
    off = sum(((a[k] - b[k]).abs() > 1e-6).sum().item() for k in nets)
    assert off <= 1e-3 * sum(a[k].numel() for k in nets)


def test_fast_path_runs_are_repeatable(tmp_path: Path) -> None:
    a, b = _trainer(_cfg(True), tmp_path / "a"), _trainer(_cfg(True), tmp_path / "b")
    for _ in range(5):
        a.train_step()
        b.train_step()
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize(
    ("shape", "out_ch", "kernel", "stride", "padding", "bias"),
    [
        ((2, 3, 8, 8), 4, 4, 2, 1, True),  # D's trunk
        ((2, 8, 2, 2), 1, 3, 1, 1, False),  # D_src
        ((2, 8, 2, 2), 5, 2, 1, 0, False),  # D_cls
        ((1, 2, 5, 7), 3, 3, 2, 1, True),  # odd, non-square
    ],
)
def test_conv_as_matmul_equals_conv2d_to_the_second_derivative(
    shape, out_ch, kernel, stride, padding, bias
) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(out_ch, shape[1], kernel, kernel, generator=gen, dtype=torch.float64)
    w.requires_grad_(True)
    b = torch.randn(out_ch, generator=gen, dtype=torch.float64) if bias else None
    s, p = (stride, stride), (padding, padding)
    ours, ref = conv2d_as_matmul(x, w, b, s, p), F.conv2d(x, w, b, s, p)
    torch.testing.assert_close(ours, ref)
    for y in (ours, ref):  # a gradient-penalty-like second derivative, w.r.t. the weight
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        (gw,) = torch.autograd.grad(gx.square().sum(), w)
        y.gw = gw
    torch.testing.assert_close(ours.gw, ref.gw)


def test_leaky_relu_gives_the_stock_gradient_penalty_bit_for_bit() -> None:
    """Same D weights with nn.LeakyReLU and with layers.LeakyReLU (which skips the double
    backward's branch of exact zeros): identical D gradients of the WGAN-GP term."""
    torch.manual_seed(0)
    ours = Discriminator(image_size=16, c_dim=3, conv_dim=8, repeat_num=2)
    stock = Discriminator(image_size=16, c_dim=3, conv_dim=8, repeat_num=2)
    stock.load_state_dict(ours.state_dict())
    for i, m in enumerate(stock.main):
        if isinstance(m, LeakyReLU):
            stock.main[i] = nn.LeakyReLU(m.negative_slope)
    x = torch.randn(4, 3, 16, 16)
    grads = []
    for D in (ours, stock):
        x_hat = x.clone().requires_grad_(True)
        out = D(x_hat)[0]
        (g,) = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)
        ((g.flatten(1).norm(2, dim=1) - 1) ** 2).mean().backward()
        # None for ours where the stock branch of zeros was all a parameter got (biases)
        grads.append([torch.zeros_like(p) if p.grad is None else p.grad for p in D.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
    assert D.main[0].bias.grad.abs().max() == 0 and ours.main[0].bias.grad is None
