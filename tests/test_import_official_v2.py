"""import_official_v2: official clovaai/stargan-v2 checkpoints -> v2 model folder.

The official networks have our module layout and key names (models/v2.py keeps them), so
the test writes ``{step}_nets_ema.ckpt`` as the official ``CheckpointIO`` does:
``torch.save({"generator": G.state_dict(), "mapping_network": ..., "style_encoder": ...})``.
"""

from __future__ import annotations

import json
import pathlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan import synthesis
from stargan.errors import StarGANError
from stargan.import_official_v2 import import_official_v2, read_official_v2
from stargan.stylemodel import StyleModel
from test_cli import run_cli
from v2_helpers import images, tiny_cfg, tiny_nets

DOMAINS = ["cat", "dog", "wild"]


def _official(nets: dict, path: Path, **extra) -> Path:
    """Write nets as the official CheckpointIO does (names -> plain state dicts)."""
    ckpt = {
        "generator": nets["G"].state_dict(),
        "mapping_network": nets["F"].state_dict(),
        "style_encoder": nets["E"].state_dict(),
        **extra,
    }
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> tuple[dict, Path]:
    nets = tiny_nets(tiny_cfg(domains=3), seed=4)
    path = tmp_path_factory.mktemp("official") / "100000_nets_ema.ckpt"
    return nets, _official(nets, path)


def test_imported_model_equals_the_official_networks(official, tmp_path) -> None:
    nets, path = official
    out = import_official_v2(path, tmp_path / "afhq", DOMAINS)
    model = StyleModel.from_pretrained(out)
    assert model.domains == tuple(DOMAINS) and model.D is None
    m = model.model_cfg
    assert (m.image_size, m.latent_dim, m.style_dim, m.mapping_dim) == (16, 4, 8, 16)
    assert (m.base_dim, m.max_conv_dim, m.w_hpf, m.c_dim) == (8, 16, 0.0, 3)
    x, x_ref = images(3), images(3, seed=7)
    y = torch.tensor([0, 1, 2])
    z = synthesis.latents([0, 1, 2], 4)
    with torch.no_grad():
        latent = nets["G"](x, nets["F"](z, y))
        reference = nets["G"](x, nets["E"](x_ref, y))
    assert torch.equal(model.latent(x, DOMAINS, seeds=[0, 1, 2]), latent)
    assert torch.equal(model.reference(x, x_ref, DOMAINS), reference)
    config = json.loads((out / "config.json").read_text())
    assert config["step"] == 100000 and config["dataset"] == "folders"
    assert config["imported"]["from"] == "clovaai/stargan-v2"
    assert config["imported"]["checkpoint"]["file"] == "100000_nets_ema.ckpt"
    # the official loaders' filter (torchvision's Resize of a PIL image): eval's data and
    # the photos given to sample are resized bilinear, as the model was trained
    assert config["resize_filter"] == "bilinear" and model.resize_filter == "bilinear"
    assert config["sources"][0]["data"]["resize_filter"] == "bilinear"
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), np.uint8))
    official_input = np.asarray(photo.resize((16, 16), Image.BILINEAR), np.float32) / 127.5 - 1
    x = model.preprocess(photo)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(x, official_input, atol=1e-6)


def test_image_size_and_domains_are_checked(official, tmp_path) -> None:
    _, path = official
    with pytest.raises(StarGANError, match="3 domain heads, but 2 domains"):
        import_official_v2(path, tmp_path / "m", ["cat", "dog"])
    with pytest.raises(StarGANError, match="trained on 16 px images.*not image size 32"):
        import_official_v2(path, tmp_path / "m", DOMAINS, image_size=32)
    with pytest.raises(StarGANError, match="no high-pass skips"):
        import_official_v2(path, tmp_path / "m", DOMAINS, w_hpf=1.0)
    assert not (tmp_path / "m").exists()


def test_high_pass_kernel_key_optional_and_checked(tmp_path) -> None:
    cfg = tiny_cfg(size=32, w_hpf=1.0)
    nets = tiny_nets(cfg)
    plain = _official(nets, tmp_path / "plain.ckpt")  # no hpf.filter (as ours saves)
    out = import_official_v2(plain, tmp_path / "a", ["female", "male"])
    assert json.loads((out / "config.json").read_text())["model"]["w_hpf"] == 1.0
    half = dict(nets["G"].state_dict(), **{"hpf.filter": nets["G"].hpf.filter * 2})
    torch.save(
        {"generator": half, "mapping_network": nets["F"].state_dict(),
         "style_encoder": nets["E"].state_dict()},
        tmp_path / "half.ckpt",
    )  # fmt: skip
    # the kernel says w_hpf 0.5: read from it; a different --w-hpf is an error
    out = import_official_v2(tmp_path / "half.ckpt", tmp_path / "b", ["female", "male"])
    assert json.loads((out / "config.json").read_text())["model"]["w_hpf"] == 0.5
    with pytest.raises(StarGANError, match="hpf.filter says w_hpf 0.5, not 1"):
        import_official_v2(tmp_path / "half.ckpt", tmp_path / "c", ["female", "male"], w_hpf=1.0)
    with pytest.raises(StarGANError, match="--w-hpf is 0"):
        import_official_v2(plain, tmp_path / "c", ["female", "male"], w_hpf=0.0)


