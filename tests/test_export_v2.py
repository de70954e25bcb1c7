"""StarGAN v2 export to ONNX and TorchScript: two files (latent- and reference-guided),
each equal to the eager StyleModel at several batch sizes, one sidecar, the command line,
and the refusal of w_hpf > 0 models (their FAN masks are not exported)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stargan.errors import StarGANError
from stargan.export_formats import (
    check_parity,
    export_onnx,
    export_torchscript,
    load_torchscript,
    open_onnx,
    sidecar_path,
)
from stargan.export_v2 import entry_files
from stargan.stylemodel import StyleModel
from v2_helpers import DOMAINS, SIZE, images, tiny_cfg, tiny_model, tiny_nets


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model().save_pretrained(tmp_path_factory.mktemp("v2") / "model")


def test_onnx_entry_points_equal_the_style_model(folder: Path, tmp_path: Path) -> None:
    info = export_onnx(folder, tmp_path / "afhq.onnx")
    files = entry_files(tmp_path / "afhq.onnx")
    assert files["reference"].name == "afhq.reference.onnx" and files["reference"].is_file()
    assert info["files"] == {k: str(v) for k, v in files.items()}
    model = StyleModel.from_pretrained(folder)
    x, ref = images(3, seed=1), images(3, seed=2)
    z = torch.randn(3, model.latent_dim, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 1])
    latent = open_onnx(files["latent"]).run(
        None, {"image": x.numpy(), "z": z.numpy(), "domain": y.numpy()}
    )[0]
    with torch.no_grad():
        expected = model.generate(x, model.F(z, y)).numpy()
    assert np.abs(latent - expected).max() < 1e-4
    reference = open_onnx(files["reference"]).run(
        None, {"image": x.numpy(), "reference": ref.numpy(), "domain": y.numpy()}
    )[0]
    expected = model.reference(x, ref, y).numpy()
    assert np.abs(reference - expected).max() < 1e-4
    parity = check_parity(folder, tmp_path / "afhq.onnx", batch_sizes=(1, 3))
    assert set(parity["per_batch"]) == {"latent/1", "latent/3", "reference/1", "reference/3"}
    assert parity["max_abs_diff"] < 1e-4


def test_sidecar_describes_both_entry_points(folder: Path, tmp_path: Path) -> None:
    export_onnx(folder, tmp_path / "m.onnx")
    side = json.loads(sidecar_path(tmp_path / "m.onnx").read_text())
    assert side["kind"] == "stargan-v2-generator" and side["domains"] == list(DOMAINS)
    latent, reference = side["entry_points"]["latent"], side["entry_points"]["reference"]
    assert latent["file"] == "m.onnx" and reference["file"] == "m.reference.onnx"
    assert [i["name"] for i in latent["inputs"]] == ["image", "z", "domain"]
    assert [i["name"] for i in reference["inputs"]] == ["image", "reference", "domain"]
    assert latent["inputs"][1]["shape"] == ["N", tiny_cfg().latent_dim]
    assert latent["inputs"][2]["dtype"] == "int64"
    assert side["preprocessing"]["resize"] == [SIZE, SIZE]
    assert side["source"]["config"]["kind"] == "stargan-v2"


def test_torchscript_entry_points_equal_eager_and_check_shapes(folder: Path, tmp_path: Path):
    export_torchscript(folder, tmp_path / "m.pt")
    assert check_parity(folder, tmp_path / "m.pt")["max_abs_diff"] < 1e-5
    latent = load_torchscript(tmp_path / "m.pt")
    reference = load_torchscript(tmp_path / "m.reference.pt")
    x = images(2)
    with pytest.raises(Exception, match=r"z must be float32 \[N, 4\]"):
        latent(x, torch.zeros(2, 5), torch.zeros(2, dtype=torch.long))
    with pytest.raises(Exception, match="image and reference must be"):
        reference(x, images(2, size=8), torch.zeros(2, dtype=torch.long))


def test_command_line_exports_v2_and_checks_parity(folder: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stargan.cli import cli

    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(cli, ["export", str(folder), "--format", "onnx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "parity with eager G: max abs diff" in result.output
    assert "m.reference.onnx" in result.output


def test_w_hpf_models_are_refused_with_the_reason(tmp_path: Path) -> None:
    cfg = tiny_cfg(size=32, w_hpf=1.0)
    nets = tiny_nets(cfg)
    model = StyleModel(nets["G"], nets["F"], nets["E"], cfg, tiny_model().spec, None, {})
    path = model.save_pretrained(tmp_path / "hpf")
    with pytest.raises(StarGANError, match="w_hpf 1.0 > 0: its G needs the FAN's face masks"):
        export_torchscript(
            path,
            tmp_path / "m.pt",
        )


def test_dynamo_exporter_at_opset_18_and_its_refusal_below(folder: Path, tmp_path: Path) -> None:
    info = export_onnx(folder, tmp_path / "d.onnx", dynamo=True, opset=18)
    assert info["opset"] == 18
    assert check_parity(folder, tmp_path / "d.onnx")["max_abs_diff"] < 1e-4
    with pytest.raises(StarGANError, match="opset 18 or later"):
        export_onnx(folder, tmp_path / "e.onnx", dynamo=True, opset=17)
