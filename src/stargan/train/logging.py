"""Training statistics: ``stats.jsonl`` always, TensorBoard when installed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch


class StatsLogger:
    """``time_s`` counts training time across resumes: a continued run starts from the
    last logged ``time_s``."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = run_dir / "stats.jsonl"
        self.start = time.time() - _last_time(self.path)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # optional extra: pip install stargan[tensorboard]
                self.tb = None

    def log(self, step: int, g_updates: int, values: dict[str, float]) -> None:
        record = {
            "step": step,
            "g_updates": g_updates,
            "time_s": round(time.time() - self.start, 3),
            **values,
        }
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _last_time(path: Path) -> float:
    """The ``time_s`` of the last complete record of ``path`` (0 if none)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0.0
    for line in reversed(lines):
        try:
            return float(json.loads(line)["time_s"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0.0


def mean_parts(history: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Average logged loss tensors with one device sync (no .item() per step)."""
    keys = sorted({k for h in history for k in h})
    out = {}
    for key in keys:
        vals = [h[key] for h in history if key in h]
        out[key] = float(torch.stack(vals).float().mean())
    return out
