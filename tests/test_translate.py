"""Translator (model folders, inputs, targets, errors) and the image helpers it uses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stargan
from stargan.config import ModelConfig
from stargan.data.dataset import to_model_range, to_uint8
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.images import center_crop_resize, load_rgb, make_grid, to_rgb
from stargan.models.v1 import Discriminator, Generator
from stargan.translate import FORMAT_VERSION, KIND, Translator

CFG = ModelConfig(
    image_size=16, c_dim=3, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=2
)
SPEC = LabelSpec(("Black_Hair", "Blond_Hair", "Male"), "multi", (("Black_Hair", "Blond_Hair"),))
META = {"crop": 0, "dataset": "unit-test", "step": 7}


def _translator(seed: int = 0, with_d: bool = True, cfg: ModelConfig = CFG) -> Translator:
    torch.manual_seed(seed)
    G = Generator(cfg.c_dim, cfg.g_conv_dim, cfg.g_repeat_num)
    D = Discriminator(cfg.image_size, cfg.c_dim, cfg.d_conv_dim, cfg.d_repeat_num)
    return Translator(G, cfg, SPEC, D if with_d else None, META)


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


def _expected(tr: Translator, hwc: np.ndarray, c_trg: torch.Tensor) -> np.ndarray:
    """The translation computed by hand: uint8 NHWC -> [-1, 1] -> G -> uint8 NHWC."""
    x = to_model_range(torch.from_numpy(hwc).permute(0, 3, 1, 2))
    with torch.no_grad():
        y = tr.G(x, c_trg)
    return to_uint8(y).permute(0, 2, 3, 1).numpy()


C_ORG = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
C_BLOND = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]])  # Blond_Hair=1 applied to C_ORG


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Translator, Path]:
    tr = _translator(seed=3)
    return tr, tr.save_pretrained(tmp_path_factory.mktemp("model") / "m")


# ---------------------------------------------------------------- save / load
def test_save_pretrained_layout(saved) -> None:
    _, path = saved
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "discriminator.safetensors",
        "model.safetensors",
    ]
    config = json.loads((path / "config.json").read_text())
    assert config["kind"] == KIND and config["format_version"] == 1
    assert config["model"]["c_dim"] == 3 and config["model"]["image_size"] == 16
    assert config["labels"] == SPEC.to_dict()
    assert config["dataset"] == "unit-test" and config["step"] == 7


def test_round_trip_gives_identical_outputs(saved) -> None:
    tr, path = saved
    back = Translator.from_pretrained(path)
    assert back.model_cfg == CFG and back.spec == SPEC and back.meta == META
    assert back.D is not None and not back.G.training and not back.D.training
    x = to_model_range(torch.from_numpy(_images(2)).permute(0, 3, 1, 2))
    assert torch.equal(back.translate(x, C_BLOND), tr.translate(x, C_BLOND))
    assert torch.equal(back.estimate_labels(x), tr.estimate_labels(x))
    # stargan.load is the same loader
    assert torch.equal(stargan.load(path).translate(x, C_BLOND), tr.translate(x, C_BLOND))
    # a freshly initialised G gives something else: the weights really were loaded
    assert not torch.equal(_translator(seed=4).translate(x, C_BLOND), tr.translate(x, C_BLOND))


def test_save_without_discriminator(tmp_path) -> None:
    path = _translator().save_pretrained(tmp_path / "m", with_discriminator=False)
    assert not (path / "discriminator.safetensors").exists()
    assert Translator.from_pretrained(path).D is None


# ---------------------------------------------------------------- inputs
def test_translate_pil_image(saved) -> None:
    tr, _ = saved
    hwc = _images(1)
    out = tr.translate(Image.fromarray(hwc[0]), "Blond_Hair=1", c_org=C_ORG[:1])
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (16, 16)
    np.testing.assert_array_equal(np.asarray(out), _expected(tr, hwc, C_BLOND[:1])[0])


def test_translate_list_of_pil(saved) -> None:
    tr, _ = saved
    hwc = _images(2)
    out = tr.translate([Image.fromarray(a) for a in hwc], "Blond_Hair=1", c_org=C_ORG)
    assert isinstance(out, list) and len(out) == 2
    expected = _expected(tr, hwc, C_BLOND)
    for im, exp in zip(out, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(im), exp)


def test_translate_pil_of_other_size_and_mode_is_cropped_and_resized(saved) -> None:
    tr, _ = saved
    big = Image.new("L", (40, 24), 128)
    out = tr.translate(big, {"Male": 0}, c_org=C_ORG[:1])
    assert out.size == (16, 16) and out.mode == "RGB"
    x = to_model_range(torch.full((1, 3, 16, 16), 128, dtype=torch.uint8))
    expected = to_uint8(tr.G(x, torch.tensor([[1.0, 0.0, 0.0]]))).permute(0, 2, 3, 1)
    np.testing.assert_array_equal(np.asarray(out), expected[0].numpy())


def test_translate_numpy_hwc_and_nhwc(saved) -> None:
    tr, _ = saved
    hwc = _images(2)
    one = tr.translate(hwc[0], "Blond_Hair=1", c_org=C_ORG[:1])
    assert one.dtype == np.uint8 and one.shape == (16, 16, 3)
    np.testing.assert_array_equal(one, _expected(tr, hwc[:1], C_BLOND[:1])[0])
    many = tr.translate(hwc, "Blond_Hair=1", c_org=C_ORG)
    assert many.dtype == np.uint8 and many.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(many, _expected(tr, hwc, C_BLOND))


def test_translate_float_tensor(saved) -> None:
    tr, _ = saved
    x = to_model_range(torch.from_numpy(_images(2)).permute(0, 3, 1, 2))
    y = tr.translate(x, C_BLOND)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == (2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(y, tr.G(x, C_BLOND))
    # a single [3, H, W] image is batched
    assert tr.translate(x[0], C_BLOND[:1]).shape == (1, 3, 16, 16)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 16, 16, 3), np.float32),  # not uint8
        np.zeros((16, 16), np.uint8),  # no channels
        np.zeros((1, 16, 16, 4), np.uint8),  # RGBA array
    ],
)
def test_bad_numpy_input(saved, bad: np.ndarray) -> None:
    tr, _ = saved
    with pytest.raises(StarGANError, match=r"numpy images must be uint8 \[N, H, W, 3\]"):
        tr.translate(bad, "Male=1", c_org=C_ORG[:1])


def test_wrong_tensor_size_and_type(saved) -> None:
    tr, _ = saved
    with pytest.raises(StarGANError, match="images must be 16x16, got 32x32"):
        tr.translate(torch.zeros(1, 3, 32, 32), C_BLOND[:1])
    with pytest.raises(StarGANError, match=r"shape \[N, 3, H, W\]"):
        tr.translate(torch.zeros(1, 1, 16, 16), C_BLOND[:1])
    with pytest.raises(StarGANError, match="unsupported image input str"):
        tr.translate("face.png", C_BLOND[:1])


# ---------------------------------------------------------------- targets
def test_targets_string_dict_and_tensor_agree(saved) -> None:
    tr, _ = saved
    x = to_model_range(torch.from_numpy(_images(2)).permute(0, 3, 1, 2))
    by_str = tr.translate(x, "Blond_Hair=1", c_org=C_ORG)
    by_dict = tr.translate(x, {"Blond_Hair": 1}, c_org=C_ORG)
    by_tensor = tr.translate(x, C_BLOND)
    assert torch.equal(by_str, by_tensor) and torch.equal(by_dict, by_tensor)
    # a 1-D tensor is used for every image
    assert torch.equal(tr.translate(x, torch.tensor([0.0, 1.0, 0.0]))[1], by_tensor[1])
    with torch.no_grad():
        assert not torch.equal(by_tensor, tr.G(x, C_ORG))  # the target mattered


def test_target_labels_semantics(saved) -> None:
    tr, _ = saved
    c = tr.target_labels("Black_Hair=1,Male=0", C_ORG)
    assert torch.equal(c, torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(StarGANError, match=r"target labels must be \[N, 3\]"):
        tr.target_labels(torch.zeros(2, 4), C_ORG)


def test_unknown_attribute(saved) -> None:
    tr, _ = saved
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(StarGANError, match="unknown domain 'Blonde_Hair'.*did you mean Blond_Hair"):
        tr.translate(x, "Blonde_Hair=1", c_org=C_ORG[:1])
    with pytest.raises(StarGANError, match="unknown domain 'Smiling'"):
        tr.translate(x, {"Smiling": 1}, c_org=C_ORG[:1])


def test_estimated_labels_respect_exclusive_groups(saved) -> None:
    tr, _ = saved
    x = to_model_range(torch.from_numpy(_images(8)).permute(0, 3, 1, 2))
    c = tr.estimate_labels(x)
    assert c.shape == (8, 3) and ((c == 0) | (c == 1)).all()
    assert (c[:, :2].sum(1) <= 1).all()
    # without c_org the estimate is used as the source labels
    assert torch.equal(
        tr.translate(x, "Male=1"), tr.translate(x, "Male=1", c_org=tr.estimate_labels(x))
    )


class _FixedLogits(torch.nn.Module):
    """A stand-in D whose D_cls logits are given, to check how they become labels."""

    def __init__(self, logits: list[list[float]]) -> None:
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(x.size(0), 1, 4, 4), self.logits[: x.size(0)]


def test_estimate_labels_from_logits() -> None:
    logits = [[2.0, 1.0, -1.0], [-1.0, 3.0, 0.5], [-2.0, -1.0, 1.0], [0.5, 4.0, -3.0]]
    tr = Translator(_translator().G, CFG, SPEC, _FixedLogits(logits))
    c = tr.estimate_labels(torch.zeros(4, 3, 16, 16))
    # logit > 0 is on; of the exclusive hair pair only the larger logit stays on
    expected = [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    assert c.tolist() == expected
    expr = LabelSpec(("angry", "happy", "sad"), "categorical")
    tr = Translator(_translator().G, CFG, expr, _FixedLogits(logits))
    assert tr.estimate_labels(torch.zeros(4, 3, 16, 16)).tolist() == [
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 1.0, 0.0],
    ]


def test_no_discriminator_needs_c_org(tmp_path) -> None:
    tr = _translator(with_d=False)
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(StarGANError, match="no discriminator.safetensors.*pass c_org"):
        tr.translate(x, {"Male": 1})
    with pytest.raises(StarGANError, match="pass c_org"):
        tr.translate(x, "Male=1")
    # a tensor target needs no source labels
    assert tr.translate(x, torch.tensor([[0.0, 0.0, 1.0]])).shape == (1, 3, 16, 16)


def test_all_domains(saved) -> None:
    tr, _ = saved
    x = to_model_range(torch.from_numpy(_images(2)).permute(0, 3, 1, 2))
    out = tr.all_domains(x, C_ORG)
    assert [name for name, _ in out] == list(SPEC.names)
    blond = dict(out)["Blond_Hair"]
    assert torch.equal(blond, tr.translate(x, C_BLOND))


def test_all_domains_multi_gives_the_combinations(saved) -> None:
    tr, _ = saved
    x = to_model_range(torch.from_numpy(_images(2)).permute(0, 3, 1, 2))
    out = dict(tr.all_domains(x, C_ORG, how="multi"))
    assert list(out) == ["Black_Hair+Male", "Blond_Hair+Male"]
    blond_flipped = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    assert torch.equal(out["Blond_Hair+Male"], tr.translate(x, blond_flipped))


def test_source_labels_give_the_named_domains_and_estimate_the_rest(saved) -> None:
    tr, _ = saved
    x = to_model_range(torch.from_numpy(_images(2)).permute(0, 3, 1, 2))
    own = tr.estimate_labels(x)
    c_src = tr.source_labels(x, "Male=0")
    assert c_src[:, 2].tolist() == [0.0, 0.0] and torch.equal(c_src[:, :2], own[:, :2])
    assert tr.source_labels(x, "Blond_Hair=1,Male=1").tolist() == [[0, 1, 1], [0, 1, 1]]
    # the declared source is what the unnamed target domains keep
    black_not_male = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert torch.equal(tr.apply(x, "Black_Hair=1", c_src), tr.apply(x, black_not_male))


def test_a_mask_needs_a_joint_model(saved) -> None:
    tr, _ = saved
    with pytest.raises(StarGANError, match="joint models"):
        tr.translate(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), "Male=1", mask="celeba")


@pytest.mark.parametrize(
    ("meta", "text"),
    [
        ({"sources": [{"dataset": "celeba"}]}, "model: trained on celeba at 16 px"),
        ({"dataset": "faces-attr"}, "at 16 px (built-in rendered faces: real photos come out"),
        ({"sources": [{"dataset": "celeba"}, {"dataset": "faces-expr"}]}, "celeba, faces-expr"),
        ({}, "model: trained on unknown data at 16 px"),
    ],
)
def test_describe_says_what_the_model_is_for(meta: dict, text: str) -> None:
    tr = _translator()
    tr.meta = meta
    assert text in tr.describe()
    assert ("real photos" in tr.describe()) == (
        "faces-attr" in str(meta) and "celeba" not in str(meta)
    )


# ---------------------------------------------------------------- folder errors
def _copy_model(saved, tmp_path: Path) -> Path:
    _, src = saved
    dst = tmp_path / "copy"
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _edit_config(path: Path, **changes) -> None:
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


def test_missing_folder(tmp_path) -> None:
    with pytest.raises(StarGANError, match="does not exist"):
        Translator.from_pretrained(tmp_path / "nope")


def test_folder_without_config(tmp_path) -> None:
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(StarGANError, match="no config.json.*export it first"):
        Translator.from_pretrained(tmp_path)


def test_run_folder_is_named_as_such(tiny_run) -> None:
    with pytest.raises(
        StarGANError, match=f"{tiny_run} is a training run.*stargan export {tiny_run}"
    ):
        Translator.from_pretrained(tiny_run)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_with_nan_or_inf_are_refused(saved, tmp_path, bad: float) -> None:
    from safetensors.torch import load_file, save_file

    path = _copy_model(saved, tmp_path)
    state = load_file(str(path / "model.safetensors"))
    name = sorted(k for k, v in state.items() if v.is_floating_point())[-1]
    state[name].view(-1)[0] = bad
    save_file(state, str(path / "model.safetensors"))
    word = "NaN" if bad != bad else "Inf"
    with pytest.raises(StarGANError, match=f"tensor '{name}' holds {word} values"):
        Translator.from_pretrained(path)


def test_unreadable_config(saved, tmp_path) -> None:
    path = _copy_model(saved, tmp_path)
    (path / "config.json").write_text("{oops")
    with pytest.raises(StarGANError, match="unreadable"):
        Translator.from_pretrained(path)


def test_config_of_another_kind(saved, tmp_path) -> None:
    path = _copy_model(saved, tmp_path)
    _edit_config(path, kind="stargan-v2")
    with pytest.raises(StarGANError, match="holds a 'stargan-v2' model, not a 'stargan-v1'"):
        Translator.from_pretrained(path)
    (path / "config.json").write_text("[1, 2]")  # valid JSON, not an object
    with pytest.raises(StarGANError, match="holds a None model"):
        Translator.from_pretrained(path)


def test_newer_format_version(saved, tmp_path) -> None:
    path = _copy_model(saved, tmp_path)
    _edit_config(path, format_version=FORMAT_VERSION + 1)
    with pytest.raises(StarGANError, match="newer than this stargan supports"):
        Translator.from_pretrained(path)


def test_config_lacking_labels(saved, tmp_path) -> None:
    path = _copy_model(saved, tmp_path)
    config = json.loads((path / "config.json").read_text())
    del config["labels"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(StarGANError, match="lacks 'labels'"):
        Translator.from_pretrained(path)


def test_missing_weights(saved, tmp_path) -> None:
    path = _copy_model(saved, tmp_path)
    (path / "model.safetensors").unlink()
    with pytest.raises(StarGANError, match="model.safetensors is missing"):
        Translator.from_pretrained(path)


def test_corrupt_weights(saved, tmp_path) -> None:
    path = _copy_model(saved, tmp_path)
    (path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(StarGANError, match="does not hold this model's weights"):
        Translator.from_pretrained(path)
    truncated = (saved[1] / "discriminator.safetensors").read_bytes()[:200]
    (path / "model.safetensors").write_bytes((saved[1] / "model.safetensors").read_bytes())
    (path / "discriminator.safetensors").write_bytes(truncated)
    with pytest.raises(StarGANError, match="discriminator.safetensors does not hold"):
        Translator.from_pretrained(path)


def test_weights_of_another_shape(saved, tmp_path) -> None:
    path = _copy_model(saved, tmp_path)
    other = ModelConfig(
        image_size=16, c_dim=3, g_conv_dim=4, g_repeat_num=1, d_conv_dim=8, d_repeat_num=2
    )
    other_dir = _translator(cfg=other).save_pretrained(tmp_path / "other")
    (path / "model.safetensors").write_bytes((other_dir / "model.safetensors").read_bytes())
    with pytest.raises(StarGANError, match="does not hold this model's weights"):
        Translator.from_pretrained(path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": {"image_size": 16, "no_such_field": 1}}, "unknown keys"),
        ({"model": [16, 3]}, "expected an object"),
        ({"labels": {"names": ["a", "b", "c"]}}, "malformed labels"),  # no kind / groups
        ({"labels": {"names": "abc", "kind": "multi", "exclusive_groups": []}}, "malformed labels"),
    ],
)
def test_malformed_model_or_labels_entry(saved, tmp_path, changes: dict, message: str) -> None:
    path = _copy_model(saved, tmp_path)
    _edit_config(path, **changes)
    with pytest.raises(StarGANError, match=message):
        Translator.from_pretrained(path)


@pytest.mark.parametrize("version", ["1", None, 1.5])
def test_format_version_must_be_an_integer(saved, tmp_path, version) -> None:
    path = _copy_model(saved, tmp_path)
    _edit_config(path, format_version=version)
    with pytest.raises(StarGANError, match="format_version must be an integer"):
        Translator.from_pretrained(path)


# ---------------------------------------------------------------- resize filter
def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8))


def test_photos_are_resized_with_the_models_recorded_filter(saved, tmp_path) -> None:
    tr, _ = saved  # META has no resize_filter: a folder from before the key (bicubic data)
    path = _copy_model(saved, tmp_path)
    _edit_config(path, resize_filter="bilinear")
    bilinear = Translator.from_pretrained(path)
    assert (tr.resize_filter, bilinear.resize_filter) == ("bicubic", "bilinear")
    photo = _noise(40, 24)  # centre square: x 8-32
    square = photo.crop((8, 0, 32, 24))
    for model, resample in ((tr, Image.BICUBIC), (bilinear, Image.BILINEAR)):
        expected = np.asarray(square.resize((16, 16), resample))
        got = to_uint8(model.preprocess(photo))[0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(got, expected)
    again = Translator.from_pretrained(bilinear.save_pretrained(tmp_path / "again"))
    assert again.resize_filter == "bilinear"


def test_export_sidecar_names_the_models_filter(saved, tmp_path) -> None:
    from stargan.export_formats import describe

    path = _copy_model(saved, tmp_path)
    _edit_config(path, resize_filter="bilinear")
    tr = Translator.from_pretrained(path)
    pre = describe(tr, path, tmp_path / "m.onnx", "onnx")["preprocessing"]
    assert pre["resize_filter"] == "bilinear"
    assert pre["interpolation"].startswith("bilinear (PIL Image.BILINEAR")
    pre = describe(saved[0], saved[1], tmp_path / "m.onnx", "onnx")["preprocessing"]
    assert pre["resize_filter"] == "bicubic"
    assert pre["interpolation"].startswith("bicubic (PIL Image.BICUBIC")


def test_unknown_resize_filter_in_a_folder_is_refused(saved, tmp_path) -> None:
    path = _copy_model(saved, tmp_path)
    _edit_config(path, resize_filter="lanczos")
    with pytest.raises(
        StarGANError, match=r"config.json: resize_filter must be one of bicubic, bilinear"
    ):
        Translator.from_pretrained(path)
    tr, _ = saved
    with pytest.raises(StarGANError, match="resize_filter must be one of"):
        Translator(tr.G, CFG, SPEC, None, {"resize_filter": 3})


def test_export_records_the_datas_resize_filter() -> None:
    from stargan.export import _meta
    from stargan.presets import get_preset
    from stargan.train.checkpoint import TrainState

    state = TrainState(step=5, g_updates=1)
    joint = _meta(get_preset("celeba-rafd-v1"), state, Path("ckpt"))
    assert joint["resize_filter"] == "bilinear"
    assert [s["resize_filter"] for s in joint["sources"]] == ["bilinear", "bilinear"]
    assert [s["data"]["resize_filter"] for s in joint["sources"]] == ["bilinear", "bilinear"]
    assert _meta(get_preset("tiny"), state, Path("ckpt"))["resize_filter"] == "bicubic"


# ---------------------------------------------------------------- images.py
def _colours(im: Image.Image) -> set[tuple[int, ...]]:
    return {tuple(int(v) for v in px) for px in np.asarray(im).reshape(-1, 3)}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.new("L", (3, 2), 77), (77, 77, 77)),
        (Image.new("RGBA", (3, 2), (10, 20, 30, 255)), (10, 20, 30)),
        (Image.new("RGBA", (3, 2), (10, 20, 30, 0)), (255, 255, 255)),  # onto white
        (Image.new("CMYK", (3, 2), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.new("CMYK", (3, 2), (255, 0, 0, 0)), (0, 255, 255)),  # cyan
        (Image.new("LA", (3, 2), (50, 0)), (255, 255, 255)),
    ],
)
def test_to_rgb_modes(image: Image.Image, expected: tuple[int, int, int]) -> None:
    out = to_rgb(image)
    assert out.mode == "RGB" and out.size == (3, 2)
    assert _colours(out) == {expected}


def test_to_rgb_palette() -> None:
    im = Image.new("P", (2, 2), 1)
    im.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    assert _colours(to_rgb(im)) == {(200, 100, 50)}
    im.info["transparency"] = 1  # transparent palette entry -> white background
    assert _colours(to_rgb(im)) == {(255, 255, 255)}


def test_to_rgb_16_bit_is_scaled_to_8_bit() -> None:
    im = Image.fromarray(np.array([[0, 1000], [2000, 2000]], np.uint16))
    assert im.mode == "I;16"
    out = to_rgb(im)
    assert out.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(out)[..., 0], [[0, 127], [255, 255]])
    assert (np.asarray(out) == np.asarray(out)[..., :1]).all()  # grey


def test_load_rgb_png_with_alpha(tmp_path) -> None:
    p = tmp_path / "a.png"
    Image.new("RGBA", (4, 4), (0, 0, 255, 0)).save(p)
    im = load_rgb(p)
    assert im.mode == "RGB" and _colours(im) == {(255, 255, 255)}


def test_load_rgb_errors(tmp_path) -> None:
    good = tmp_path / "good.jpg"
    Image.fromarray(_images(1)[0]).resize((64, 64)).save(good, quality=90)
    assert load_rgb(good).size == (64, 64)

    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(StarGANError, match="truncated.jpg: not a readable image"):
        load_rgb(truncated)

    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all")
    with pytest.raises(StarGANError, match="garbage.png: not a readable image"):
        load_rgb(garbage)

    with pytest.raises(StarGANError, match="no such file"):
        load_rgb(tmp_path / "missing.png")


def test_center_crop_resize() -> None:
    # 30 wide x 50 tall: green bands of 10 rows above and below a red 30x30 centre.
    arr = np.zeros((50, 30, 3), np.uint8)
    arr[:, :, 1] = 255
    arr[10:40, :, :] = (255, 0, 0)
    im = Image.fromarray(arr)
    square = center_crop_resize(im, 30)  # largest centred square, no resize
    assert square.size == (30, 30) and _colours(square) == {(255, 0, 0)}
    small = center_crop_resize(im, 16)
    assert small.size == (16, 16)
    assert np.abs(np.asarray(small).astype(int) - (255, 0, 0)).max() <= 2
    cropped = center_crop_resize(im, 8, crop=20)
    assert cropped.size == (8, 8)
    # crop larger than the image is limited to the image's short side
    assert center_crop_resize(im, 12, crop=500).size == (12, 12)
    with pytest.raises(StarGANError, match=r"bicubic, bilinear \(got 'nearest'\)"):
        center_crop_resize(im, 16, resize_filter="nearest")


def test_make_grid() -> None:
    images = torch.arange(5, dtype=torch.uint8)[:, None, None, None].expand(5, 3, 4, 6) * 10
    grid = make_grid(images, nrow=3, padding=2)
    assert grid.shape == (2 * (4 + 2) + 2, 3 * (6 + 2) + 2, 3) and grid.dtype == np.uint8
    for i in range(5):
        r, c = divmod(i, 3)
        y, x = 2 + r * 6, 2 + c * 8
        assert (grid[y : y + 4, x : x + 6] == i * 10).all()
    assert (grid[:2] == 255).all() and (grid[:, :2] == 255).all()  # padding is white
    assert (grid[8:12, 18:24] == 255).all()  # the unused sixth cell stays white


def test_model_files_follow_the_umask(saved, tmp_path) -> None:
    import os

    old = os.umask(0o022)
    try:
        out = saved[0].save_pretrained(tmp_path / "copy")
    finally:
        os.umask(old)
    assert (out / "model.safetensors").stat().st_mode & 0o777 == 0o644  # readable by others
