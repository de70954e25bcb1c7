"""Bundled models: finding them by name, half-precision weights, and `stargan models`.

The bundled root is a tmp folder holding tiny untrained model folders (16 px, random
weights: names and loading are under test here, not image quality)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import stargan
from stargan import bundled
from stargan.bundled import list_bundled, resolve_model
from stargan.cli import main
from stargan.config import ModelConfig
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.models.v1 import Discriminator, Generator
from stargan.translate import Translator

CFG = ModelConfig(
    image_size=16, c_dim=3, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=2
)
SPEC = LabelSpec(("Black_Hair", "Blond_Hair", "Male"), "multi", (("Black_Hair", "Blond_Hair"),))
CARD = "# tiny-faces: a 16 px model of three face attributes\n\nTrained on nothing at all.\n"


def _translator(seed: int) -> Translator:
    torch.manual_seed(seed)
    G = Generator(CFG.c_dim, CFG.g_conv_dim, CFG.g_repeat_num)
    D = Discriminator(CFG.image_size, CFG.c_dim, CFG.d_conv_dim, CFG.d_repeat_num)
    return Translator(G, CFG, SPEC, D, {"crop": 0, "dataset": "unit-test"})


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two bundled models (one without a card) and a folder that is not a model."""
    root = tmp_path_factory.mktemp("bundled")
    _translator(seed=1).save_pretrained(root / "tiny-faces")
    (root / "tiny-faces" / "card.md").write_text(CARD)
    _translator(seed=2).save_pretrained(root / "other", with_discriminator=False)
    (root / "__pycache__").mkdir()
    return root


