"""FAN (face landmark network of StarGAN v2's CelebA-HQ model): official size and key names,
the official mask recipe on a hand-computable case, masks fed to a w_hpf = 1 generator,
wing.ckpt round trip and the loader's errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from stargan.errors import StarGANError
from stargan.models import count_parameters
from stargan.models.fan import FAN, NUM_LANDMARKS, load_fan, masks_from_heatmaps
from stargan.models.v2 import build_v2

IMG = 64  # images given to get_heatmap (resized to 256 inside, as the official)


# ---------------------------------------------------------------- official size and names
def _conv_block_params(a: int, b: int) -> int:
    """Parameters of the official ConvBlock(a, b) (core/wing.py): BN(a), conv3x3 a->b/2,
    BN(b/2), conv3x3 b/2->b/4, BN(b/4), conv3x3 b/4->b/4 (no biases), and when a != b a
    BN(a)-ReLU-conv1x1 a->b shortcut."""
    bn = 2 * a + 2 * (b // 2) + 2 * (b // 4)
    convs = 9 * (a * (b // 2) + (b // 2) * (b // 4) + (b // 4) ** 2)
    return bn + convs + (2 * a + a * b if a != b else 0)


# The official FAN(num_modules=1, num_landmarks=98): CoordConv 7x7 (3 + 3 coord channels
# -> 64), BN(64), ConvBlocks 64->128, 128->128, 128->256, an hourglass of depth 4 (a 1x1
# CoordConv 259->256 and 3 blocks per level + 1 at the bottom = 13 blocks), top_m_0, 1x1
# conv_last0, BN(256), 1x1 l0 to 99 maps. Summed from the official constructor; the same
# number, 6_333_603, came out of the official network classes (core/wing.py's FAN and its
# layers, run outside this repo with only its unused cv2/skimage/munch imports stubbed)
# when this file was written, with identical state_dict keys, shapes and key order.
OFFICIAL_FAN_PARAMS = (
    (6 * 64 * 49 + 64)
    + 2 * 64
    + _conv_block_params(64, 128)
    + _conv_block_params(128, 128)
    + _conv_block_params(128, 256)
    + (259 * 256 + 256)
    + 13 * _conv_block_params(256, 256)
    + _conv_block_params(256, 256)
    + (256 * 256 + 256)
    + 2 * 256
    + (256 * 99 + 99)
)


def test_official_parameter_count_on_meta_device() -> None:
    with torch.device("meta"):
        fan = FAN()
    assert OFFICIAL_FAN_PARAMS == 6_333_603
    assert count_parameters(fan) == OFFICIAL_FAN_PARAMS
    assert next(fan.parameters()).is_meta


def test_state_dict_keys_are_the_official_ones() -> None:
    with torch.device("meta"):
        state = FAN().state_dict()
    assert len(state) == 336  # as the official FAN's state_dict()
    for key in (
        "conv1.conv.weight",  # CoordConv: its conv sees 3 + 3 coordinate channels
        "conv2.downsample.2.weight",
        "m0.coordconv.conv.weight",
        "m0.b1_4.bn1.running_var",
        "m0.b2_plus_1.conv3.weight",
        "m0.b3_1.bn3.num_batches_tracked",
        "top_m_0.conv1.weight",
        "conv_last0.bias",
        "bn_end0.running_mean",
        "l0.weight",
    ):
        assert key in state, key
    assert state["conv1.conv.weight"].shape == (64, 6, 7, 7)
    assert state["m0.coordconv.conv.weight"].shape == (256, 259, 1, 1)
    assert state["l0.weight"].shape == (NUM_LANDMARKS + 1, 256, 1, 1)
    assert not any("coords" in key for key in state)  # fixed, not saved (as the official)


def test_forward_needs_256_px() -> None:
    with pytest.raises(StarGANError, match=r"\(256, 256\)"):
        FAN().eval()(torch.zeros(1, 3, 128, 128))


# ---------------------------------------------------------------- the mask recipe
def test_masks_from_heatmaps_follow_the_official_recipe() -> None:
    """One blob per landmark group, checked against the official ``preprocess`` by hand:
    truncation below 0.1, per-channel min-max, the vertical shifts (rows move up for a
    positive shift, wrapping) and powers, the dropped points, the inner mask, the clamp."""
    hm = torch.zeros(1, NUM_LANDMARKS, 256, 256)
    face = torch.zeros(256, 256)
    inner = torch.zeros(256, 256)

    def put(channel: int, row: int, col: int, value: float) -> None:
        hm[0, channel, row, col] = value

    # eyebrow: down 7, squared; 0.05 is below the truncation; not in the inner mask
    put(40, 100, 10, 1.0), put(40, 100, 20, 0.5), put(40, 150, 10, 0.05)
    face[107, 10], face[107, 20] = 1.0, 0.25
    # nostril: up 8, 4th power, normalised by its channel max 0.8
    put(57, 100, 30, 0.8), put(57, 100, 40, 0.4)
    face[92, 30] = inner[92, 30] = 1.0
    face[92, 40] = inner[92, 40] = 0.5**4
    put(58, 3, 170, 1.0)  # up 8 from row 3 wraps around to row 251
    face[251, 170] = inner[251, 170] = 1.0
    # eye: (moved down 8) ** 3 + (moved down 24)
    put(65, 100, 50, 1.0)
    face[108, 50] = inner[108, 50] = face[124, 50] = inner[124, 50] = 1.0
    # nose bridge: top point kept in place, the others up 4
    put(51, 100, 70, 1.0), put(53, 100, 60, 1.0)
    face[100, 70] = inner[100, 70] = face[96, 60] = inner[96, 60] = 1.0
    # lower face contour: cubed, not moved, face mask only
    put(10, 100, 110, 1.0), put(10, 100, 120, 0.5)
    face[100, 110], face[100, 120] = 1.0, 0.125
    # lips: upper down 8, lower up 8, inner down 2; face mask only
    put(78, 100, 130, 1.0), put(85, 100, 140, 1.0), put(90, 100, 150, 1.0)
    face[108, 130] = face[92, 140] = face[102, 150] = 1.0
    # dropped: upper contour (0-7, 25-32), eyebrow points 33 and 46, mouth corners 76, 82
    for channel in (0, 7, 25, 32, 33, 46, 76, 82):
        put(channel, 180, 10 + channel, 1.0)
    # pupils: unchanged; their overlap sums to 2, clamped to 1
    put(96, 200, 200, 1.0), put(97, 200, 200, 1.0), put(96, 210, 20, 0.5)
    face[200, 200] = inner[200, 200] = 1.0
    face[210, 20] = inner[210, 20] = 0.5  # normalised by the channel max 1

    got_face, got_inner = masks_from_heatmaps(hm)
    assert got_face.shape == got_inner.shape == (1, 1, 256, 256)
    torch.testing.assert_close(got_face[0, 0], face, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_inner[0, 0], inner, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(1, 68, 256, 256), (1, 98, 64, 64), (98, 256, 256)])
def test_masks_from_heatmaps_checks_the_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(StarGANError, match=r"\[N, 98, 256, 256\]"):
        masks_from_heatmaps(torch.zeros(shape))


# ---------------------------------------------------------------- get_heatmap, generator
def _random_fan(seed: int = 0) -> FAN:
    """A FAN with random weights whose heatmaps are peaky enough for masks that are neither
    empty nor saturated: at default init every heatmap is nearly flat, so after the
    per-channel min-max the ~60 summed channels cover the whole image. BatchNorm running
    statistics are random too, so a loader that dropped buffers would be caught."""
    torch.manual_seed(seed)
    fan = FAN()
    with torch.no_grad():
        for module in fan.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        fan.l0.weight.mul_(20)
        fan.l0.bias.fill_(-4.0)
    return fan.eval()


@pytest.fixture(scope="module")
def fan_case(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A random FAN saved in the official wing.ckpt layout, two images and their masks."""
    fan = _random_fan()
    ckpt = tmp_path_factory.mktemp("fan") / "wing.ckpt"
    torch.save({"state_dict": fan.state_dict()}, ckpt)
    x = torch.rand(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(1)) * 2 - 1
    x.requires_grad_(True)
    return {"fan": fan, "ckpt": ckpt, "x": x, "masks": fan.get_heatmap(x)}