def test_data_parallel_prefix_and_discriminator(tmp_path) -> None:
    nets = tiny_nets(tiny_cfg(domains=3), seed=2)
    wrapped = {k: {f"module.{n}": t for n, t in v.state_dict().items()} for k, v in nets.items()}
    torch.save(
        {"generator": wrapped["G"], "mapping_network": wrapped["F"],
         "style_encoder": wrapped["E"], "discriminator": wrapped["D"]},
        tmp_path / "100000_nets.ckpt",
    )  # fmt: skip
    out = import_official_v2(tmp_path / "100000_nets.ckpt", tmp_path / "m", DOMAINS)
    model = StyleModel.from_pretrained(out)
    d = nets["D"].state_dict()
    assert all(torch.equal(v, d[k]) for k, v in model.D.state_dict().items())


def test_foreign_files_are_refused(official, tmp_path) -> None:
    nets, _ = official
    torch.save(nets["G"].state_dict(), tmp_path / "flat.ckpt")
    with pytest.raises(StarGANError, match="no 'generator' network.*without --v2"):
        read_official_v2(tmp_path / "flat.ckpt")
    optims = {k: {"state": {}, "param_groups": []} for k in ("generator", "mapping_network")}
    torch.save({**optims, "style_encoder": {"state": {}}}, tmp_path / "100000_optims.ckpt")
    with pytest.raises(StarGANError, match="not a plain state dict: 'state'"):
        read_official_v2(tmp_path / "100000_optims.ckpt")
    _official(nets, tmp_path / "extra.ckpt", optimizer={"w": torch.zeros(1)})
    with pytest.raises(StarGANError, match="unexpected entry 'optimizer'"):
        read_official_v2(tmp_path / "extra.ckpt")
    broken = {**nets["G"].state_dict()}
    broken.pop("from_rgb.bias")
    torch.save(
        {"generator": broken, "mapping_network": nets["F"].state_dict(),
         "style_encoder": nets["E"].state_dict()},
        tmp_path / "broken.ckpt",
    )  # fmt: skip
    with pytest.raises(StarGANError, match="generator does not fit.*from_rgb.bias"):
        import_official_v2(tmp_path / "broken.ckpt", tmp_path / "m", DOMAINS)
    with pytest.raises(StarGANError, match="does not exist"):
        read_official_v2(tmp_path / "nope.ckpt")


class _TouchesWhenUnpickled:
    """Proof of code execution: unpickling this creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_code_in_a_pickle_is_never_run(official, tmp_path) -> None:
    nets, _ = official
    marker = tmp_path / "ran"
    _official(nets, tmp_path / "evil.ckpt", fan=_TouchesWhenUnpickled(marker))
    with pytest.raises(StarGANError, match="refused without running it"):
        read_official_v2(tmp_path / "evil.ckpt")
    assert not marker.exists()


def test_command_line_import_then_sample(official, tmp_path, monkeypatch, capsys) -> None:
    def run(*args) -> tuple[int, str, str]:
        return run_cli([str(a) for a in args], capsys, monkeypatch)

    _, path = official
    model = tmp_path / "afhq"
    code, out, err = run("import-official", path, "--v2", "--domains", "cat,dog,wild", "-o", model)
    assert code == 0 and f"model folder: {model}" in out, err
    face = tmp_path / "src" / "face.png"
    face.parent.mkdir()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(face)
    code, out, err = run(
        "sample", model, "--inputs", face.parent, "--seeds", "0,1", "-o", tmp_path / "s"
    )
    assert code == 0 and "wrote 6 image(s)" in out, err
    for args, message in [
        (["--attrs", "A,B"], "--attrs is for v1 checkpoints"),
        ([], "Missing option '--domains'"),
        (["--domains", "cat,dog"], "3 domain heads, but 2 domains"),
    ]:
        code, _, err = run("import-official", path, "--v2", *args, "-o", tmp_path / "x")
        assert code == 2 and message in err, err
    code, _, err = run("import-official", path, "--image-size", "16", "-o", tmp_path / "x")
    assert code == 2 and "Missing option '--attrs'" in err
    code, _, err = run("import-official", path, "--domains", "a,b", "-o", tmp_path / "x")
    assert code == 2 and "for --v2 checkpoints" in err


def test_fan_entry_becomes_the_folders_fan(tmp_path) -> None:
    from stargan.models.fan import FAN

    cfg = tiny_cfg(size=32, w_hpf=1.0)
    nets = tiny_nets(cfg)
    torch.manual_seed(5)
    fan = FAN()
    path = _official(nets, tmp_path / "100000_nets_ema.ckpt", fan=fan.state_dict())
    out = import_official_v2(path, tmp_path / "celeba-hq", ["female", "male"])
    assert (out / "fan.safetensors").is_file()
    model = StyleModel.from_pretrained(out)  # no fan_path needed
    theirs = fan.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in model.fan.state_dict().items())
