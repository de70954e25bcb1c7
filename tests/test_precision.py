"""Mixed precision, channels_last and torch.compile of the v1 trainer, checked on CPU
against fp32 (the GPU runs the same code with CUDA autocast)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from stargan import losses
from stargan.config import validate
from stargan.errors import StarGANError
from stargan.models.v1 import Discriminator
from stargan.train.checkpoint import list_checkpoints
from stargan.train.precision import Precision, penalty_scale
from test_train import _tiny_cfg, _trainer, _weights


def _penalty_grads(D: Discriminator, x_hat: torch.Tensor, precision: str, scale=None):
    """D's weight gradients of the WGAN-GP term, forward under ``precision``'s autocast."""
    D.zero_grad(set_to_none=True)
    x_hat = x_hat.clone().requires_grad_(True)
    with Precision(precision, torch.device("cpu")).autocast():
        out = D(x_hat)[0]
    gp = losses.gradient_penalty(out, x_hat, scale)
    (gp * (scale or 1.0)).backward()  # as GradScaler scales the loss
    grads = [p.grad for p in D.parameters() if p.grad is not None]  # not D_cls, biases
    return gp.detach(), [g.float() / (scale or 1.0) for g in grads]


@pytest.mark.parametrize(
    ("precision", "scale"),
    [("bf16", None), ("fp16", penalty_scale(torch.amp.GradScaler("cpu", init_scale=2.0**16)))],
)
def test_gradient_penalty_double_backward_under_autocast_matches_fp32(precision, scale):
    torch.manual_seed(0)
    D = Discriminator(image_size=16, c_dim=3, conv_dim=8, repeat_num=2)
    x_hat = torch.randn(4, 3, 16, 16)
    gp32, grads32 = _penalty_grads(D, x_hat, "fp32")
    gp, grads = _penalty_grads(D, x_hat, precision, scale)
    assert gp.dtype == torch.float32
    torch.testing.assert_close(gp, gp32, rtol=3e-2, atol=1e-3)
    for g, g32 in zip(grads, grads32, strict=True):  # relative to each tensor's size
        assert (g - g32).norm() <= 0.05 * g32.norm() + 1e-6


def test_loss_scale_cancels_in_fp32() -> None:
    torch.manual_seed(0)
    D = Discriminator(image_size=16, c_dim=3, conv_dim=8, repeat_num=2)
    x_hat = torch.randn(4, 3, 16, 16)
    gp, grads = _penalty_grads(D, x_hat, "fp32")
    gp_scaled, grads_scaled = _penalty_grads(D, x_hat, "fp32", scale=4096.0)
    torch.testing.assert_close(gp_scaled, gp)
    for a, b in zip(grads_scaled, grads, strict=True):
        torch.testing.assert_close(a, b)


def _steps_track(half, full, steps: int, precision: str) -> None:
    """``steps`` training steps of both trainers: every logged loss of ``half`` finite and
    near fp32's; fp16 skipped no update for an overflow (the scale would have halved)."""
    for _ in range(steps):
        parts_half, parts_full = half.train_step(), full.train_step()
        for k, v in parts_full.items():
            assert torch.isfinite(parts_half[k]), k
            assert abs(parts_half[k] - v) <= 0.1 * abs(v) + 0.05, k
    if precision == "fp16":
        assert half.scalers["D"].get_scale() == half.scalers["G"].get_scale() == 2.0**13


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_training_under_autocast_tracks_fp32(tmp_path: Path, precision: str) -> None:
    half = _trainer(_tiny_cfg(precision=precision), tmp_path / "half")
    full = _trainer(_tiny_cfg(), tmp_path / "full")
    assert half.scalers["D"].is_enabled() == (precision == "fp16")
    _steps_track(half, full, 5, precision)  # one G update
    a, b = _weights(half), _weights(full)
    nets = [k for k in a if ".opt" not in k]
    assert any(not torch.equal(a[k], b[k]) for k in nets)  # autocast really ran
    assert max((a[k] - b[k]).abs().max().item() for k in nets) < 5 * half.cfg.optim.g_lr


def test_fp16_loss_scalers_are_checkpointed_and_resumed(tmp_path: Path) -> None:
    cfg = _tiny_cfg(precision="fp16", num_iters=6, ckpt_every=3)
    tr = _trainer(cfg, tmp_path / "run")
    tr.fit(progress=False, until=3)  # three D steps
    trained = tr.scalers["D"].state_dict()
    ckpt = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    assert {"scaler/G", "scaler/D"} <= torch.load(ckpt / "optim.pt", weights_only=True).keys()
    again = _trainer(cfg, tmp_path / "run")
    assert again.scalers["D"].state_dict() != trained  # grown or backed off in 3 steps
    again.resume(ckpt)
    assert again.scalers["D"].state_dict() == trained


