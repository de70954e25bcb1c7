"""Our StarGAN beside the official code, on this machine, in one venv, one run after another.

    bash ../shared/official/setup.sh                        # official copy + torch 2.14.1 venv
    /tmp/stargan-official/venv/bin/pip install -e .          # ours into the same venv
    python benchmarks/side_by_side.py --runs 3               # v1: training and inference
    python benchmarks/side_by_side.py --parts v2 --runs 2    # v2 training (~95 s/iter official)

Every measurement is a fresh process of ``$STARGAN_ANCHORS/venv/bin/python`` (default
``/tmp/stargan-official``): the official loop through ``../shared/official/measure``
(its unmodified ``main.py``, timed from its own log lines), ours through
``benchmarks/train_speed.py``, ``benchmarks/infer_speed.py`` and ``stargan train`` (v2).
The runs are interleaved (official, ours fp32, ours bf16, official, ...), so load from
other jobs hits every contender alike; each figure is the median of ``--runs``, with its
min-max spread, and every ratio is official / ours (above 1: ours is faster). Peak RSS
of every process is read with ``/usr/bin/time``.

- **train** (v1): seconds per iteration at ``--image-size`` (128), batch 16, over whole
  n_critic cycles after a warm-up cycle; the official loop reads CelebA images through
  its loader (``../shared/data/celeba_subset``), ours the built-in faces (same shapes).
- **infer** (v1): ms per translation of a batch of 16 to all 5 domains, and batch-1
  latency; ours in fp32 and in bf16 (``stargan translate``'s path, with its PSNR to fp32).
- **v2**: the AFHQ setting at ``--v2-image-size`` (128), batch 8, on the AFHQ sample
  images the official harness links in; seconds per iteration after one warm-up.

Prints a table, then the figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _report import print_report

ROOT = Path(__file__).resolve().parents[1]
MEASURE = ROOT.parent / "shared" / "official" / "measure"


def run(cmd: list[str], env: dict[str, str]) -> tuple[str, float]:
    """Run ``cmd`` under /usr/bin/time; (stdout, peak RSS of the process in GiB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        kib = int(rss.read().split()[-1])
    return proc.stdout, kib / 2**20


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


class Contenders:
    """The commands of each contender, for one set of options."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.anchors = Path(args.anchors)
        self.python = str(self.anchors / "venv" / "bin" / "python")
        self.env = dict(os.environ, STARGAN_ANCHORS=str(self.anchors), PYTHONUNBUFFERED="1")
        self.tmp = Path(tempfile.mkdtemp(prefix="side-by-side-"))
        self.count = 0

    def _tag(self, what: str) -> str:
        self.count += 1
        return f"side-by-side-{os.getpid()}-{self.count}-{what}"

    # ---------------------------------------------------------------- v1 training
    def official_train(self) -> dict[str, float]:
        a, tag = self.args, self._tag("train")
        cmd = [sys.executable, str(MEASURE / "run_official_train.py"), "--image-size"]
        cmd += [str(a.image_size), "--batch-size", "16", "--threads", str(a.threads)]
        cmd += ["--iters", str(5 * (a.cycles + 1)), "--warmup", "5", "--tag", tag]
        run(cmd, self.env)
        result = json.loads((self.anchors / "runs" / tag / "result.json").read_text())
        rss = result["time_v"]["max_rss_kib"] / 2**20
        return {"sec_per_iter": result["sec_per_iter"], "rss_gib": rss}

    def ours_train(self, precision: str) -> dict[str, float]:
        a = self.args
        cmd = [self.python, str(ROOT / "benchmarks" / "train_speed.py"), "--image-size"]
        cmd += [str(a.image_size), "--batch-size", "16", "--threads", str(a.threads)]
        cmd += ["--cycles", str(a.cycles), "--warmup-cycles", "1", "--precision", precision]
        out, rss = run(cmd, self.env)
        return {"sec_per_iter": last_json(out)["sec_per_iter"], "rss_gib": rss}

    # ---------------------------------------------------------------- v1 inference
    def official_infer(self) -> dict[str, float]:
        a, path = self.args, self.tmp / f"{self._tag('infer')}.json"
        cmd = [self.python, str(MEASURE / "official_infer.py"), "--threads", str(a.threads)]
        cmd += ["--image-size", str(a.image_size), "--repeats", str(a.repeats), "--out", str(path)]
        _, rss = run(cmd, self.env)
        result = json.loads(path.read_text())
        return {
            "ms_per_image": 1000 * result["batch"]["sec_per_translation_median"],
            "batch1_ms": 1000 * result["b1_one_domain"]["median"],
            "rss_gib": rss,
        }

    def ours_infer(self) -> dict[str, float]:
        a = self.args
        cmd = [self.python, str(ROOT / "benchmarks" / "infer_speed.py"), "--bf16"]
        cmd += ["--image-size", str(a.image_size), "--threads", str(a.threads)]
        cmd += ["--repeats", str(a.repeats)]
        out, rss = run(cmd, self.env)
        result = last_json(out)
        keys = ("ms_per_image", "batch1_ms", "bf16_ms_per_image", "bf16_batch1_ms", "bf16_psnr_db")
        return {k: result[k] for k in keys} | {"rss_gib": rss}

    # ---------------------------------------------------------------- v2 training
    def official_v2(self) -> dict[str, float]:
        a, tag = self.args, self._tag("v2")
        cmd = [sys.executable, str(MEASURE / "run_official_train_v2.py"), "--img-size"]
        cmd += [str(a.v2_image_size), "--batch-size", "8", "--threads", str(a.threads)]
        cmd += ["--iters", str(a.v2_iters + 1), "--warmup", "1", "--tag", tag]
        run(cmd, self.env)
        result = json.loads((self.anchors / "runs" / tag / "result.json").read_text())
        rss = result["time_v"]["max_rss_kib"] / 2**20
        return {"sec_per_iter": result["measured"]["median"], "rss_gib": rss}

    def ours_v2(self, precision: str) -> dict[str, float]:
        a, out = self.args, self.tmp / self._tag(f"v2-{precision}")
        sets = {
            "model.image_size": a.v2_image_size,
            "data.num_test": 30,  # the AFHQ sample links: 430 images (the official: val/)
            "train.batch_size": 8,
            "train.num_iters": a.v2_iters + 1,
            "train.num_iters_decay": 0,
            "train.threads": a.threads,
            "train.precision": precision,
            "train.log_every": 1,
            "train.sample_every": 10**8,
            "train.ckpt_every": 10**8,
            "train.tensorboard": "false",
        }
        cmd = [self.python, "-m", "stargan", "train", "--preset", "afhq-v2", "--quiet"]
        cmd += ["--data", str(self.anchors / "data" / "afhq" / "train"), "--outdir", str(out)]
        cmd += [arg for k, v in sets.items() for arg in ("--set", f"{k}={v}")]
        _, rss = run(cmd, self.env)
        stats = next(out.glob("*/stats.jsonl")).read_text().splitlines()
        times = [json.loads(line)["time_s"] for line in stats]
        per_iter = [b - a for a, b in zip(times, times[1:], strict=False)]
        return {"sec_per_iter": statistics.median(per_iter), "rss_gib": rss}


def interleaved(runs: int, contenders: dict[str, Callable[[], dict]]) -> dict[str, list[dict]]:
    """Each contender ``runs`` times, in turn; their results per name."""
    results: dict[str, list[dict]] = {name: [] for name in contenders}
    for r in range(runs):
        for name, measure in contenders.items():
            results[name].append(measure())
            print(f"  run {r + 1}/{runs} {name}: {results[name][-1]}", file=sys.stderr, flush=True)
    return results


def median_spread(rows: list[dict], key: str) -> tuple[float, float, float]:
    values = [row[key] for row in rows]
    return statistics.median(values), min(values), max(values)


def check_setup(c: Contenders) -> None:
    if not Path(c.python).is_file():
        sys.exit(f"no official venv at {c.anchors}: run bash ../shared/official/setup.sh first")
    probe = subprocess.run([c.python, "-c", "import stargan"], capture_output=True)
    if probe.returncode != 0:
        sys.exit(f"stargan is not installed in {c.anchors}/venv: {c.python} -m pip install -e .")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anchors", default=os.environ.get("STARGAN_ANCHORS", "/tmp/stargan-official"))
    ap.add_argument("--parts", default="train,infer", help="comma list of train, infer, v2")
    ap.add_argument("--runs", type=int, default=3, help="runs of each contender (median)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--cycles", type=int, default=3, help="timed n_critic cycles (v1 training)")
    ap.add_argument("--repeats", type=int, default=5, help="timed batches per inference run")
    ap.add_argument("--v2-image-size", type=int, default=128)
    ap.add_argument("--v2-iters", type=int, default=3, help="timed v2 iterations per run")
    args = ap.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - {"train", "infer", "v2"}
    if unknown:
        sys.exit(f"--parts: unknown {sorted(unknown)}; choose from train, infer, v2")
    c = Contenders(args)
    check_setup(c)
    rows: list[tuple[str, str]] = []
    result: dict = {"threads": args.threads, "runs": args.runs, "cpu_flags": cpu_flags()}
    for part in parts:
        part_rows, part_result = MEASURES[part](c, args)
        rows += part_rows
        result |= part_result
    print_report(rows, result)


def _training(name: str, official: list[dict], ours: dict[str, list[dict]]) -> tuple[list, dict]:
    key = name.replace(" ", "_")  # JSON keys: train_128px_official_s ...
    base, lo, hi = median_spread(official, "sec_per_iter")
    rss = statistics.median(r["rss_gib"] for r in official)
    rows = [(f"{name} official s/iter", f"{base:.3f} ({lo:.3f}-{hi:.3f}), peak RSS {rss:.2f} GiB")]
    result = {f"{key}_official_s": base, f"{key}_official_rss_gib": rss}
    for precision, runs in ours.items():
        mid, lo, hi = median_spread(runs, "sec_per_iter")
        rss = statistics.median(r["rss_gib"] for r in runs)
        rows.append(
            (
                f"{name} ours {precision} s/iter",
                f"{mid:.3f} ({lo:.3f}-{hi:.3f}) = {base / mid:.2f}x, peak RSS {rss:.2f} GiB",
            )
        )
        result |= {
            f"{key}_ours_{precision}_s": mid,
            f"{key}_ours_{precision}_ratio": base / mid,
            f"{key}_ours_{precision}_rss_gib": rss,
        }
    return rows, result


def measure_train(c: Contenders, args) -> tuple[list, dict]:
    return _compare_training(
        f"train {args.image_size}px", args.runs, c.official_train, c.ours_train
    )


def measure_v2(c: Contenders, args) -> tuple[list, dict]:
    return _compare_training(f"v2 {args.v2_image_size}px", args.runs, c.official_v2, c.ours_v2)


def _compare_training(name: str, runs: int, official, ours) -> tuple[list, dict]:
    """The official loop against ours in fp32 and in bf16, interleaved."""
    got = interleaved(
        runs, {"official": official, "fp32": lambda: ours("fp32"), "bf16": lambda: ours("bf16")}
    )
    official_runs = got.pop("official")
    return _training(name, official_runs, got)


def measure_infer(c: Contenders, args) -> tuple[list, dict]:
    got = interleaved(args.runs, {"official": c.official_infer, "ours": c.ours_infer})
    rows, result = [], {}
    for what, label in (
        ("ms_per_image", "ms per translation, batch 16"),
        ("batch1_ms", "batch-1 ms"),
    ):
        base, lo, hi = median_spread(got["official"], what)
        rows.append((f"infer official {label}", f"{base:.1f} ({lo:.1f}-{hi:.1f})"))
        result[f"infer_official_{what}"] = base
        for prefix, name in (("", "fp32"), ("bf16_", "bf16")):
            mid, lo, hi = median_spread(got["ours"], prefix + what)
            ratios = [
                o[what] / u[prefix + what]
                for o, u in zip(got["official"], got["ours"], strict=True)
            ]
            rows.append(
                (
                    f"infer ours {name} {label}",
                    f"{mid:.1f} ({lo:.1f}-{hi:.1f}) = {base / mid:.2f}x "
                    f"(per run {min(ratios):.2f}-{max(ratios):.2f}x)",
                )
            )
            result |= {
                f"infer_ours_{name}_{what}": mid,
                f"infer_ours_{name}_{what}_ratio": base / mid,
            }
            result[f"infer_ours_{name}_{what}_worst_ratio"] = min(ratios)
    psnr = statistics.median(r["bf16_psnr_db"] for r in got["ours"])
    rss = {k: statistics.median(r["rss_gib"] for r in v) for k, v in got.items()}
    rows += [
        ("infer ours bf16 PSNR vs fp32", f"{psnr:.1f} dB (random weights)"),
        ("infer peak RSS official / ours", f"{rss['official']:.2f} / {rss['ours']:.2f} GiB"),
    ]
    result |= {"infer_bf16_psnr_db": psnr, "infer_official_rss_gib": rss["official"]}
    result["infer_ours_rss_gib"] = rss["ours"]
    return rows, result


MEASURES = {"train": measure_train, "infer": measure_infer, "v2": measure_v2}


def cpu_flags() -> str:
    """The CPU's model name and the flags that decide these figures."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), ""
    )
    flags = next(
        (ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []
    )
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
    return f"{model}; {os.cpu_count()} cores; " + " ".join(f for f in wanted if f in flags)


if __name__ == "__main__":
    main()
