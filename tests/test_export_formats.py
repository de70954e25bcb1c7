"""ONNX and TorchScript export of G: parity with eager G, dynamic batch, the sidecar, the
docs' plain-onnxruntime snippet, and the errors when the onnx extra is missing.

ONNX tests need ``pip install 'stargan[onnx]'``; without it they fail (CI installs it)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan.config import ModelConfig
from stargan.data.joint import LabelLayout
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.export_formats import (
    check_parity,
    export_onnx,
    export_torchscript,
    load_torchscript,
    open_onnx,
    run_onnx,
    sidecar_path,
)
from stargan.models.v1 import Generator
from stargan.translate import Translator

DOCS = Path(__file__).resolve().parents[1] / "docs" / "export.md"
NAMES = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]  # faces-attr = CelebA's


@pytest.fixture(scope="module")
def tiny_onnx(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(tiny_model, out)
    return out


def _joint_model(path: Path, seed: int = 0) -> Path:
    """A joint (two datasets + mask) model folder with a random tiny G."""
    celeba = LabelSpec(tuple(NAMES), "multi", (tuple(NAMES[:3]),))
    expr = LabelSpec(("happy", "sad", "neutral"), "categorical")
    layout = LabelLayout(("celeba", "rafd"), (celeba, expr))
    cfg = ModelConfig(
        image_size=16, c_dim=8, mask_dim=2, g_conv_dim=8, g_repeat_num=1, d_repeat_num=2
    )
    torch.manual_seed(seed)
    G = Generator(layout.dim, cfg.g_conv_dim, cfg.g_repeat_num)
    meta = {"crop": 178, "sources": [{"name": "celeba", "crop": 178}, {"name": "rafd", "crop": 0}]}
    return Translator(G, cfg, layout, None, meta).save_pretrained(path, with_discriminator=False)


def test_onnx_matches_eager_at_several_batch_sizes(tiny_model: Path, tiny_onnx: Path) -> None:
    import onnx

    onnx.checker.check_model(str(tiny_onnx))
    session = open_onnx(tiny_onnx, threads=1)
    assert [(i.name, i.shape) for i in session.get_inputs()] == [
        ("image", ["N", 3, 16, 16]),
        ("labels", ["N", 5]),
    ]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("translated", ["N", 3, 16, 16])]
    result = check_parity(tiny_model, tiny_onnx, batch_sizes=(1, 3))
    assert result["batch_sizes"] == [1, 3] and set(result["per_batch"]) == {1, 3}
    assert 0 < result["max_abs_diff"] < 1e-4  # 0 would mean eager G was compared to itself


def test_onnx_refuses_other_image_sizes(tiny_onnx: Path) -> None:
    session = open_onnx(tiny_onnx, threads=1)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        run_onnx(session, np.zeros((1, 3, 32, 32), np.float32), np.zeros((1, 5), np.float32))


def test_torchscript_matches_eager_and_checks_shapes(tiny_model: Path, tmp_path: Path) -> None:
    out = export_torchscript(tiny_model, tmp_path / "tiny.pt")
    assert out["format"] == "torchscript" and Path(out["file"]).exists()
    result = check_parity(tiny_model, tmp_path / "tiny.pt", batch_sizes=(1, 3))
    assert result["max_abs_diff"] < 1e-4
    G = load_torchscript(tmp_path / "tiny.pt")
    assert (G.image_size, G.label_dim) == (16, 5)
    with pytest.raises(Exception, match=r"image must be float32 \[N, 3, 16, 16\]"):
        G(torch.zeros(1, 3, 32, 32), torch.zeros(1, 5))
    with pytest.raises(Exception, match=r"labels must be float32 \[N, 5\]"):
        G(torch.zeros(2, 3, 16, 16), torch.zeros(2, 4))


def test_sidecar_describes_inputs_labels_and_preprocessing(
    tiny_model: Path, tiny_onnx: Path
) -> None:
    meta = json.loads(sidecar_path(tiny_onnx).read_text())
    config = json.loads((tiny_model / "config.json").read_text())
    assert (meta["format"], meta["file"], meta["opset"]) == ("onnx", "tiny.onnx", 17)
    assert meta["exporter"] == "torch.onnx.export(dynamo=False)"
    image, labels = meta["inputs"]
    assert (image["name"], image["shape"], image["range"]) == ("image", ["N", 3, 16, 16], [-1, 1])
    assert (labels["name"], labels["shape"], labels["columns"]) == ("labels", ["N", 5], NAMES)
    assert meta["outputs"][0]["name"] == "translated"
    (part,) = meta["labels"]["datasets"]
    assert part["names"] == NAMES and part["columns"] == [0, 5]
    assert part["exclusive_groups"] == [NAMES[:3]] and "mask" not in meta["labels"]
    assert meta["preprocessing"]["crop"] == config.get("crop", 0)
    assert meta["preprocessing"]["resize"] == [16, 16]
    assert meta["source"]["config"] == config
    assert meta["source"]["model"]["image_size"] == 16


def test_joint_model_label_columns_include_the_mask(tmp_path: Path) -> None:
    model = _joint_model(tmp_path / "joint")
    out = export_onnx(model, tmp_path / "joint.onnx")
    meta = json.loads(Path(out["sidecar"]).read_text())
    assert meta["inputs"][1]["columns"] == [
        *(f"celeba.{n}" for n in NAMES),
        "rafd.happy",
        "rafd.sad",
        "rafd.neutral",
        "mask.celeba",
        "mask.rafd",
    ]
    assert meta["labels"]["mask"]["columns"] == [8, 10]
    assert [d["columns"] for d in meta["labels"]["datasets"]] == [[0, 5], [5, 8]]
    assert [d["crop"] for d in meta["labels"]["datasets"]] == [178, 0]
    # "happy" as the docs build it, by column name: rafd's part and its mask set
    columns = meta["inputs"][1]["columns"]
    c = np.array([[float(n in ("rafd.happy", "mask.rafd")) for n in columns]], np.float32)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    tr = Translator.from_pretrained(model)
    c_happy = tr.layout.encode(1, torch.tensor([[1.0, 0.0, 0.0]]))
    assert c_happy.numpy().tolist() == c.tolist()
    expected = tr.G(torch.from_numpy(x), c_happy)
    got = run_onnx(open_onnx(out["file"], threads=1), x, c)
    assert np.abs(got - expected.detach().numpy()).max() < 1e-4


def test_parity_check_fails_for_another_models_file(tmp_path: Path) -> None:
    out = export_torchscript(_joint_model(tmp_path / "a", seed=0), tmp_path / "a.pt")
    other = _joint_model(tmp_path / "b", seed=1)
    with pytest.raises(StarGANError, match="differs from eager G"):
        check_parity(other, out["file"])


def test_dynamo_exporter_gives_the_same_interface(tmp_path: Path) -> None:
    model = _joint_model(tmp_path / "joint")
    out = export_onnx(model, tmp_path / "joint.onnx", dynamo=True)
    assert (out["exporter"], out["opset"]) == ("torch.onnx.export(dynamo=True)", 17)
    session = open_onnx(out["file"], threads=1)
    assert [i.shape for i in session.get_inputs()] == [["N", 3, 16, 16], ["N", 10]]
    assert check_parity(model, out["file"], batch_sizes=(1, 3))["max_abs_diff"] < 1e-4


def test_docs_snippet_runs_and_matches_the_translator(
    tiny_model: Path, tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = DOCS.read_text()
    (code,) = [
        b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "import onnxruntime" in b
    ]
    photo = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "face.png")
    code = re.sub(r'^MODEL = ".*"', f"MODEL = {str(tiny_onnx)!r}", code, flags=re.M)
    code = re.sub(r'^PHOTO = ".*"', f"PHOTO = {str(tmp_path / 'face.png')!r}", code, flags=re.M)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOCS), "exec"), {})
    got = np.asarray(Image.open(tmp_path / "translated.png"), dtype=np.int16)
    tr = Translator.from_pretrained(tiny_model)
    target = torch.tensor([[0.0, 1.0, 0.0, 1.0, 1.0]])  # blond, male, young
    expected = np.asarray(tr.translate(Image.fromarray(photo), target), dtype=np.int16)
    assert got.shape == (16, 16, 3) and np.abs(got - expected).max() <= 1


def test_missing_onnxruntime_names_the_extra(
    tiny_model: Path, tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(StarGANError, match=re.escape("pip install 'stargan[onnx]'")):
        open_onnx(tiny_onnx)
    with pytest.raises(StarGANError, match="onnxruntime package"):
        check_parity(tiny_model, tiny_onnx)


def test_missing_onnx_names_the_extra(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(StarGANError, match=re.escape("onnx package: pip install 'stargan[onnx]'")):
        export_onnx(tiny_model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_bad_paths_are_clear_errors(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(StarGANError, match="does not exist"):
        check_parity(tiny_model, tmp_path / "nothing.onnx")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(StarGANError, match="not a loadable TorchScript file"):
        load_torchscript(tmp_path / "junk.pt")
    with pytest.raises(StarGANError, match="does not exist"):
        export_torchscript(tmp_path / "no-model", tmp_path / "m.pt")


@pytest.mark.parametrize(("fmt", "name"), [("onnx", "m.onnx"), ("torchscript", "m.pt")])
def test_command_line_export_checks_parity(
    fmt, name, tiny_model, tiny_run, tmp_path, monkeypatch, capsys
):
    import sys

    from stargan.cli import main

    for source in (tiny_model, tiny_run):  # a model folder, and a run folder
        out = tmp_path / source.name / name
        out.parent.mkdir()
        monkeypatch.setattr(
            sys, "argv", ["stargan", "export", str(source), "--format", fmt, "-o", str(out)]
        )
        with pytest.raises(SystemExit) as exit_info:
            main()
        stdout, err = capsys.readouterr()
        assert exit_info.value.code == 0, err
        assert "parity with eager G: max abs diff" in stdout and out.exists()
        assert json.loads(sidecar_path(out).read_text())["inputs"][0]["shape"] == ["N", 3, 16, 16]
