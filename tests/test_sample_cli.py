"""``stargan sample`` end to end on a tiny v2 model: files, grid sizes, seeds, references
by domain folder or by --domain, style interpolation, run folders, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan.errors import StarGANError
from stargan.images import make_grid
from stargan.sample_files import parse_seeds
from stargan.stylemodel import StyleModel
from test_cli import run_cli
from v2_helpers import SIZE, tiny_model, write_run

CELL = SIZE + 2  # make_grid's padding: 2 px between and around cells


def grid_size(rows: int, cols: int) -> tuple[int, int]:
    """(width, height) of a make_grid image."""
    return cols * CELL + 2, rows * CELL + 2


@pytest.fixture
def cli(capsys, monkeypatch):
    return lambda *args: run_cli([str(a) for a in args], capsys, monkeypatch)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_model().save_pretrained(tmp_path_factory.mktemp("sample") / "model")


def _pngs(folder: Path, n: int, seed: int = 0, size: int = 24) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(folder / f"im{i}.png")
    return folder


def test_latent_sampling_on_built_in_faces(cli, model_dir, tmp_path) -> None:
    out = tmp_path / "out"
    code, stdout, err = cli("sample", model_dir, "--seeds", "0-2", "-o", out)
    assert code == 0, err
    assert "wrote 24 image(s)" in stdout  # 4 built-in test faces x 2 domains x 3 seeds
    assert len(list((out / "latent" / "male").glob("*.png"))) == 12
    assert (out / "latent" / "female" / "test-0003_seed2.png").is_file()
    grid = Image.open(out / "latent_grid.png")
    assert grid.size == grid_size(4, 1 + 2 * 3)
    # each file is the model's output: test face 1, male, seed 2
    model = StyleModel.from_pretrained(model_dir)
    from stargan.data.faces import render_batch

    face = render_batch(0, "test", [1], SIZE)
    expected = model.latent(face, "male", seeds=[2])[0]
    assert np.array_equal(np.asarray(Image.open(out / "latent/male/test-0001_seed2.png")), expected)
    # and the grid's cell (row 1, column 1 + 1 * 3 + 2) is that image
    cell = np.asarray(grid)[1 * CELL + 2 : 2 * CELL, 6 * CELL + 2 : 7 * CELL]
    assert np.array_equal(cell, expected)


def test_one_domain_truncation_and_interpolation(cli, model_dir, tmp_path) -> None:
    inputs = _pngs(tmp_path / "faces", 3)
    out = tmp_path / "out"
    code, _, err = cli(
        "sample", model_dir, "--domain", "male", "--seeds", "5,9", "--psi", "0.5",
        "--inputs", inputs, "--interpolate", "--steps", "4", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in (out / "latent").iterdir()) == ["male"]
    assert Image.open(out / "latent_grid.png").size == grid_size(3, 1 + 2)
    strip = Image.open(out / "interpolation_male.png")
    assert strip.size == grid_size(3, 1 + 4)
    assert not (out / "interpolation_female.png").exists()
    # the strip's ends are the outputs of the two seeds' (truncated) styles
    arr = np.asarray(strip)
    first = arr[2 : 2 + SIZE, CELL + 2 : CELL + 2 + SIZE]
    last = arr[2 : 2 + SIZE, 4 * CELL + 2 : 4 * CELL + 2 + SIZE]
    im0 = np.asarray(Image.open(out / "latent/male/im0_seed5.png"))
    im9 = np.asarray(Image.open(out / "latent/male/im0_seed9.png"))
    assert np.array_equal(first, im0) and np.array_equal(last, im9)


def test_reference_guided_with_domain_folders_and_loose_images(cli, model_dir, tmp_path) -> None:
    inputs = _pngs(tmp_path / "src", 2)
    refs = tmp_path / "ref"
    _pngs(refs / "female", 2, seed=1)
    _pngs(refs / "male", 1, seed=2)
    out = tmp_path / "out"
    code, stdout, err = cli("sample", model_dir, "--inputs", inputs, "--ref", refs, "-o", out)
    assert code == 0, err
    assert "wrote 6 image(s)" in stdout
    assert Image.open(out / "reference_grid.png").size == grid_size(1 + 2, 1 + 3)
    got = np.asarray(Image.open(out / "reference" / "im1_male-im0.png"))
    model = StyleModel.from_pretrained(model_dir)
    src = Image.open(inputs / "im1.png")
    expected = model.reference(src, Image.open(refs / "male" / "im0.png"), "male")
    assert np.array_equal(got, np.asarray(expected))
    # --domain keeps one domain's folder; loose references need exactly one --domain
    out2 = tmp_path / "out2"
    code, stdout, _ = cli(
        "sample", model_dir, "--inputs", inputs, "--ref", refs, "--domain", "female", "-o", out2
    )
    assert code == 0 and "wrote 4 image(s)" in stdout
    code, _, err = cli("sample", model_dir, "--inputs", inputs, "--ref", refs / "male", "-o", out2)
    assert code == 2 and "say which domain" in err
    code, stdout, err = cli(
        "sample", model_dir, "--inputs", inputs, "--ref", refs / "male" / "im0.png",
        "--domain", "male", "-o", tmp_path / "out3",
    )  # fmt: skip
    assert code == 0 and (tmp_path / "out3" / "reference" / "im0_im0.png").is_file(), err


def test_a_run_folder_samples_with_its_running_averages(cli, tmp_path) -> None:
    nets = write_run(tmp_path / "run")
    out = tmp_path / "out"
    code, _, err = cli("sample", tmp_path / "run", "--seeds", "3", "--domain", "female", "-o", out)
    assert code == 0, err
    face = np.asarray(Image.open(out / "latent/female/test-0000_seed3.png"))
    from stargan.data.dataset import to_model_range, to_uint8
    from stargan.data.faces import render_batch
    from stargan.synthesis import latents

    x = to_model_range(torch.from_numpy(render_batch(0, "test", [0], SIZE)).permute(0, 3, 1, 2))
    with torch.no_grad():
        s = nets["F_ema"](latents([3], 4), torch.tensor([0]))
        expected = to_uint8(nets["G_ema"](x, s))[0].permute(1, 2, 0).numpy()
    assert np.array_equal(face, expected)


def test_precision_reaches_the_model_from_a_folder_and_a_run(cli, model_dir, tmp_path) -> None:
    from stargan.inference_precision import MIN_PSNR_DB, psnr_db
    from stargan.sample_files import load_model

    outputs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        code, _, err = cli("sample", model_dir, "--seeds", "2", "--precision", precision, "-o", out)
        assert code == 0, err
        image = np.array(Image.open(out / "latent/male/test-0001_seed2.png"))
        outputs[precision] = torch.from_numpy(image).float() / 127.5 - 1
    # bf16 did run (bf16 results depend on the batch the command makes, so not compared
    # pixel for pixel with a separate call), and stayed close to fp32
    assert not torch.equal(outputs["fp32"], outputs["bf16"])
    assert psnr_db(outputs["fp32"], outputs["bf16"]) > MIN_PSNR_DB
    write_run(tmp_path / "run")
    assert load_model(tmp_path / "run", precision="bf16").precision.resolved == "bf16"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--domain", "mael"], "unknown domain 'mael' (did you mean male"),
        (["--seeds", "7-3"], "bad seeds '7-3'"),
        (["--seeds", "a"], "bad seeds 'a'"),
        (["--interpolate", "--seeds", "1"], "--interpolate needs two seeds"),
        (["--inputs", "missing.png"], "missing.png: no such file"),
        (["--ref", "missing"], "--ref missing does not exist"),
        (["--psi", "2"], "Invalid value for '--psi'"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, model_dir, tmp_path, args, message) -> None:
    code, _, err = cli("sample", model_dir, *args, "-o", tmp_path / "out")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_bad_models(cli, tmp_path, model_dir) -> None:
    code, _, err = cli("sample", tmp_path / "nope", "-o", tmp_path / "out")
    assert code == 2 and "does not exist" in err
    imported = tiny_model(meta={"dataset": "folders", "crop": 0}).save_pretrained(tmp_path / "m")
    code, _, err = cli("sample", imported, "-o", tmp_path / "out")
    assert code == 2 and "give source images with --inputs" in err


def test_parse_seeds() -> None:
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,9") == [1, 5, 9]
    assert parse_seeds(" 0-2, 9 ,1") == [0, 1, 2, 9]
    with pytest.raises(StarGANError, match="at most 1000"):
        parse_seeds("0-5000")
    with pytest.raises(StarGANError, match="no seeds"):
        parse_seeds(",")


def test_grid_helper_size_matches_make_grid() -> None:
    cells = torch.zeros(6, 3, SIZE, SIZE, dtype=torch.uint8)
    h, w, _ = make_grid(cells, nrow=3).shape
    assert (w, h) == grid_size(2, 3)


# ---------------------------------------------------------------- --align
SAMPLE_FACE = Path(__file__).resolve().parents[1] / "src/stargan/bundled/celeba/samples/182650.jpg"
needs_cv2 = pytest.mark.skipif(
    __import__("importlib").util.find_spec("cv2") is None,
    reason="OpenCV not installed (pip install -e '.[dev]' brings it)",
)


def _photo(path: Path) -> Path:
    """A real CelebA test face (shipped with the bundled model) on a larger green canvas."""
    photo = Image.new("RGB", (500, 400), (90, 140, 60))
    with Image.open(SAMPLE_FACE) as face:
        photo.paste(face.convert("RGB").resize((222, 272), Image.BICUBIC), (140, 60))
    photo.save(path, quality=95)
    return path


@needs_cv2
def test_align_puts_the_face_in_celeba_hq_layout_and_pastes_back(cli, model_dir, tmp_path):
    from stargan import align

    path = _photo(tmp_path / "photo.jpg")
    with Image.open(path) as im:
        photo = im.convert("RGB")
    face = align.detect_faces(photo)[0]
    M = align.frame_transform(face, align.CELEBA_HQ)
    eyes = align.apply(M, np.array(face.eyes))
    np.testing.assert_allclose(eyes, align.TEMPLATE_EYES_HQ, atol=1e-6)
    out = tmp_path / "out"
    code, stdout, err = cli(
        "sample", model_dir, "--inputs", path, "--seeds", "0", "--domain", "male",
        "--align", "--paste-back", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    with Image.open(out / "latent" / "male" / "photo_seed0.png") as im:
        assert im.size == (500, 400)  # the whole photo
        result = np.asarray(im.convert("RGB"), np.int16)
    original = np.asarray(photo, np.int16)
    diff = np.abs(result - original).max(-1)
    assert diff[:, :40].max() == 0 and diff[:, -40:].max() == 0  # far outside the face
    assert diff[150:250, 200:300].mean() > 10  # the face: the tiny model's output
    # without --paste-back: the model-size face, as the model saw it (aligned)
    code, _, err = cli(
        "sample", model_dir, "--inputs", path, "--seeds", "0", "--domain", "male",
        "--align", "-o", tmp_path / "faces",
    )  # fmt: skip
    assert code == 0, err
    model = StyleModel.from_pretrained(model_dir)
    aligned = align.align_photo(photo, "photo", SIZE, 0, model.resize_filter, frame=align.CELEBA_HQ)
    expected = model.latent(aligned[0].image, "male", seeds=[0])
    got = Image.open(tmp_path / "faces" / "latent" / "male" / "photo_seed0.png")
    assert np.array_equal(np.asarray(got), np.asarray(expected))


@needs_cv2
def test_align_errors(cli, model_dir, tmp_path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), (128, 128, 128)).save(blank)
    code, _, err = cli("sample", model_dir, "--inputs", blank, "--align", "-o", tmp_path / "o")
    assert code == 2 and "no face found in" in err
    code, _, err = cli("sample", model_dir, "--paste-back", "-o", tmp_path / "o")
    assert code == 2 and "--paste-back needs --align" in err
    code, _, err = cli("sample", model_dir, "--align", "-o", tmp_path / "o")
    assert code == 2 and "--align needs photos" in err