def test_heatmaps_are_what_the_generator_expects(fan_case: dict) -> None:
    masks = fan_case["masks"]
    assert isinstance(masks, list) and len(masks) == 2
    face, inner = masks
    for mask in masks:
        assert mask.shape == (2, 1, 256, 256)
        assert mask.min() >= 0 and mask.max() <= 1
        assert not mask.requires_grad  # computed under no_grad, though x requires grad
    # the inner mask sums a subset of the face mask's channels
    assert torch.all(inner <= face)
    # neither empty nor saturated (a test of the fixture's sharpened weights), and
    # different for the two images
    assert 0.3 < face.mean() < 0.95 and 0.1 < inner.mean() < 0.9
    assert not torch.equal(face[0], face[1])


def test_masks_drive_a_w_hpf_generator(fan_case: dict) -> None:
    torch.manual_seed(0)
    g = build_v2(img_size=IMG, num_domains=2, w_hpf=1, base_dim=8, mapping_dim=16)["G"]
    x = fan_case["x"].detach()
    s = torch.randn(2, 64)
    with torch.no_grad():
        out = g(x, s, fan_case["masks"])
        no_masks = g(x, s, [torch.zeros_like(m) for m in fan_case["masks"]])
    assert out.shape == (2, 3, IMG, IMG)
    assert torch.isfinite(out).all()
    assert not torch.allclose(out, no_masks)  # the high-pass skips went through the masks


