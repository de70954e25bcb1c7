"""``--int8`` in the commands: ``stargan translate --int8`` close to its float32 outputs,
``Translator.quantize``, the refusals (v2 model, CUDA, unsupported CPU), the save guard, and
``stargan serve --int8``'s calibrated model."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stargan.cli import cli, main
from stargan.config import ModelConfig
from stargan.data.faces import params_for, render
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.models.v1 import Discriminator, Generator
from stargan.quantize import int8_unsupported_reason
from stargan.translate import Translator

needs_int8 = pytest.mark.skipif(
    int8_unsupported_reason() is not None, reason=f"int8: {int8_unsupported_reason()}"
)
# the size test_quantize measures int8 on: ~45 dB against float32 there
CFG = ModelConfig(
    image_size=32, c_dim=3, g_conv_dim=16, g_repeat_num=2, d_conv_dim=8, d_repeat_num=3
)
SPEC = LabelSpec(("Black_Hair", "Blond_Hair", "Male"), "multi", (("Black_Hair", "Blond_Hair"),))
PSNR_BAR = 35  # dB against float32, on 8-bit PNGs; the issue asked for 30


def _translator(seed: int = 0) -> Translator:
    torch.manual_seed(seed)
    G = Generator(CFG.c_dim, CFG.g_conv_dim, CFG.g_repeat_num)
    D = Discriminator(CFG.image_size, CFG.c_dim, CFG.d_conv_dim, CFG.d_repeat_num)
    return Translator(G, CFG, SPEC, D, {"crop": 0, "data_seed": 0})


def _faces(n: int, size: int = 40) -> list[np.ndarray]:
    """Rendered test faces, larger than the model: translate resizes them as it would photos."""
    return [render(params_for(0, "test", k), size) for k in range(n)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse) if mse > 0 else math.inf


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _translator().save_pretrained(tmp_path_factory.mktemp("int8") / "model")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    for k, face in enumerate(_faces(4)):
        Image.fromarray(face).save(folder / f"face{k}.png")
    return folder


def _run(model: Path, inputs: Path, out: Path, *extra: str):
    args = ["translate", str(model), str(inputs), "-o", str(out), "--quiet", *extra]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result


def _read(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


# ---------------------------------------------------------------------- translate --int8
@needs_int8
@pytest.mark.parametrize("target", [["--all-domains", "--grid"], ["--to", "Blond_Hair=1,Male=0"]])
def test_translate_int8_outputs_close_to_float(model, inputs, tmp_path, target) -> None:
    _run(model, inputs, tmp_path / "fp32", *target)
    result = _run(model, inputs, tmp_path / "int8", *target, "--int8", "--batch-size", "3")
    assert "int8: G calibrated on 4 input(s)" in result.output
    fp32, int8 = _read(tmp_path / "fp32"), _read(tmp_path / "int8")
    assert sorted(int8) == sorted(fp32) and len(int8) == (4 * 3 + 1 if "--grid" in target else 4)
    psnrs = [_psnr(int8[name], fp32[name]) for name in fp32 if name != "grid.png"]
    assert min(psnrs) > PSNR_BAR, psnrs
    assert any(not np.array_equal(int8[n], fp32[n]) for n in fp32)  # really int8, not float
    assert int8.get("grid.png", np.zeros(1)).shape == fp32.get("grid.png", np.zeros(1)).shape


@needs_int8
def test_translate_int8_does_not_depend_on_batch_size(model, inputs, tmp_path) -> None:
    """Calibration takes the first inputs, not the first batch: the same int8 model."""
    _run(model, inputs, tmp_path / "b1", "--to", "Male=1", "--int8", "--batch-size", "1")
    _run(model, inputs, tmp_path / "b4", "--to", "Male=1", "--int8", "--batch-size", "4")
    one, four = _read(tmp_path / "b1"), _read(tmp_path / "b4")
    assert one.keys() == four.keys()
    assert all(np.array_equal(one[n], four[n]) for n in one)


def _main(args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    """``stargan ARGS`` as the console script runs it: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["stargan", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def test_translate_int8_refusals_are_one_line_errors(
    model, inputs, tmp_path, capsys, monkeypatch
) -> None:
    from v2_helpers import tiny_model as tiny_v2

    v2 = tiny_v2().save_pretrained(tmp_path / "v2")
    args = ["translate", model, inputs, "--to", "Male=1", "-o", tmp_path / "o", "--int8"]
    cases = [
        ([*args[:1], v2, *args[2:]], "int8 inference is for StarGAN v1 models only"),
        ([*args, "--device", "cuda"], "int8 inference is a CPU path"),
    ]
    for argv, message in cases:
        code, err = _main(argv, capsys, monkeypatch)
        assert code == 2 and err.count("\n") == 1 and message in err, err
    monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda: False)
    code, err = _main(args, capsys, monkeypatch)
    assert code == 2 and "error: int8 inference is not available: " in err and "VNNI" in err
    assert not (tmp_path / "o").exists()  # refused before any work


# ---------------------------------------------------------------------- Translator.quantize
@needs_int8
def test_quantize_in_place_and_save_refused(tmp_path) -> None:
    tr, ref = _translator(), _translator()
    faces = np.stack(_faces(3, size=32))
    assert tr.quantize(faces, "Male=1") is tr and tr.int8 and not ref.int8
    assert _psnr(tr.translate(faces, "Male=1"), ref.translate(faces, "Male=1")) > PSNR_BAR
    with pytest.raises(StarGANError, match="cannot save an int8 translator"):
        tr.save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()  # nothing half-written
    with pytest.raises(StarGANError, match="already int8"):
        tr.quantize(faces)


# ---------------------------------------------------------------------- serve --int8
@needs_int8
def test_serve_int8_calibrates_on_sample_faces(model) -> None:
    pytest.importorskip("fastapi", reason="stargan serve needs: pip install 'stargan[serve]'")
    from stargan.serve import create_app

    tr = create_app(model, int8=True).state.model
    ref = Translator.from_pretrained(model)
    faces = np.stack(_faces(2, size=32))
    assert tr.int8 and not ref.int8
    assert _psnr(tr.translate(faces, "Black_Hair=1"), ref.translate(faces, "Black_Hair=1")) > 30
    with pytest.raises(StarGANError, match="CPU path"):
        create_app(model, int8=True, device="cuda")
