"""StyleModel: the StarGAN v2 model folder (save / load, latent- and reference-guided
synthesis, truncation, domains, w_hpf masks, bad folders) and its export from a run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from stargan import synthesis
from stargan.errors import StarGANError
from stargan.export import export_model, style_model_from_checkpoint
from stargan.stylemodel import FAN_FILE, FORMAT_VERSION, KIND, StyleModel
from v2_helpers import DOMAINS, SIZE, SPEC, images, tiny_cfg, tiny_model, tiny_nets, write_run


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[StyleModel, Path]:
    model = tiny_model()
    return model, model.save_pretrained(tmp_path_factory.mktemp("v2") / "model")


def test_folder_layout(saved) -> None:
    model, path = saved
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "discriminator.safetensors",
        "generator.safetensors",
        "mapping_network.safetensors",
        "style_encoder.safetensors",
    ]
    config = json.loads((path / "config.json").read_text())
    assert (config["kind"], config["format_version"]) == (KIND, FORMAT_VERSION)
    assert config["labels"]["names"] == list(DOMAINS)
    assert config["labels"]["kind"] == "categorical"
    assert config["model"]["arch"] == "v2" and config["model"]["c_dim"] == 2
    assert (config["dataset"], config["crop"]) == ("faces-sex", 0)


def test_round_trip_gives_identical_outputs(saved) -> None:
    model, path = saved
    loaded = StyleModel.from_pretrained(path)
    x, x_ref = images(3), images(3, seed=5)
    assert loaded.domains == DOMAINS and loaded.meta == model.meta
    seeds = [0, 1, 2]
    assert torch.equal(model.latent(x, "male", seeds), loaded.latent(x, "male", seeds))
    assert torch.equal(model.reference(x, x_ref, [0, 1, 1]), loaded.reference(x, x_ref, [0, 1, 1]))
    for net in ("G", "F", "E", "D"):
        ours, theirs = getattr(model, net).state_dict(), getattr(loaded, net).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_latent_is_G_of_F(saved) -> None:
    model, _ = saved
    x = images(3)
    z = synthesis.latents([4, 5, 6], model.latent_dim)
    y = torch.tensor([1, 0, 1])
    with torch.no_grad():
        expected = model.G(x, model.F(z, y))
    assert torch.equal(model.latent(x, ["male", "female", 1], seeds=[4, 5, 6]), expected)
    assert torch.equal(model.latent(x, y, z=z), expected)
    # one seed for all sources: F of that z for each
    one = model.latent(x, "male", seeds=[4])
    with torch.no_grad():
        assert torch.equal(one, model.G(x, model.F(z[:1].expand(3, -1), torch.ones(3).long())))


def test_psi_one_is_F_and_psi_zero_is_the_mean_style(saved) -> None:
    model, _ = saved
    seeds = [0, 1, 2, 3]
    z = synthesis.latents(seeds, model.latent_dim)
    y = torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        assert torch.equal(model.latent_styles("male", seeds, psi=1.0), model.F(z, y))
        mean = synthesis.mean_style(model.F, 1, model.latent_dim)
    s0 = model.latent_styles("male", seeds, psi=0.0)
    assert torch.equal(s0, mean.expand(4, -1))  # every seed: the domain's mean
    assert not torch.allclose(mean, synthesis.mean_style(model.F, 0, model.latent_dim))
    s_half = model.latent_styles("male", seeds, psi=0.5)
    assert torch.allclose(s_half, (model.latent_styles("male", seeds) + mean) / 2, atol=1e-6)


def test_reference_is_G_of_E(saved) -> None:
    model, _ = saved
    x, x_ref = images(2), images(2, seed=9)
    y_ref = torch.tensor([0, 1])
    with torch.no_grad():
        expected = model.G(x, model.E(x_ref, y_ref))
        assert torch.equal(model.reference(x, x_ref, ["female", "male"]), expected)
        # one reference for every source
        one = model.G(x, model.E(x_ref[:1], y_ref[:1]).expand(2, -1))
    assert torch.equal(model.reference(x, x_ref[:1], "female"), one)


def test_input_kinds_come_back_as_given(saved) -> None:
    model, _ = saved
    arr = (np.random.default_rng(0).random((2, 40, 30, 3)) * 255).astype(np.uint8)
    pils = [Image.fromarray(a) for a in arr]
    out = model.latent(pils, "female", seeds=[1, 2])
    assert isinstance(out, list) and out[0].size == (SIZE, SIZE)
    single = model.reference(pils[0], pils[1], "male")
    assert isinstance(single, Image.Image)
    u8 = model.latent(np.stack([np.asarray(p.resize((SIZE, SIZE))) for p in pils]), 0, seeds=[1])
    assert u8.dtype == np.uint8 and u8.shape == (2, SIZE, SIZE, 3)


def test_preprocessing_is_every_familys(saved) -> None:
    from stargan.model_folder import preprocess

    model, _ = saved
    photo = Image.fromarray(np.full((60, 40, 3), 200, np.uint8))
    x = model.preprocess(photo)
    assert x.shape == (1, 3, SIZE, SIZE)
    assert torch.equal(x, preprocess(photo, SIZE, model.crop, model.resize_filter, "cpu"))
    with pytest.raises(StarGANError, match=f"images must be {SIZE}x{SIZE}"):
        model.preprocess(torch.zeros(1, 3, 8, 8))


def test_domains_by_name_and_index(saved) -> None:
    model, _ = saved
    assert model.domain_index("male") == 1 and model.domain_index(0) == 0
    with pytest.raises(StarGANError, match=r"unknown domain 'mael' \(did you mean male"):
        model.domain_index("mael")
    with pytest.raises(StarGANError, match="out of range"):
        model.domain_index(2)
    with pytest.raises(StarGANError, match="out of range"):
        model.latent(images(1), torch.tensor([5]), seeds=[0])
    with pytest.raises(StarGANError, match="got 3 domains for 2 images"):
        model.latent(images(2), ["male"] * 3, seeds=[0])
    with pytest.raises(StarGANError, match="exactly one of seeds or z"):
        model.latent(images(1), "male")
    with pytest.raises(StarGANError, match=r"z must be \[N, 4\]"):
        model.latent(images(1), "male", z=torch.zeros(1, 3))


def test_mean_style_is_computed_once(monkeypatch) -> None:
    model = tiny_model()
    calls = []
    real = synthesis.mean_style
    monkeypatch.setattr(synthesis, "mean_style", lambda *a: calls.append(a) or real(*a))
    first = model.latent_styles("male", [0, 1], psi=0.7)
    assert torch.equal(model.latent_styles("male", [0, 1], psi=0.7), first)
    assert len(calls) == 1


# ---------------------------------------------------------------- w_hpf > 0
def test_w_hpf_needs_the_fan(tmp_path) -> None:
    from stargan.models.fan import FAN

    cfg = tiny_cfg(size=32, w_hpf=1.0)
    nets = tiny_nets(cfg)
    model = StyleModel(nets["G"], nets["F"], nets["E"], cfg, SPEC)
    path = model.save_pretrained(tmp_path / "hpf")
    with pytest.raises(StarGANError, match="w_hpf > 0 needs the FAN weights"):
        StyleModel.from_pretrained(path)
    with pytest.raises(StarGANError, match="w_hpf > 0 needs the FAN weights"):
        model.latent(images(1, size=32), "male", seeds=[0])
    torch.manual_seed(3)
    fan = FAN().eval()
    fan_file = tmp_path / "fan.safetensors"
    save_file({k: v.contiguous() for k, v in fan.state_dict().items()}, str(fan_file))
    loaded = StyleModel.from_pretrained(path, fan_path=fan_file)
    x = images(1, size=32)
    with torch.no_grad():
        s = loaded.F(synthesis.latents([0], 4), torch.tensor([1]))
        expected = loaded.G(x, s, masks=fan.get_heatmap(x))
    assert torch.equal(loaded.latent(x, "male", seeds=[0]), expected)
    # saved with its FAN, the folder needs no fan_path
    again = StyleModel.from_pretrained(loaded.save_pretrained(tmp_path / "with-fan"))
    assert (tmp_path / "with-fan" / FAN_FILE).is_file()
    assert torch.equal(again.latent(x, "male", seeds=[0]), expected)


# ---------------------------------------------------------------- bad folders
def _copy(saved, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved[1], tmp_path / "copy"))


def _edit(path: Path, **changes) -> None:
    config = json.loads((path / "config.json").read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            config[key].update(value)
        else:
            config[key] = value
    (path / "config.json").write_text(json.dumps(config))


def test_missing_folder_and_config(tmp_path) -> None:
    with pytest.raises(StarGANError, match="does not exist"):
        StyleModel.from_pretrained(tmp_path / "nope")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(StarGANError, match="no config.json.*export it first"):
        StyleModel.from_pretrained(tmp_path / "run")


def test_v1_folder_says_use_translate(saved, tmp_path) -> None:
    path = _copy(saved, tmp_path)
    _edit(path, kind="stargan-v1")
    with pytest.raises(StarGANError, match="'stargan-v1' model.*use stargan translate"):
        StyleModel.from_pretrained(path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 2}, "newer than this stargan supports"),
        ({"format_version": "1"}, "format_version must be an integer"),
        ({"model": {"style_dim": 10**6}}, "not a StarGAN v2 model of sensible size"),
        ({"model": {"c_dim": 3}}, "c_dim 3 does not match its 2 categorical domains"),
        ({"model": {"arch": "v1"}}, "arch 'v1'"),
        ({"model": {"bogus": 1}}, "unknown keys"),
        ({"labels": {"names": "female"}}, "malformed labels"),
        ({"crop": "0"}, "crop must be an integer"),
    ],
)
def test_bad_config(saved, tmp_path, changes, message) -> None:
    path = _copy(saved, tmp_path)
    _edit(path, **changes)
    with pytest.raises(StarGANError, match=message):
        StyleModel.from_pretrained(path)


def test_unreadable_or_incomplete_config(saved, tmp_path) -> None:
    path = _copy(saved, tmp_path)
    config = json.loads((path / "config.json").read_text())
    del config["labels"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(StarGANError, match="lacks 'labels'"):
        StyleModel.from_pretrained(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(StarGANError, match="unreadable"):
        StyleModel.from_pretrained(path)


def test_missing_corrupt_and_mismatched_weights(saved, tmp_path) -> None:
    path = _copy(saved, tmp_path)
    (path / "style_encoder.safetensors").unlink()
    with pytest.raises(StarGANError, match="style_encoder.safetensors is missing"):
        StyleModel.from_pretrained(path)
    (path / "style_encoder.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(StarGANError, match="does not hold this model's weights"):
        StyleModel.from_pretrained(path)
    shutil.copy(saved[1] / "style_encoder.safetensors", path)
    _edit(path, model={"style_dim": 16})  # weights of another shape
    with pytest.raises(StarGANError, match="generator.safetensors does not hold"):
        StyleModel.from_pretrained(path)


def test_save_without_discriminator_removes_an_old_one(saved, tmp_path) -> None:
    model, _ = saved
    path = model.save_pretrained(tmp_path / "m")
    model.save_pretrained(path, with_discriminator=False)
    assert not (path / "discriminator.safetensors").exists()
    assert StyleModel.from_pretrained(path).D is None


# ---------------------------------------------------------------- export from a run
def test_export_of_a_v2_run_has_the_running_averages(tmp_path) -> None:
    nets = write_run(tmp_path / "run", step=20)
    path = export_model(tmp_path / "run", tmp_path / "model")
    model = StyleModel.from_pretrained(path)
    for name, net in (("G", model.G), ("F", model.F), ("E", model.E)):
        ema, trained = nets[f"{name}_ema"].state_dict(), nets[name].state_dict()
        state = net.state_dict()
        assert all(torch.equal(state[k], ema[k]) for k in state)
        assert not all(torch.equal(state[k], trained[k]) for k in state)
    d = nets["D"].state_dict()
    assert all(torch.equal(v, d[k]) for k, v in model.D.state_dict().items())
    assert model.meta["step"] == 20 and model.meta["run_name"] == "tiny-v2"
    assert model.meta["dataset"] == "faces-sex" and model.domains == DOMAINS
    from_run = style_model_from_checkpoint(tmp_path / "run")
    x = images(2)
    assert torch.equal(from_run.latent(x, "male", seeds=[0]), model.latent(x, "male", seeds=[0]))


def test_export_refuses_a_model_folder(saved, tmp_path) -> None:
    with pytest.raises(StarGANError, match="already a StarGAN v2 model folder"):
        export_model(saved[1], tmp_path / "again")
