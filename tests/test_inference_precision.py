"""Inference precision: fp32 as given, bf16 autocast close to it, auto's accuracy rule."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import stargan.inference_precision as ip
from stargan.cli import cli
from stargan.config import ModelConfig
from stargan.data.labels import LabelSpec
from stargan.inference_precision import MIN_PSNR_DB, InferencePrecision, psnr_db
from stargan.models.v1 import Discriminator, Generator
from stargan.translate import Translator

CFG = ModelConfig(
    image_size=16, c_dim=3, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=2
)
SPEC = LabelSpec(("Black_Hair", "Blond_Hair", "Male"), "multi", (("Black_Hair", "Blond_Hair"),))


def _translator(precision: str) -> Translator:
    torch.manual_seed(0)
    G = Generator(CFG.c_dim, CFG.g_conv_dim, CFG.g_repeat_num)
    D = Discriminator(CFG.image_size, CFG.c_dim, CFG.d_conv_dim, CFG.d_repeat_num)
    return Translator(G, CFG, SPEC, D, {"crop": 0}, precision)


def _inputs(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 3, 16, 16, generator=g) * 2 - 1
    return x, torch.tensor([[1.0, 0.0, 1.0]]).expand(n, -1)


def _fragile(x: torch.Tensor) -> torch.Tensor:
    """A network whose output bf16's rounding destroys: a high-frequency function of a
    matrix product."""
    w = torch.linspace(-50, 50, x.size(-1), device=x.device)
    return torch.sin((x @ torch.diag(w)) * 40)


def test_fp32_is_the_plain_call() -> None:
    tr = _translator("fp32")
    x, c = _inputs()
    assert torch.equal(tr.generate(x, c), tr.G(x, c))
    assert tr.precision.describe() == "fp32"


def test_bf16_is_float32_out_and_close_to_fp32() -> None:
    x, c = _inputs()
    low, ref = _translator("bf16").generate(x, c), _translator("fp32").generate(x, c)
    assert low.dtype == torch.float32
    assert not torch.equal(low, ref)  # bf16 arithmetic did run
    assert psnr_db(low, ref) > MIN_PSNR_DB


def test_auto_takes_bf16_where_native_and_accurate(monkeypatch) -> None:
    monkeypatch.setattr(ip, "native_bf16", lambda device: True)
    tr = _translator("auto")
    assert "first translation" in tr.precision.describe()
    x, c = _inputs()
    out = tr.generate(x, c)
    assert tr.precision.resolved == "bf16"
    assert tr.precision.psnr_db >= MIN_PSNR_DB
    assert torch.equal(out, _translator("bf16").generate(x, c))
    assert "bf16 (auto: bf16 vs fp32" in tr.precision.describe()


def test_auto_keeps_fp32_without_native_bf16(monkeypatch) -> None:
    monkeypatch.setattr(ip, "native_bf16", lambda device: False)
    tr = _translator("auto")
    x, c = _inputs()
    assert torch.equal(tr.generate(x, c), tr.G(x, c))
    assert tr.precision.resolved == "fp32" and tr.precision.psnr_db is None
    assert "no native bf16" in tr.precision.describe()


def test_auto_refuses_bf16_that_changes_the_output(monkeypatch) -> None:
    monkeypatch.setattr(ip, "native_bf16", lambda device: True)
    precision = InferencePrecision("auto")
    x = torch.rand(3, 3, 16, 16)
    out = precision(_fragile, x)
    assert precision.resolved == "fp32"
    assert precision.psnr_db < MIN_PSNR_DB
    assert torch.equal(out, _fragile(x))


def test_auto_decides_once(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(ip, "native_bf16", lambda device: calls.append(1) or True)
    precision = InferencePrecision("auto")
    x = torch.rand(2, 3, 16, 16)
    for _ in range(3):
        precision(lambda t: t * 2, x)
    assert len(calls) == 1


def test_unknown_precision() -> None:
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        InferencePrecision("fp16")


def test_translate_cli_prints_and_takes_the_precision(tiny_model, tmp_path) -> None:
    from stargan.data import faces

    photo = tmp_path / "face.png"
    from PIL import Image

    Image.fromarray(faces.render(faces.params_for(0, "test", 0), 16)).save(photo)
    runner = CliRunner()
    args = ["translate", str(tiny_model), str(photo), "--to", "Male=1"]
    fp32 = runner.invoke(cli, [*args, "-o", str(tmp_path / "a"), "--precision", "fp32"])
    assert fp32.exit_code == 0, fp32.output
    assert "precision: fp32" in fp32.output
    bf16 = runner.invoke(cli, [*args, "-o", str(tmp_path / "b"), "--precision", "bf16"])
    assert bf16.exit_code == 0 and "precision: bf16" in bf16.output
    bad = runner.invoke(cli, [*args, "-o", str(tmp_path / "c"), "--precision", "fp16"])
    assert bad.exit_code == 2 and "fp16" in bad.output


def test_style_model_bf16_close_to_fp32() -> None:
    from v2_helpers import images, tiny_model

    fp32, bf16 = tiny_model(), tiny_model()
    bf16.precision = InferencePrecision("bf16")
    x = images(3)
    ref, low = fp32.latent(x, 1, seeds=[0, 1, 2]), bf16.latent(x, 1, seeds=[0, 1, 2])
    assert low.dtype == torch.float32 and not torch.equal(low, ref)
    assert psnr_db(low, ref) > MIN_PSNR_DB