def test_fp32_checkpoints_hold_no_scalers(tmp_path: Path) -> None:
    tr = _trainer(_tiny_cfg(num_iters=2, ckpt_every=2), tmp_path / "run")
    tr.fit(progress=False)
    ckpt = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    assert not any(k.startswith("scaler/") for k in torch.load(ckpt / "optim.pt"))


def test_channels_last_trains_like_contiguous(tmp_path: Path) -> None:
    nhwc = _trainer(_tiny_cfg(channels_last=True), tmp_path / "a")
    nchw = _trainer(_tiny_cfg(), tmp_path / "b")
    assert nhwc.G.main[0].weight.is_contiguous(memory_format=torch.channels_last)
    for _ in range(5):
        nhwc.train_step()
        nchw.train_step()
    a, b = _weights(nhwc), _weights(nchw)
    assert max((a[k] - b[k]).abs().max().item() for k in a if ".opt" not in k) < 3e-4


def test_compiled_generator_trains_like_eager(tmp_path: Path) -> None:
    if not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    compiled = _trainer(_tiny_cfg(compile=True), tmp_path / "a")
    eager = _trainer(_tiny_cfg(), tmp_path / "b")
    for _ in range(5):
        compiled.train_step()
        eager.train_step()
    assert compiled.g_train is not compiled.G  # a compiled wrapper around the same weights
    a, b = _weights(compiled), _weights(eager)
    assert max((a[k] - b[k]).abs().max().item() for k in a if ".opt" not in k) < 3e-4


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(StarGANError, match="train.precision must be one of"):
        validate(_tiny_cfg(precision="fp8"))


def test_train_cli_precision_and_deterministic_flags(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stargan.cli import cli

    args = ["train", "--preset", "tiny", "--precision", "bf16", "--deterministic", "--dry-run"]
    result = CliRunner().invoke(cli, [*args, "--quiet", "--outdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert '"precision": "bf16"' in result.output
    assert '"fast_kernels": false' in result.output


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_v2_training_under_autocast_tracks_fp32(tmp_path: Path, precision: str) -> None:
    """StarGAN v2's four networks under autocast: a few iterations follow fp32's losses and
    weights; fp16 keeps one loss scaler for D's loss and one for G's (G, F and E)."""
    from test_train_v2 import _cfg as v2_cfg
    from test_train_v2 import _trainer as v2_trainer
    from test_train_v2 import _weights as v2_weights

    half = v2_trainer(v2_cfg(precision=precision), tmp_path / "half")
    full = v2_trainer(v2_cfg(), tmp_path / "full")
    assert set(half.scalers) == {"G", "D"}
    assert half.scalers["G"].is_enabled() == (precision == "fp16")
    _steps_track(half, full, 3, precision)
    a, b = v2_weights(half), v2_weights(full)
    nets = [k for k in a if ".opt" not in k]
    assert any(not torch.equal(a[k], b[k]) for k in nets)  # autocast really ran
    # an Adam update moves a weight by about lr at most, and each iteration updates D and G
    # twice: 6 updates, each of which may differ in sign where a gradient is ~0
    lr = max(half.cfg.optim.g_lr, half.cfg.optim.f_lr, half.cfg.optim.d_lr)
    assert max((a[k] - b[k]).abs().max().item() for k in nets) < 2 * 6 * lr


def test_v2_fp16_scalers_are_checkpointed(tmp_path: Path) -> None:
    from test_train_v2 import _cfg as v2_cfg
    from test_train_v2 import _trainer as v2_trainer

    tr = v2_trainer(v2_cfg(precision="fp16", num_iters=2, ckpt_every=2), tmp_path / "run")
    tr.fit(progress=False)
    ckpt = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    assert {"scaler/G", "scaler/D"} <= torch.load(ckpt / "optim.pt", weights_only=True).keys()


def test_v1_ns_r1_trains_in_fp16(tmp_path: Path) -> None:
    """R1 differentiates the scaled logits, as the gradient penalty does (was refused)."""
    cfg = _tiny_cfg(precision="fp16")
    cfg = validate(replace(cfg, loss=replace(cfg.loss, adv="ns-r1", lambda_r1=1.0)))
    tr = _trainer(cfg, tmp_path / "run")
    for _ in range(5):
        parts = tr.train_step()
        assert all(torch.isfinite(v) for v in parts.values())
