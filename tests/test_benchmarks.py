"""The benchmark scripts run and keep their last-line JSON keys (later issues rely on them)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from stargan.quantize import int8_unsupported_reason

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _bench_module(name: str) -> Any:
    """benchmarks/NAME.py imported as a module (with benchmarks/ on the path for the
    helpers some of them import), to test its functions directly."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def _run_bench(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("script", "args", "keys"),
    [
        (
            "train_speed.py",
            [
                "--image-size",
                "32",
                "--batch-size",
                "2",
                "--conv-dim",
                "8",
                "--cycles",
                "1",
                "--warmup-cycles",
                "0",
            ],
            {"sec_per_iter", "d_only_sec", "d_and_g_sec", "peak_rss_gib"},
        ),
        (
            "infer_speed.py",
            ["--image-size", "16", "--batch-size", "2", "--conv-dim", "8", "--repeats", "1"],
            {"ms_per_image", "batch1_ms"},
        ),
        pytest.param(
            "infer_speed.py",
            ["--image-size", "16", "--batch-size", "2", "--conv-dim", "8", "--repeats", "1"]
            + ["--int8"],
            {"ms_per_image", "batch1_ms", "int8_ms_per_image", "int8_batch1_ms", "int8_psnr_db"},
            marks=pytest.mark.skipif(
                int8_unsupported_reason() is not None, reason="int8 needs x86 with VNNI"
            ),
        ),
        (
            "infer_speed.py",
            ["--image-size", "16", "--batch-size", "2", "--conv-dim", "8", "--repeats", "1"]
            + ["--bf16"],
            {"bf16_ms_per_image", "bf16_batch1_ms", "bf16_psnr_db"},
        ),
        (
            "counterfactual_ceiling.py",
            ["--size", "16", "--n", "3", "--tries", "2"],
            {"overall_input", "overall_sample"},
        ),
        ("render_speed.py", ["--size", "32", "--n", "20"], {"images_per_s", "ms_per_image"}),
        (
            "train_speed.py",
            ["--image-size", "16", "--batch-size", "2", "--conv-dim", "8", "--cycles", "1"]
            + ["--warmup-cycles", "0", "--flops", "--threads", "1"],
            {"sec_per_iter", "gflop_per_iter", "gflops_achieved"},
        ),
        (
            "train_speed.py",
            ["--image-size", "16", "--batch-size", "2", "--conv-dim", "8", "--cycles", "1"]
            + ["--warmup-cycles", "0", "--plain", "--threads", "1"],
            {"sec_per_iter", "cpu_sec_per_iter", "minor_faults_per_iter"},
        ),
        (
            "profile_train.py",
            ["--image-size", "16", "--batch-size", "2", "--conv-dim", "8", "--threads", "1"]
            + ["--warmup-cycles", "0", "--top", "5"],
            {"image_size"},
        ),
        (
            "profile_train_v2.py",
            ["--image-size", "32", "--batch-size", "2", "--iters", "1", "--threads", "1"],
            {"sec_per_iter"},
        ),
        ("matmul_peak.py", ["--size", "256", "--repeats", "2"], {"gflops_best", "gflops_median"}),
        (
            "serve_load.py",
            ["--image-size", "16", "--requests", "4", "--clients", "2", "--threads", "1"],
            {"requests_per_s", "p50_ms", "p95_ms"},
        ),
        (
            "export_speed.py",
            ["--image-size", "16", "--conv-dim", "8", "--batch-size", "2", "--repeats", "1"],
            {"onnx_b1_ms", "torchscript_b1_ms", "onnx_max_abs_diff_x1e6"},
        ),
    ],
)
def test_benchmark_prints_json_last_line(script: str, args: list[str], keys: set[str]) -> None:
    proc = _run_bench(script, *args)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert keys <= result.keys()
    assert all(result[k] > 0 for k in keys)
    if "--plain" in args:
        assert result["fast_kernels"] is False


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("loader_speed.py", ["--image-size", "32"]),
        ("resize_filter.py", ["--n", "4", "--image-size", "32"]),
    ],
)
def test_benchmarks_on_shared_data_print_json(script: str, args: list[str]) -> None:
    # align_compare.py is left out: its 1024 px CelebA-HQ set alone takes over a minute
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "celeba_subset").is_dir():
        pytest.skip(f"{SHARED_DATA / 'celeba_subset'} is absent: these measure real images")
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert isinstance(json.loads(proc.stdout.strip().splitlines()[-1]), dict)