@pytest.fixture
def empty_root(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def _images(n: int = 4) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


# ---------------------------------------------------------------- finding
def test_list_bundled_reads_name_size_domains_and_summary(root: Path) -> None:
    found = list_bundled(root)
    assert [m.name for m in found] == ["other", "tiny-faces"]  # sorted; __pycache__ left out
    other, tiny = found
    assert tiny.path == root / "tiny-faces" and tiny.image_size == 16
    assert tiny.domains == ("Black_Hair", "Blond_Hair", "Male")
    assert tiny.summary == "tiny-faces: a 16 px model of three face attributes"
    assert other.summary == "stargan-v1 trained on unit-test"  # no card.md: from config.json


def test_no_root_or_an_empty_one_has_no_models(tmp_path: Path, empty_root: Path) -> None:
    assert list_bundled(tmp_path / "missing") == [] and list_bundled(empty_root) == []


def test_the_package_root_is_the_bundled_folder() -> None:
    assert bundled.bundled_root() == Path(bundled.__file__).resolve().parent


def test_a_name_resolves_to_its_folder(root: Path) -> None:
    assert resolve_model("tiny-faces", root) == root / "tiny-faces"


def test_an_existing_path_wins_over_a_bundled_name(root, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tiny-faces").mkdir()
    assert resolve_model("tiny-faces", root) == Path("tiny-faces")
    # and the loader's own errors for that folder are kept
    with pytest.raises(StarGANError, match="tiny-faces has no config.json"):
        stargan.load("tiny-faces")


def test_a_run_folder_is_still_named_as_such(tmp_path: Path) -> None:
    run = tmp_path / "00001-tiny"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")  # a run's config has no model kind
    with pytest.raises(StarGANError, match="is a training run, not a model folder"):
        stargan.load(run)


def test_an_unknown_name_is_one_line_listing_the_bundled_names(root, empty_root) -> None:
    expected = "nope does not exist, and is not a bundled model (bundled models: other, tiny-faces)"
    with pytest.raises(StarGANError) as info:
        resolve_model("nope", root)
    assert str(info.value) == expected
    with pytest.raises(StarGANError, match=r"\(no bundled models are installed\)$"):
        resolve_model("nope", empty_root)


def test_names_are_matched_not_joined_onto_the_root(root: Path) -> None:
    # "tiny-faces/model.safetensors" is under the root but is no bundled model's name
    with pytest.raises(StarGANError, match="is not a bundled model"):
        resolve_model("tiny-faces/model.safetensors", root)


def test_stargan_load_takes_a_bundled_name(root, monkeypatch) -> None:
    monkeypatch.setattr(bundled, "bundled_root", lambda: root)
    model = stargan.load("tiny-faces")
    expected = _translator(seed=1)
    c_trg = torch.tensor([[0.0, 1.0, 1.0]])
    x = expected.preprocess(_images())
    with torch.no_grad():
        assert torch.equal(model.G(x, c_trg.expand(4, -1)), expected.G(x, c_trg.expand(4, -1)))


# ---------------------------------------------------------------- half precision
def _to_half(folder: Path, dtype: torch.dtype = torch.float16) -> None:
    for name in ("model.safetensors", "discriminator.safetensors"):
        state = load_file(str(folder / name))
        save_file({k: v.to(dtype) for k, v in state.items()}, str(folder / name))


def test_float16_weights_load_as_float32_within_tolerance(root, tmp_path) -> None:
    half = tmp_path / "half"
    shutil.copytree(root / "tiny-faces", half)
    _to_half(half)
    size = (root / "tiny-faces" / "model.safetensors").stat().st_size
    assert (half / "model.safetensors").stat().st_size < 0.6 * size
    full, tr = Translator.from_pretrained(root / "tiny-faces"), Translator.from_pretrained(half)
    assert {p.dtype for p in tr.G.parameters()} == {torch.float32}
    assert {p.dtype for p in tr.D.parameters()} == {torch.float32}
    x, c_trg = full.preprocess(_images()), torch.tensor([[0.0, 1.0, 0.0]]).expand(4, -1)
    with torch.no_grad():
        y_full, y_half = full.G(x, c_trg), tr.G(x, c_trg)
    # outputs in [-1, 1]: PSNR over a range of 2; the bar for shipping is 40 dB
    psnr = 10 * torch.log10(4 / (y_full - y_half).pow(2).mean())
    assert 0 < (y_full - y_half).abs().max() < 1e-2 and psnr > 40
    assert torch.equal(tr.estimate_labels(x), full.estimate_labels(x))  # D_cls agrees


def test_float16_overflow_is_refused_as_inf(root, tmp_path) -> None:
    half = tmp_path / "half"
    shutil.copytree(root / "tiny-faces", half)
    state = load_file(str(half / "model.safetensors"))
    name = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[name].view(-1)[0] = 1e5  # past float16's largest value, 65504
    save_file({k: v.half() for k, v in state.items()}, str(half / "model.safetensors"))
    with pytest.raises(StarGANError, match=f"tensor '{name}' holds Inf values"):
        Translator.from_pretrained(half)


# ---------------------------------------------------------------- command line
@pytest.fixture
def cli(capsys, monkeypatch):
    """``stargan ARGS`` through main() (exit codes and one-line errors as users see them),
    with bundled models looked up in the given root."""

    def run(root: Path, *args) -> tuple[int, str, str]:
        monkeypatch.setenv("STARGAN_BUNDLED_DIR", str(root))
        monkeypatch.setattr(sys, "argv", ["stargan", *map(str, args)])
        with pytest.raises(SystemExit) as exit_info:
            main()
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err

    return run


def _one_line_error(code: int, err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_models_lists_name_size_domains_and_summary(cli, root) -> None:
    code, out, _ = cli(root, "models")
    assert code == 0
    assert out.splitlines() == [
        "other          16 px  Black_Hair, Blond_Hair, Male  stargan-v1 trained on unit-test",
        "tiny-faces     16 px  Black_Hair, Blond_Hair, Male  "
        "tiny-faces: a 16 px model of three face attributes",
    ]


def test_models_name_prints_its_card(cli, root) -> None:
    code, out, _ = cli(root, "models", "tiny-faces")
    assert code == 0 and out == CARD.rstrip() + "\n"


def test_models_with_none_installed_says_so(cli, empty_root) -> None:
    code, out, _ = cli(empty_root, "models")
    assert code == 0 and out.startswith("no bundled models are installed")


def test_models_unknown_name_is_one_line_listing_names(cli, root, empty_root) -> None:
    code, _, err = cli(root, "models", "celeba")
    line = _one_line_error(code, err)
    assert "no bundled model is named 'celeba' (bundled models: other, tiny-faces)" in line
    code, _, err = cli(empty_root, "models", "celeba")
    assert "no bundled models are installed" in _one_line_error(code, err)


def test_translate_takes_a_bundled_name(cli, root, tmp_path) -> None:
    face = tmp_path / "face.png"
    Image.fromarray(_images(1)[0]).save(face)
    code, out, _ = cli(
        root, "translate", "tiny-faces", face, "--to", "Male=1", "-o", tmp_path / "o"
    )
    assert code == 0 and "translated 1 image(s)" in out
    (written,) = (tmp_path / "o").glob("*.png")
    assert Image.open(written).size == (16, 16)
    code, _, err = cli(root, "translate", "nope", face, "--to", "Male=1", "-o", tmp_path / "p")
    line = _one_line_error(code, err)
    assert "nope does not exist, and is not a bundled model (bundled models: other" in line


def test_export_takes_a_bundled_name(cli, root, tmp_path) -> None:
    out = tmp_path / "g.pt"
    code, stdout, _ = cli(root, "export", "tiny-faces", "--format", "torchscript", "-o", out)
    assert code == 0 and "parity with eager G" in stdout and out.is_file()
    sidecar = json.loads((tmp_path / "g.pt.json").read_text())
    assert sidecar["inputs"][0]["shape"] == ["N", 3, 16, 16]


def test_serve_without_a_model_serves_bundled_celeba(cli, root, tmp_path, monkeypatch) -> None:
    import stargan.serve

    served = []
    monkeypatch.setattr(stargan.serve, "run", lambda model_dir, *a, **k: served.append(model_dir))
    code, _, err = cli(root, "serve")  # root has no "celeba"
    assert "give a model folder (no bundled 'celeba' model" in _one_line_error(code, err)
    with_celeba = tmp_path / "with-celeba"
    shutil.copytree(root, with_celeba)
    shutil.copytree(root / "tiny-faces", with_celeba / "celeba")
    monkeypatch.chdir(tmp_path)
    Path("celeba").mkdir()  # a folder of that name here does not shadow the default
    assert cli(with_celeba, "serve")[0] == 0 and cli(with_celeba, "serve", "tiny-faces")[0] == 0
    assert served == [with_celeba / "celeba", with_celeba / "tiny-faces"]
