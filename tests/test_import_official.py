"""import_official: official yunjey/stargan checkpoints -> model folder.

The reference networks below rebuild the official module layout (``self.main``
Sequentials, instance norms with running statistics, D heads ``conv1``/``conv2``) at a
tiny size, so the test writes files with the official key names and shapes.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

import stargan
from stargan.errors import StarGANError
from stargan.import_official import import_official, read_official_state
from stargan.translate import Translator

CONV, REPEAT, C, SIZE, D_REPEAT = 8, 2, 3, 16, 2
ATTRS = ["Black_Hair", "Blond_Hair", "Male"]


def _norm(ch: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(ch, affine=True, track_running_stats=True)


class OfficialResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(ch, ch, 3, 1, 1, bias=False),
            _norm(ch),
            nn.ReLU(),
            nn.Conv2d(ch, ch, 3, 1, 1, bias=False),
            _norm(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class OfficialG(nn.Module):
    """The official generator's layout: keys main.0 ... main.{9 + repeat + 7}."""

    def __init__(self, conv_dim: int, c_dim: int, repeat_num: int) -> None:
        super().__init__()
        ch = conv_dim
        seq: list[nn.Module] = [nn.Conv2d(3 + c_dim, ch, 7, 1, 3, bias=False), _norm(ch), nn.ReLU()]
        for _ in range(2):
            seq += [nn.Conv2d(ch, 2 * ch, 4, 2, 1, bias=False), _norm(2 * ch), nn.ReLU()]
            ch *= 2
        seq += [OfficialResBlock(ch) for _ in range(repeat_num)]
        for _ in range(2):
            seq += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), _norm(ch // 2), nn.ReLU()]
            ch //= 2
        seq += [nn.Conv2d(ch, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c_map = c[:, :, None, None].repeat(1, 1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c_map], 1))


class OfficialD(nn.Module):
    def __init__(self, image_size: int, conv_dim: int, c_dim: int, repeat_num: int) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        ch = conv_dim
        for _ in range(1, repeat_num):
            seq += [nn.Conv2d(ch, 2 * ch, 4, 2, 1), nn.LeakyReLU(0.01)]
            ch *= 2
        self.main = nn.Sequential(*seq)
        self.conv1 = nn.Conv2d(ch, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(ch, c_dim, image_size // 2**repeat_num, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.conv1(h), self.conv2(h).flatten(1)


def _randomise(net: nn.Module) -> nn.Module:
    """Non-trivial affine parameters and running statistics (which must not be used)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.5)
                m.running_mean.normal_(0, 2)
                m.running_var.uniform_(0.1, 5)
                m.num_batches_tracked.fill_(200000)
    return net


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> dict:
    torch.manual_seed(0)
    G = _randomise(OfficialG(CONV, C, REPEAT)).train()
    D = OfficialD(SIZE, CONV, C, D_REPEAT).train()
    folder = tmp_path_factory.mktemp("official")
    torch.save(G.state_dict(), folder / "200000-G.ckpt")
    torch.save(D.state_dict(), folder / "200000-D.ckpt")
    x = torch.rand(4, 3, SIZE, SIZE) * 2 - 1
    c = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float32)
    return {"G": G, "D": D, "dir": folder, "x": x, "c": c}


def _outputs(official: dict) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():  # train mode, as the official Solver.test: per-image statistics
        return (official["G"](official["x"], official["c"]), *official["D"](official["x"]))


def test_converted_g_and_d_match_official_outputs(official: dict, tmp_path: Path) -> None:
    g_path, d_path = official["dir"] / "200000-G.ckpt", official["dir"] / "200000-D.ckpt"
    out = import_official(g_path, tmp_path / "model", ATTRS, SIZE, d_path=d_path)
    tr = stargan.load(out)
    y_ref, src_ref, cls_ref = _outputs(official)
    x, c = official["x"], official["c"]
    with torch.no_grad():
        y = tr.G(x, c)
        src, cls = tr.D(x)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(src, src_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(cls, cls_ref, atol=1e-5, rtol=0)
    # The running statistics really differ from per-image ones: had they been used, the
    # outputs would not match (so the comparison above can fail).
    with torch.no_grad():
        y_eval = official["G"].eval()(x, c)
    official["G"].train()
    assert (y_eval - y_ref).abs().max() > 1e-2

    # Through the public API: a target string, unnamed attributes from c_org.
    y_str = tr.translate(x, "Blond_Hair=1", c_org=c)
    c_blond = c.clone()
    c_blond[:, :2] = torch.tensor([0.0, 1.0])  # hair colours are exclusive
    torch.testing.assert_close(y_str, _outputs({**official, "c": c_blond})[0], atol=1e-5, rtol=0)

    m = tr.model_cfg
    assert (m.image_size, m.c_dim, m.g_conv_dim, m.g_repeat_num) == (SIZE, C, CONV, REPEAT)
    assert (m.d_conv_dim, m.d_repeat_num) == (CONV, D_REPEAT)
    assert tr.spec.names == tuple(ATTRS) and tr.spec.kind == "multi"
    assert tr.spec.exclusive_groups == (("Black_Hair", "Blond_Hair"),)
    assert tr.crop == 178 and tr.meta["step"] == 200000
    # scored on the official code's own test images, not on its training set
    assert tr.meta["sources"][0]["data"]["test_split"] == "official-code"
    digest = hashlib.sha256(g_path.read_bytes()).hexdigest()
    assert tr.meta["imported"]["generator"] == {"file": "200000-G.ckpt", "sha256": digest}
    assert tr.meta["imported"]["discriminator"]["file"] == "200000-D.ckpt"
    assert json.loads((out / "config.json").read_text())["kind"] == "stargan-v1"


def test_imported_model_resizes_bilinear_as_the_official_loader(
    official: dict, tmp_path: Path
) -> None:
    """The official loader resizes with torchvision's Resize (Pillow's bilinear) after its
    CenterCrop(178): photos given to translate, and the data eval loads (the recorded
    source config, as test_split=official-code), are resized so too."""
    from stargan.data.dataset import to_uint8
    from stargan.evaluate.metrics import source_configs
    from stargan.translate_files import _load

    out = import_official(official["dir"] / "200000-G.ckpt", tmp_path / "m", ATTRS, SIZE)
    assert json.loads((out / "config.json").read_text())["resize_filter"] == "bilinear"
    tr = stargan.load(out)
    assert tr.resize_filter == "bilinear"
    (data,) = source_configs(tr)
    assert (data.resize_filter, data.test_split, data.crop) == ("bilinear", "official-code", 178)
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8))
    photo.save(tmp_path / "photo.png")
    official_input = np.asarray(photo.crop((0, 20, 178, 198)).resize((SIZE, SIZE), Image.BILINEAR))
    x = tr.preprocess(photo)  # [1, 3, S, S] in [-1, 1]
    np.testing.assert_array_equal(to_uint8(x)[0].permute(1, 2, 0).numpy(), official_input)
    (item,) = _load(tmp_path / "photo.png", tr, None)  # stargan translate's input
    np.testing.assert_array_equal(np.asarray(item.image), official_input)
    bicubic = np.asarray(photo.crop((0, 20, 178, 198)).resize((SIZE, SIZE), Image.BICUBIC))
    assert not np.array_equal(bicubic, official_input)  # so the test can fail


def test_safetensors_legacy_pickle_and_categorical(official: dict, tmp_path: Path) -> None:
    """Key order does not matter (safetensors sorts: main.10 before main.2); the pre-1.6
    pickle format reads too; RaFD-style models get one-hot labels and crop 256."""
    state = official["G"].state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "G.safetensors"))
    torch.save(state, tmp_path / "G.pth", _use_new_zipfile_serialization=False)
    y_ref = _outputs(official)[0]
    for name in ("G.safetensors", "G.pth"):
        out = import_official(
            tmp_path / name, tmp_path / name.replace(".", "-"), ["a", "b", "c"], SIZE,
            categorical=True,
        )  # fmt: skip
        tr = Translator.from_pretrained(out)
        with torch.no_grad():
            torch.testing.assert_close(tr.G(official["x"], official["c"]), y_ref, atol=1e-5, rtol=0)
        assert tr.spec.kind == "categorical" and tr.spec.exclusive_groups == ()
        assert tr.crop == 256 and tr.D is None and "step" not in tr.meta


def _refusal(tmp_path: Path, case: str, official: dict) -> tuple[Path, list[str], str]:
    """(G file, attrs, text the message must contain) for each refused input."""
    path = tmp_path / "G.ckpt"
    state = dict(official["G"].state_dict())
    if case == "module":
        torch.save(official["G"], path)
        return path, ATTRS, "OfficialG"
    if case == "non-tensor":
        torch.save({**state, "main.0.step": 3}, path)
        return path, ATTRS, "'main.0.step' holds a value of type int"
    if case == "nested":
        torch.save({"G": state, "optimizer": {"lr": 1e-4}}, path)
        return path, ATTRS, "'G' holds a value of type dict"
    if case == "attrs":
        torch.save(state, path)
        return path, ATTRS[:2], "takes 3 labels"
    if case == "missing-key":
        del state["main.1.bias"]
        torch.save(state, path)
        return path, ATTRS, "lacks main.1.bias"
    if case == "extra-key":
        torch.save({**state, "main.3.running_mean": torch.zeros(16)}, path)
        return path, ATTRS, "at main.3"
    if case == "foreign-key":
        torch.save({**state, "mapping.0.weight": torch.zeros(1)}, path)
        return path, ATTRS, "unexpected key 'mapping.0.weight'"
    if case == "shape":
        torch.save({**state, "main.4.weight": torch.zeros(8)}, path)
        return path, ATTRS, "main.4"
    if case == "d-file":
        torch.save(official["D"].state_dict(), path)
        return path, ATTRS, "(a discriminator file?)"
    if case == "empty":
        torch.save({}, path)
        return path, ATTRS, "empty state dict"
    if case == "garbage":
        path.write_bytes(b"not a checkpoint")
        return path, ATTRS, "not a plain PyTorch state dict: unreadable (UnpicklingError"
    assert case == "no-file"
    return path, ATTRS, "does not exist"


CASES = [
    "module",
    "non-tensor",
    "nested",
    "attrs",
    "missing-key",
    "extra-key",
    "foreign-key",
    "shape",
    "d-file",
    "empty",
    "garbage",
    "no-file",
]

FILE_CASES = {"module", "non-tensor", "nested", "empty", "garbage", "no-file"}


@pytest.mark.parametrize("case", CASES)
def test_refused_with_one_line(case: str, official: dict, tmp_path: Path) -> None:
    path, attrs, expected = _refusal(tmp_path, case, official)
    with pytest.raises(StarGANError) as err:
        import_official(path, tmp_path / "model", attrs, SIZE)
    assert expected in str(err.value) and "\n" not in str(err.value)
    if case in FILE_CASES:  # refused while reading: the message names the file
        assert str(path) in str(err.value)
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    ("d_name", "size", "expected"),
    [("200000-D.ckpt", 32, "trained on 16 px images"), ("200000-G.ckpt", 16, "no conv1.* keys")],
)
def test_wrong_discriminator_is_refused(
    d_name: str, size: int, expected: str, official: dict, tmp_path: Path
) -> None:
    g_path, d_path = official["dir"] / "200000-G.ckpt", official["dir"] / d_name
    with pytest.raises(StarGANError, match=expected):
        import_official(g_path, tmp_path / "model", ATTRS, size, d_path=d_path)
    assert not (tmp_path / "model").exists()


class _Payload:
    """Pickles as a call to ``Path(marker).touch()``: code that runs on unpickling."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path(self.marker).touch, ())


def test_code_in_a_pickle_is_never_run(official: dict, tmp_path: Path) -> None:
    marker, path = tmp_path / "ran", tmp_path / "G.ckpt"
    torch.save({**official["G"].state_dict(), "main.0.weight": _Payload(marker)}, path)
    with pytest.raises(StarGANError, match="refused without running it"):
        read_official_state(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.exists()


def test_command_line_import_then_translate(official: dict, tmp_path: Path, monkeypatch, capsys):
    import sys

    import numpy as np
    from PIL import Image

    from stargan.cli import main

    def run(*args) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["stargan", *map(str, args)])
        with pytest.raises(SystemExit) as exit_info:
            main()
        return (exit_info.value.code, *capsys.readouterr())

    g_path, d_path = official["dir"] / "200000-G.ckpt", official["dir"] / "200000-D.ckpt"
    model = tmp_path / "model"
    code, out, err = run(
        "import-official", g_path, "--d", d_path, "--attrs", ",".join(ATTRS),
        "--image-size", SIZE, "-o", model,
    )  # fmt: skip
    assert code == 0 and f"model folder: {model}" in out, err
    face = tmp_path / "face.png"
    Image.fromarray(np.full((SIZE, SIZE, 3), 128, np.uint8)).save(face)
    code, _, err = run("translate", model, face, "--all-domains", "-o", tmp_path / "out", "--quiet")
    assert code == 0, err
    assert len(list((tmp_path / "out").glob("*.png"))) == len(ATTRS)
    code, _, err = run(
        "import-official", g_path, "--attrs", "A,B", "--image-size", SIZE, "-o", tmp_path / "x"
    )
    assert code == 2 and "2 attributes were given" in err and not (tmp_path / "x").exists()