@pytest.mark.parametrize(
    ("script", "args", "weights", "needs_shared"),
    [
        ("lpips_pairs.py", ["--size", "32", "--n", "2"], "lpips_alex.safetensors", False),
        (
            "fid_speed.py",
            ["--n", "6", "--image-size", "32", "--threads", "1"],
            "fid_inception.safetensors",
            True,
        ),
    ],
)
def test_evaluation_benchmarks_print_json(script, args, weights, needs_shared) -> None:
    from conftest import SHARED_DATA, require_weights

    require_weights(weights)
    if needs_shared and not (SHARED_DATA / "celeba_subset").is_dir():
        pytest.skip(f"{SHARED_DATA / 'celeba_subset'} is absent: this measures real images")
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert isinstance(result, dict) and result
    if script == "lpips_pairs.py":
        assert result["identical"] == 0 and result["noise_sigma_32"] > result["noise_sigma_4"]


def test_counterfactual_regions_splits_the_error(tiny_model: Path, tmp_path: Path) -> None:
    grid = tmp_path / "regions.png"
    cmd = [sys.executable, str(BENCH / "counterfactual_regions.py"), str(tiny_model)]
    proc = subprocess.run(
        [*cmd, "--n", "16", "--grid", str(grid), "--by-source"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert 0 < result["Black_Hair_changed_share"] < 1
    # the pooled error is the two regions' errors weighted by their shares
    share = result["Black_Hair_changed_share"]
    pooled = share * result["Black_Hair_mse_changed"] + (1 - share) * result["Black_Hair_mse_rest"]
    assert abs(10 * math.log10(255**2 / pooled) - result["Black_Hair_psnr"]) < 0.05
    assert grid.stat().st_size > 0
    # --by-source: every changed input in one group; black hair is never a source of black
    sources = {k: v for k, v in result.items() if k.startswith("Black_Hair_n_from_")}
    assert sum(sources.values()) == result["Black_Hair_n"]
    assert sources and not any(k.endswith(("from_black", "from_black_old")) for k in sources)


def test_joint_vs_single_trains_both_and_scores_the_wrong_mask(tmp_path: Path) -> None:
    """Paper Figs. 6 and 8 at toy size: JNT, SNG and JNT with the faces-attr mask, each
    scored on faces-attr test faces given expressions, against the exact truth."""
    tiny = ["model.image_size=16", "model.g_conv_dim=8", "model.d_conv_dim=8"]
    tiny += ["train.batch_size=4", "data.faces-attr.num_test=12", "data.faces-expr.num_test=12"]
    tiny += ["data.faces-attr.num_train=32", "data.faces-expr.num_train=32"]
    sets = [arg for value in tiny for arg in ("--set", value)]
    cmd = [sys.executable, str(BENCH / "joint_vs_single.py"), "-o", str(tmp_path), *sets]
    proc = subprocess.run(
        [*cmd, "--iters", "2", "--n", "12", "--judge-steps", "5"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("jnt", "sng", "jnt_wrong_mask"):
        assert result[f"{name}_n"] == result["input_n"] > 0  # every face, every other expression
        assert 0 <= result[f"{name}_hit"] <= 1 and 0 < result[f"{name}_psnr"] < 100
    assert result["jnt_psnr"] != result["jnt_wrong_mask_psnr"]  # the mask reaches G
    assert (tmp_path / "jnt_sng_grid.png").stat().st_size > 0
    assert (tmp_path / "faces-expr-sng-model" / "config.json").exists()


def test_quality_study_scores_each_budget_and_skips_finished_cells(tmp_path: Path) -> None:
    out = tmp_path / "study"
    cmd = [sys.executable, str(BENCH / "quality_study.py"), "-o", str(out), "--base", "tiny"]
    cmd += ["--variants", "paper,mask+resize+ema", "--seeds", "0", "--budgets", "0.01,0.02"]
    cmd += ["--n", "16"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["variant"], r["budget_min"]) for r in rows if r["variant"] == "paper"] == [
        ("paper", 0.01),
        ("paper", 0.02),
    ]
    for r in rows:
        assert 0 <= r["target_acc"] <= 1 and 0 <= r["kept"] <= 1 and r["psnr"] > 0
        assert r["iters"] > 0 and r["train_s"] >= r["budget_min"] * 60
    table = (out / "table.md").read_text().splitlines()
    assert len(table) == 2 + 4 and "mask+resize+ema" in table[-1]
    assert (out / "plot.png").stat().st_size > 0
    assert len(list((out / "grids").glob("*.png"))) == 4
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert "0 runs to do (2 done)" in again.stdout
    bad = subprocess.run([*cmd[:-4], "--variants", "paper+nope"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown changes ['nope']" in bad.stderr


def test_import_graph_has_no_private_imports_and_one_known_cycle() -> None:
    """The layering of docs/architecture.md holds: no module imports another's private
    names, and the only cycle is config <-> presets (a lazy import for an error message)."""
    out = subprocess.run(
        [sys.executable, str(BENCH / "import_graph.py")], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"cycles": 1, "in_cycles": 2, "private": 0}, out
    assert "config, presets" in out


def test_side_by_side_without_the_official_copy_says_how_to_make_it(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "side_by_side.py"), "--anchors", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "setup.sh" in proc.stderr


def test_side_by_side_rejects_unknown_parts(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "side_by_side.py"), "--parts", "train,speed"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "speed" in proc.stderr


def test_train_speed_times_a_presets_step() -> None:
    """--preset: the preset's networks at its own image size (tiny: 16 px), not --image-size;
    --set changes the preset as `stargan train --set` does."""
    args = ["--preset", "tiny", "--image-size", "64", "--batch-size", "2", "--cycles", "1"]
    args += ["--set", "optim.n_critic=2", "--warmup-cycles", "0", "--threads", "1"]
    proc = _run_bench("train_speed.py", *args)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (result["preset"], result["image_size"], result["n_critic"]) == ("tiny", 16, 2)
    assert result["overrides"] == ["optim.n_critic=2"] and result["sec_per_iter"] > 0
    bad = _run_bench("train_speed.py", "--preset", "tiny", "--set", "loss.penalty_every=0")
    assert bad.returncode != 0 and "loss.penalty_every must be >= 1" in bad.stderr
    own = _run_bench("train_speed.py", "--preset", "tiny", "--set", "train.batch_size=4")
    assert own.returncode != 0 and "the benchmark sets this itself" in own.stderr
    alone = _run_bench("train_speed.py", "--set", "optim.n_critic=2")
    assert alone.returncode != 0 and "give --preset NAME too" in alone.stderr
    refused = _run_bench("train_speed.py", "--preset", "faces-joint-v1")
    assert refused.returncode != 0 and "single-dataset StarGAN v1 preset" in refused.stderr


def test_quality_study_refuses_an_unknown_base_before_any_run(tmp_path: Path) -> None:
    """A misspelt --base stops in the parent with the valid names (``study`` among them),
    not inside each worker after the pool has started."""
    out = tmp_path / "study"
    proc = _run_bench("quality_study.py", "-o", str(out), "--base", "demo64", "--seeds", "0")
    assert proc.returncode != 0 and "unknown --base 'demo64'" in proc.stderr
    assert "valid: study, " in proc.stderr and "demo-64" in proc.stderr
    assert "runs to do" not in proc.stdout and not out.exists()


def test_quality_study_variants_are_valid_changes_of_its_base() -> None:
    """Every variant of docs/quality.md's reproduce commands applies to the study's base
    and passes the config's checks, so none can fail only when its run starts (the base is
    the paper's G and losses on the demo's network, not the demo preset, which has since
    taken the recipe); every change the study lists is valid on that base or on the demo
    (changes of the mask, such as lmask0.3, need the mask)."""
    from stargan.config import apply_overrides, validate
    from stargan.errors import StarGANError
    from stargan.presets import get_preset

    study = _bench_module("quality_study")
    base = study.base_config("study")
    assert (base.model.g_output, base.loss.adv, base.optim.n_critic) == ("image", "wgan-gp", 5)
    assert (base.model.image_size, base.loss.lambda_rec, base.optim.g_ema_beta) == (32, 30.0, 0)
    assert base.train.precision == "fp32"  # as the study ran; bf16 is one of its variants
    text = (BENCH.parent / "docs" / "quality.md").read_text()
    doc = re.sub(r"\\\n\s*", "", text)  # the commands' line continuations, indented or not
    documented = [v for m in re.findall(r"--variants[ =](\S+)", doc) for v in m.split(",") if v]
    documented = [v.strip("`") for v in documented]
    reproduce = re.search(r"^## Reproduce\n(.*?)(?=^## |\Z)", doc, re.M | re.S).group(1)
    assert {"paper", "mask+resize+ema+bf16+ncrit2", "mask+resize+ema+bf16+px64+g16"} <= set(
        documented
    ) and reproduce.count("--variants") == 2
    for variant in documented:
        validate(apply_overrides(base, study.overrides_of(variant)))  # raises on a bad one
    for change in study.CHANGES:
        try:
            validate(apply_overrides(base, study.overrides_of(change)))
        except StarGANError:
            validate(apply_overrides(get_preset("demo"), study.overrides_of(change)))
    assert apply_overrides(base, study.overrides_of("b8")).train.batch_size == 8


def test_bundle_model_card_reads_eval_columns_by_name() -> None:
    """The card's per-attribute table takes `stargan eval`'s bars by column name: a column
    added to the eval does not shift the others, and one an older eval lacks is blank."""
    bundle = _bench_module("bundle_model")
    full = dict(zip(bundle.CARD_COLUMNS, (0.9, 0.8, 0.7, 0.6), strict=True))
    older = {"target accuracy": 0.5, "others kept": 0.4, "classifier on real": 0.3}
    table = bundle.attribute_table({"Male": full, "Young": older}).splitlines()
    assert table == [
        "| Male | 90.0% | 80.0% | 70.0% | 60.0% |",
        "| Young | 50.0% | 40.0% | 30.0% | – |",
    ]


def test_judge_reading_splits_recall_by_value_and_by_another_attribute() -> None:
    """Recall of each value on real images, their mean, and the present value's recall
    split by ``--by`` (the blond men a judge has barely seen)."""
    from types import SimpleNamespace

    from stargan.data.labels import LabelSpec

    reading = _bench_module("judge_reading")
    # Blond, Male: two blond women (both read blond), two blond men (one read), two others.
    c = torch.tensor([[1, 0], [1, 0], [1, 1], [1, 1], [0, 1], [0, 0]], dtype=torch.float32)
    pred = torch.tensor([[1, 0], [1, 0], [1, 1], [0, 1], [0, 1], [1, 0]], dtype=torch.float32)
    judge = SimpleNamespace(spec=LabelSpec(("Blond", "Male")), predict=lambda idx: pred[idx])
    out = reading.read(judge, torch.arange(6), c, "Male")
    blond = out["Blond"]
    assert (blond["present"], blond["n_present"]) == (0.75, 4)
    assert (blond["absent"], blond["n_absent"]) == (0.5, 2)
    assert blond["balanced"] == pytest.approx(0.625) and blond["accuracy"] == pytest.approx(4 / 6)
    assert blond["present, Male"] == (0.5, 2) and blond["present, not Male"] == (1.0, 2)
    assert "present, Male" not in out["Male"] and out["Male"]["accuracy"] == 1.0


def test_judge_reading_reads_a_judge_from_classifier_train(tiny_model: Path, tmp_path) -> None:
    clf = tmp_path / "clf"
    cmd = [sys.executable, "-m", "stargan", "classifier", "train", "--model", str(tiny_model)]
    made = subprocess.run(
        [*cmd, "--epochs", "1", "-o", str(clf), "--quiet"], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    proc = _run_bench("judge_reading.py", "--classifier", f"judge={clf}")
    assert proc.returncode == 0, proc.stderr
    assert "judge: Male" in proc.stdout and "present with Male" in proc.stdout
    result = json.loads(proc.stdout.strip().splitlines()[-1])["judge"]
    n = result.pop("n")
    assert n > 0 and all(v is None or 0 <= v <= 1 for v in result.values())
    wrong = _run_bench("judge_reading.py", "--classifier", str(clf), "--by", "Nope")
    assert wrong.returncode != 0 and "not an attribute of the judge" in wrong.stderr