def test_get_heatmap_refuses_train_mode() -> None:
    with pytest.raises(RuntimeError, match="eval"):
        FAN().get_heatmap(torch.zeros(1, 3, 256, 256))


# ---------------------------------------------------------------- loading
def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_wing_ckpt_round_trip_gives_identical_heatmaps(fan_case: dict) -> None:
    fan = load_fan(fan_case["ckpt"])
    assert _same_state(fan, fan_case["fan"])
    assert not fan.training
    assert not any(p.requires_grad for p in fan.parameters())
    masks = fan.get_heatmap(fan_case["x"])
    assert torch.equal(masks[0], fan_case["masks"][0])
    assert torch.equal(masks[1], fan_case["masks"][1])


def test_loads_like_the_official_loader(fan_case: dict, tmp_path: Path) -> None:
    """Extra keys (other hourglasses, training state) are ignored as by the official
    ``load_pretrained_weights``; BatchNorm counters may be missing; a DataParallel
    ``module.`` prefix is removed."""
    state = fan_case["fan"].state_dict()
    kept = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    extra = {"m1.b1_4.bn1.weight": torch.ones(256), "bl0.weight": torch.zeros(3, 3)}
    path = tmp_path / "wing.ckpt"
    torch.save({"state_dict": {**kept, **extra}, "epoch": 7, "best": 0.5}, path)
    assert _same_state(load_fan(path), fan_case["fan"])
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    assert _same_state(load_fan(path), fan_case["fan"])


def test_loads_safetensors(fan_case: dict, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "wing.safetensors"
    save_file(fan_case["fan"].state_dict(), str(path))
    assert _same_state(load_fan(path), fan_case["fan"])


def test_missing_file_says_it_cannot_be_downloaded(tmp_path: Path) -> None:
    with pytest.raises(StarGANError) as err:
        load_fan(tmp_path / "wing.ckpt")
    message = str(err.value)
    assert "wing.ckpt" in message and "not found" in message
    assert "cannot be downloaded here" in message
    assert "w_hpf 0" in message
    with pytest.raises(StarGANError, match="not a file"):
        load_fan(tmp_path)


class _NotATensor:
    pass


def test_unreadable_or_foreign_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00not a checkpoint at all" * 10)
    with pytest.raises(StarGANError, match="readable without running code"):
        load_fan(garbage)

    pickled_object = tmp_path / "object.ckpt"  # needs a class: never unpickled
    torch.save({"state_dict": _NotATensor()}, pickled_object)
    with pytest.raises(StarGANError, match="readable without running code"):
        load_fan(pickled_object)

    not_a_state = tmp_path / "list.ckpt"
    torch.save([torch.zeros(1)], not_a_state)
    with pytest.raises(StarGANError, match="no state dict"):
        load_fan(not_a_state)

    foreign = tmp_path / "generator.ckpt"
    torch.save({"state_dict": {"from_rgb.weight": torch.zeros(1)}}, foreign)
    with pytest.raises(StarGANError, match="holds no FAN weights"):
        load_fan(foreign)

    bad_safetensors = tmp_path / "wing.safetensors"
    bad_safetensors.write_bytes(b"\xff" * 64)
    with pytest.raises(StarGANError, match="not a readable safetensors file"):
        load_fan(bad_safetensors)


def test_missing_or_misshapen_weights_are_refused(tmp_path: Path) -> None:
    with torch.device("meta"):
        state = FAN().state_dict()
    state = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in state.items()}

    path = tmp_path / "missing.ckpt"
    torch.save({"state_dict": {k: v for k, v in state.items() if k != "l0.weight"}}, path)
    with pytest.raises(StarGANError, match=r"lacks 1 FAN weights, e\.g\. l0\.weight"):
        load_fan(path)

    path = tmp_path / "68-landmarks.ckpt"  # a FAN trained for 68 points: l0 of 69 maps
    state["l0.weight"], state["l0.bias"] = torch.zeros(69, 256, 1, 1), torch.zeros(69)
    torch.save({"state_dict": state}, path)
    with pytest.raises(StarGANError, match=r"wrong shape: l0\.weight \(69, 256, 1, 1\)"):
        load_fan(path)
