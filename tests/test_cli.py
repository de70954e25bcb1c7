"""End-to-end tests of every ``stargan`` command on tiny data, including bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stargan.cli import main


def run_cli(
    args: list[str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["stargan", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture
def cli(capsys, monkeypatch):
    return lambda *args: run_cli([str(a) for a in args], capsys, monkeypatch)


@pytest.fixture
def face_png(tmp_path: Path) -> Path:
    from stargan.data.faces import params_for, render

    path = tmp_path / "inputs" / "face.png"
    path.parent.mkdir()
    Image.fromarray(render(params_for(0, "test", 3), 48)).save(path)
    return path


def assert_one_line_error(code: int, err: str, text: str) -> None:
    assert code == 2
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and text in lines[0], err
    assert "Traceback" not in err


# ------------------------------------------------------------------ train
def test_train_dry_run_prints_config_and_data_summary(cli) -> None:
    code, out, _ = cli("train", "--preset", "tiny", "--dry-run", "--quiet")
    assert code == 0
    assert '"c_dim": 5' in out
    assert "faces-attr train: 64 images" in out and "faces-attr test: 16 images" in out
    assert "largest/smallest domain" in out  # the class-balance report


def test_train_dry_run_of_a_joint_preset_reports_every_dataset(cli) -> None:
    code, out, _ = cli("train", "--preset", "faces-joint-v1", "--dry-run", "--quiet")
    assert code == 0 and '"mask_dim": 2' in out
    for name in ("faces-attr train", "faces-attr test", "faces-expr train", "faces-expr test"):
        assert name in out


def test_on_bad_image_follows_a_dataset_changed_by_set(cli, tmp_path: Path) -> None:
    code, _, err = cli(
        "train", "--preset", "tiny", "--set", "data.dataset=folders", "--on-bad-image", "skip",
        "--data", tmp_path / "missing", "--dry-run", "--quiet",
    )  # fmt: skip
    assert_one_line_error(code, err, "missing")


def test_train_writes_numbered_run_folders_and_resumes(cli, tmp_path: Path) -> None:
    base = f"train --outdir {tmp_path} --quiet"
    code, out, _ = cli(
        *f"{base} --preset tiny --set train.num_iters=5 --set train.num_iters_decay=0".split()
    )
    assert code == 0 and "00001-tiny" in out
    code, out, _ = cli(*f"{base} --resume latest --set train.num_iters=10".split())
    assert code == 0 and "00001-tiny" in out
    stats = (tmp_path / "00001-tiny" / "stats.jsonl").read_text().splitlines()
    assert json.loads(stats[-1])["step"] == 10
    code, out, _ = cli(
        *f"{base} --preset tiny --set train.num_iters=2 --set train.num_iters_decay=1".split()
    )
    assert code == 0 and "00002-tiny" in out


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--set", "train.num_iter=5"], "unknown config key 'train.num_iter'"),
        (["--set", "train.num_iters=five"], "expects int"),
        (["--set", "model.image_size=18"], "multiple of"),
        (["--set", "data.attrs=Blond_Hiar"], "Blond_Hair"),
        (["--set", "model.image_size=512", "--set", "model.d_repeat_num=2"], "16 to 256 px"),
        (["--set", "train.device=cuda:99"], "train.device cuda:99"),
        (["--set", "train.device=tpu"], "train.device must be"),
    ],
)
def test_train_bad_config_is_one_line_error(cli, args, text) -> None:
    code, _, err = cli("train", "--preset", "tiny", "--dry-run", *args)
    assert_one_line_error(code, err, text)


def test_train_celeba_without_path_is_clear(cli, tmp_path: Path) -> None:
    code, _, err = cli("train", "--preset", "celeba-v1", "--dry-run", "--data", tmp_path / "x")
    assert_one_line_error(code, err, "does not exist")


# ------------------------------------------------------------------ export / translate
def test_export_writes_loadable_folder(cli, tiny_run: Path, tmp_path: Path) -> None:
    code, out, _ = cli("export", tiny_run, "-o", tmp_path / "m")
    assert code == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["format_version"] == 1 and config["kind"] == "stargan-v1"
    assert config["step"] == 10 and config["g_updates"] == 2
    assert (tmp_path / "m" / "model.safetensors").stat().st_size > 0


def test_translate_several_targets_and_all_combinations(cli, tiny_model, face_png, tmp_path):
    """Paper Fig. 4 as a command: --to repeated gives a column each, --all-combinations
    every pair of hair colour, sex and age and all three."""
    targets = ("--to", "Black_Hair=1,Male=1", "--to", "Blond_Hair=1,Young=0")
    code, _, _ = cli("translate", tiny_model, face_png, *targets, "--grid", "-o", tmp_path / "a")
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["face_Black_Hair=1,Male=1.png", "face_Blond_Hair=1,Young=0.png", "grid.png"]
    with Image.open(tmp_path / "a" / "grid.png") as im:
        assert im.size == (3 * 18 + 2, 18 + 2)
    code, _, _ = cli("translate", tiny_model, face_png, "--all-combinations", "-o", tmp_path / "b")
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert len(names) == 10 and "face_Black_Hair+Male+Young.png" in names
    assert "face_Male+Young.png" in names
    code, _, _ = cli(
        "translate",
        tiny_model,
        face_png,
        "--to",
        "Male=1",
        "--from",
        "Male=0",
        "-o",
        tmp_path / "c",
    )
    assert code == 0 and (tmp_path / "c" / "face_Male=1.png").exists()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--to", "Male=1", "--all-combinations"], "give exactly one of --to"),
        (["--to", "Male=1", "--to", "Male=1"], "the same --to is given twice"),
        (["--to", "Male=1", "--mask", "attr"], "a mask vector belongs to joint models"),
        (["--to", "Male=1", "--from", "Smiling=1"], "unknown domain 'Smiling'"),
    ],
)
def test_translate_request_errors(cli, tiny_model, face_png, tmp_path, args, text) -> None:
    code, _, err = cli("translate", tiny_model, face_png, *args, "-o", tmp_path / "o")
    assert_one_line_error(code, err, text)
    assert not (tmp_path / "o").exists()


def test_translate_to_target_and_all_domains_grid(cli, tiny_model, face_png, tmp_path) -> None:
    code, out, _ = cli(
        "translate",
        tiny_model,
        face_png,
        "--to",
        "Blond_Hair=1,Male=0",
        "-o",
        tmp_path / "a",
        "--quiet",
    )
    assert code == 0 and "translated 1 image" in out
    assert "model: trained on faces-attr at 16 px (built-in rendered faces: real photos" in out
    with Image.open(tmp_path / "a" / "face_Blond_Hair=1,Male=0.png") as im:
        assert im.size == (16, 16)
        assert not np.array_equal(np.asarray(im), np.zeros((16, 16, 3)))
    code, out, _ = cli(
        "translate",
        tiny_model,
        face_png.parent,
        "--all-domains",
        "--grid",
        "-o",
        tmp_path / "b",
        "--quiet",
    )
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert names == [
        "face_Black_Hair.png",
        "face_Blond_Hair.png",
        "face_Brown_Hair.png",
        "face_Male.png",
        "face_Young.png",
        "grid.png",
    ]
    with Image.open(tmp_path / "b" / "grid.png") as im:
        assert im.size == (6 * 18 + 2, 18 + 2)


@pytest.mark.parametrize(
    ("target", "text"),
    [
        ("", "empty target ''"),
        (" , ", "empty target"),
        ("Blond_Hair=1,Black_Hair=1", "cannot both be 1"),
        ("Male=1,Male=0", "'Male' is given twice"),
    ],
)
def test_translate_bad_target_is_one_line_error(cli, tiny_model, face_png, tmp_path, target, text):
    code, _, err = cli("translate", tiny_model, face_png, "--to", target, "-o", tmp_path / "o")
    assert_one_line_error(code, err, text)
    assert not (tmp_path / "o").exists()


def test_translate_output_inside_the_input_folder_is_not_read(cli, tiny_model, face_png, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "me.png").write_bytes(face_png.read_bytes())
    for _ in range(2):  # the second run must not translate the first run's outputs
        code, out, _ = cli("translate", tiny_model, photos, "--to", "Male=1", "-o", photos / "out")
        assert code == 0 and "translated 1 image" in out
    assert sorted(p.name for p in (photos / "out").iterdir()) == ["me_Male=1.png"]


def test_translate_bad_inputs_are_counted_and_others_processed(
    cli, tiny_model, face_png, tmp_path
) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code, out, err = cli(
        "translate",
        tiny_model,
        face_png,
        tmp_path / "missing.png",
        corrupt,
        "--to",
        "Male=1",
        "-o",
        tmp_path / "o",
        "--quiet",
    )
    assert code == 3  # some skipped, the rest translated: not a user error's 2
    assert "translated 1 image(s)" in out and "2 skipped" in out
    assert "missing.png: no such file" in err and "corrupt.jpg: not a readable image" in err
    assert (tmp_path / "o" / "face_Male=1.png").exists()


@pytest.mark.parametrize("name", ["missing.png", "corrupt.jpg"])
def test_translate_one_bad_input_is_one_line_and_no_folder(cli, tiny_model, tmp_path, name):
    bad = tmp_path / name
    if name == "corrupt.jpg":
        bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code, _, err = cli("translate", tiny_model, bad, "--to", "Male=1", "-o", tmp_path / "o")
    assert_one_line_error(code, err, name)
    assert not (tmp_path / "o").exists()


def test_translate_with_every_input_bad_exits_2_and_leaves_no_folder(cli, tiny_model, tmp_path):
    bad = [tmp_path / "a.png", tmp_path / "b.png"]
    for p in bad:
        p.write_bytes(b"not an image")
    code, _, err = cli("translate", tiny_model, *bad, "--to", "Male=1", "-o", tmp_path / "o")
    assert code == 2 and "none of the 2 input(s) could be translated" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("setup", "args", "text"),
    [
        ("none", ["--to", "Blond_Hiar=1"], "unknown domain 'Blond_Hiar' (did you mean"),
        ("none", ["--to", "Male=2"], "must be 0 or 1"),
        ("none", [], "exactly one of --to"),
        ("none", ["--to", "Male=1", "--batch-size", "0"], "--batch-size"),
        ("missing_model", ["--to", "Male=1"], "does not exist"),
        ("not_a_model", ["--to", "Male=1"], "no config.json"),
        ("corrupt_weights", ["--to", "Male=1"], "model.safetensors"),
        ("unwritable_out", ["--to", "Male=1"], "not writable"),
        ("string_width", ["--to", "Male=1"], "g_conv_dim must be int"),
        ("huge_width", ["--to", "Male=1"], "out of range"),
        ("no_discriminator", ["--to", "Male=1"], "without --no-discriminator"),
        ("duplicate_stems", ["--to", "Male=1"], "would write the same outputs"),
    ],
)
def test_translate_errors_are_one_line(
    cli, tiny_model, face_png, tmp_path, setup, args, text
) -> None:
    import shutil

    model, out = tiny_model, tmp_path / "out"
    if setup == "missing_model":
        model = tmp_path / "nope"
    elif setup == "not_a_model":
        model = tmp_path / "empty"
        model.mkdir()
    elif setup == "corrupt_weights":
        model = tmp_path / "copy"
        shutil.copytree(tiny_model, model)
        (model / "model.safetensors").write_bytes(b"garbage")
    elif setup in ("string_width", "huge_width"):
        model = tmp_path / "copy"
        shutil.copytree(tiny_model, model)
        config = json.loads((model / "config.json").read_text())
        config["model"]["g_conv_dim"] = "8" if setup == "string_width" else 10**6
        (model / "config.json").write_text(json.dumps(config))
    elif setup == "no_discriminator":
        model = tmp_path / "copy"
        shutil.copytree(tiny_model, model)
        (model / "discriminator.safetensors").unlink()
    elif setup == "duplicate_stems":
        (tmp_path / "again").mkdir()
        shutil.copy(face_png, tmp_path / "again" / face_png.name)
        face_png = tmp_path
    elif setup == "unwritable_out":
        (tmp_path / "file").write_text("a file, not a folder")
        out = tmp_path / "file" / "sub"
    code, _, err = cli("translate", model, face_png, *args, "-o", out, "--quiet")
    assert_one_line_error(code, err, text)


# ------------------------------------------------------------------ score / demo
def test_score_reports_per_domain_and_writes_json(cli, tiny_model, tmp_path) -> None:
    code, out, _ = cli("score", tiny_model, "--n", "40", "--quiet", "--json", tmp_path / "s.json")
    assert code == 0
    result = json.loads((tmp_path / "s.json").read_text())
    assert set(result["per_domain"]) == {"Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"}
    assert result["per_domain"]["Male"]["n"] == 40  # a flip changes every image
    for d in result["per_domain"].values():
        assert 0 <= d["target_acc"] <= 1 and 0 < d["psnr"] < 100
    # a 10-iteration model is far from the ground truth; the untouched input is closer
    assert result["overall"]["identity_psnr"] > result["overall"]["psnr"]
    assert min(result["classifier_real_acc"].values()) > 0.8
    assert "overall" in out and "classifier accuracy on real test images" in out


def test_score_multi_attribute_changes_from_a_source(cli, tiny_model, tmp_path) -> None:
    """Paper Fig. 4 against the exact ground truth, on the test faces that are not male."""
    args = ("--changes", "multi", "--from", "Male=0", "--json", tmp_path / "s.json")
    code, out, _ = cli("score", tiny_model, "--n", "40", "--quiet", *args)
    assert code == 0 and "Black_Hair+Male+Young" in out
    result = json.loads((tmp_path / "s.json").read_text())
    assert (result["changes"], result["source"]) == ("multi", "Male=0")
    assert len(result["per_domain"]) == 10 and "Male+Young" in result["per_domain"]
    not_male = result["per_domain"]["Male+Young"]["n"]  # both flips change every such face
    assert 0 < not_male < 40
    assert all(d["n"] <= not_male for d in result["per_domain"].values())
    code, _, err = cli("score", tiny_model, "--from", "Smiling=1", "--quiet")
    assert_one_line_error(code, err, "unknown domain 'Smiling'")


def test_score_of_a_real_data_model_whose_data_is_gone(cli, tiny_model, tmp_path) -> None:
    import shutil

    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    config = json.loads((model / "config.json").read_text())
    source = config["sources"][0]
    source["dataset"] = source["data"]["dataset"] = "celeba"
    source["data"]["path"] = str(tmp_path / "moved-celeba")
    (model / "config.json").write_text(json.dumps(config))
    code, _, err = cli("score", model, "--quiet")
    assert_one_line_error(code, err, "stargan eval MODEL --data PATH")
    code, _, err = cli("eval", model, "--quiet", "-o", tmp_path / "eval")
    assert_one_line_error(code, err, "moved-celeba")


def test_demo_trains_exports_scores_and_prints_paths(cli, tmp_path) -> None:
    code, out, _ = cli(
        "demo", "--preset", "tiny", "--outdir", tmp_path, "--n-score", "20", "--quiet"
    )
    assert code == 0
    run = tmp_path / "00001-tiny"
    assert f"sample grid:  {run / 'grid.png'}" in out
    assert f"model folder: {run / 'model'}" in out
    assert "target attribute right:" in out
    score = json.loads((run / "score.json").read_text())
    assert score["n_test"] == 20 and score["wall_time_s"] > 0
    assert (run / "model" / "model.safetensors").exists() and (run / "grid.png").exists()


def test_presets_lists_every_preset(cli) -> None:
    from stargan.presets import PRESETS

    code, out, _ = cli("presets")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == sorted(PRESETS)


def test_console_script_help_and_error_exit_codes(tmp_path: Path) -> None:
    exe = [sys.executable, "-m", "stargan"]
    ok = subprocess.run([*exe, "train", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "Examples:" in ok.stdout and "--dry-run" in ok.stdout
    bad = subprocess.run(
        [*exe, "translate", str(tmp_path / "nope"), "x.png", "--to", "Male=1", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr


def _tiny_demo(cli, tmp_path: Path, setting: str) -> dict:
    """``stargan demo`` on the tiny preset with one override, scored on 16 images."""
    code, _, err = cli(
        *f"demo --preset tiny --set {setting} --outdir {tmp_path}".split(),
        "--n-score",
        "16",
        "--quiet",
    )
    assert code == 0, err
    return json.loads((tmp_path / "00001-tiny" / "score.json").read_text())


def test_categorical_dataset_trains_translates_and_scores(cli, tmp_path) -> None:
    score = _tiny_demo(cli, tmp_path, "data.dataset=faces-expr")
    from stargan.data.faces import EXPRESSIONS

    assert set(score["per_domain"]) == set(EXPRESSIONS)
    # each image changes to every expression but its own: 16 * 7 translations in all
    assert sum(d["n"] for d in score["per_domain"].values()) == 16 * 7
    code, _, err = cli(
        "translate",
        tmp_path / "00001-tiny" / "model",
        tmp_path / "00001-tiny" / "grid.png",
        "--to",
        "happy=0",
        "-o",
        tmp_path / "o",
        "--quiet",
    )
    assert_one_line_error(code, err, "can only be set to 1")


def test_score_with_part_of_the_hair_group(cli, tmp_path) -> None:
    # Blond_Hair alone: switching it off has no single ground truth; those rows are skipped
    score = _tiny_demo(cli, tmp_path, "data.attrs=Blond_Hair,Male")
    assert score["per_domain"]["Male"]["n"] == 16
    assert 0 < score["per_domain"]["Blond_Hair"]["n"] < 16


def test_corrupt_checkpoint_is_one_line_error(cli, tiny_run, tmp_path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "checkpoints" / "step-0000010" / "G.safetensors").write_bytes(b"not safetensors")
    code, _, err = cli("export", run, "-o", tmp_path / "m")
    assert_one_line_error(code, err, "unreadable or incomplete")


def test_dry_run_summary_matches_the_rendered_data() -> None:
    from stargan.data.builtin import label_summary, load_builtin

    for name in ("faces-attr", "faces-expr"):
        rendered = load_builtin(name, "test", 16, 40, seed=3).summary()
        assert label_summary(name, "test", 40, seed=3) == rendered


def test_render_cache_serves_smaller_sets_from_a_larger_one(tmp_path) -> None:
    import numpy as np

    from stargan.data.builtin import load_builtin

    big = load_builtin("faces-attr", "train", 16, 30, seed=5, cache_dir=tmp_path)
    small = load_builtin("faces-attr", "train", 16, 12, seed=5, cache_dir=tmp_path)
    assert np.array_equal(np.asarray(small.images), np.asarray(big.images)[:12])
    assert len(list((tmp_path / "faces").glob("*.npy"))) == 1  # nothing rendered again
