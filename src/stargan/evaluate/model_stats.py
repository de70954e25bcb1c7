"""Size and speed of a model: parameters per network (paper Table 3 lists them) and
translation throughput on this machine (batched images/s, batch-1 latency)."""

from __future__ import annotations

import platform
import statistics
import time
from typing import Any

import torch

from stargan.evaluate.metrics import EvalContext, Metric
from stargan.models import count_parameters

MIN_SECONDS = 2.0  # time each setting for at least this long (after one warm-up call)
MAX_REPEATS = 50


def run_params(ctx: EvalContext) -> dict[str, Any]:
    nets = {"G": ctx.tr.G}
    if ctx.tr.D is not None:
        nets["D"] = ctx.tr.D
    record = params_record(nets)
    record["notes"] = [] if "D" in nets else ["no discriminator in this model folder"]
    pairwise = getattr(ctx.tr.G, "nets", None)  # a pairwise set: G and D sum k(k-1) networks
    if pairwise is not None:
        record["summary"]["generators"] = len(pairwise)
        record["notes"].append(f"G and D: the sums over {len(pairwise)} pairwise networks each")
    return record


def params_record(nets: dict[str, torch.nn.Module]) -> dict[str, Any]:
    """Parameters per named network and their total, as a record's summary and table."""
    counts = {name: count_parameters(net) for name, net in nets.items()}
    summary = {f"{name}_params": n for name, n in counts.items()}
    summary["total_params"] = sum(counts.values())
    table = {
        "title": "Parameters per network",
        "kind": "table",
        "columns": ["network", "parameters"],
        "rows": [[name, n] for name, n in counts.items()],
        "format": "int",
    }
    return {"n": None, "summary": summary, "tables": [table]}


def run_speed(ctx: EvalContext) -> dict[str, Any]:
    size, batch = ctx.tr.image_size, ctx.settings.batch_size
    gen = torch.Generator().manual_seed(ctx.settings.seed)
    x_u8 = torch.randint(0, 256, (batch, 3, size, size), generator=gen, dtype=torch.uint8)
    spec = ctx.tr.layout.specs[0]
    c_trg = ctx.tr.layout.encode(0, spec.set_domain(torch.zeros(batch, spec.dim), spec.names[0]))
    # a source other than the target: pairwise model sets pick G_{source -> target}
    other = spec.names[min(1, spec.dim - 1)]
    c_org = ctx.tr.layout.encode(0, spec.set_domain(torch.zeros(batch, spec.dim), other))
    batched = median_seconds(lambda: ctx.translate(x_u8, c_trg, c_org=c_org))
    single = median_seconds(lambda: ctx.translate(x_u8[:1], c_trg[:1], c_org=c_org[:1]))
    summary = {
        "images_per_s": batch / batched,
        "ms_per_image_batched": 1000 * batched / batch,
        "ms_batch1": 1000 * single,
        "batch_size": batch,
        "threads": torch.get_num_threads(),
    }
    return {"n": None, "summary": summary, "notes": [speed_note(ctx)]}


def speed_note(ctx: EvalContext) -> str:
    machine = platform.processor() or platform.machine()
    return f"measured on {ctx.tr.device}, torch {torch.__version__}, {machine}; median of repeats"


def median_seconds(fn) -> float:
    fn()  # warm-up: allocator, kernels, caches
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (
        time.perf_counter() - start < MIN_SECONDS and len(times) < MAX_REPEATS
    ):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


COUNTS = {"G_params": "int", "D_params": "int", "total_params": "int", "generators": "int"}
PARAMS = Metric("params", "parameters per network", run_params, formats=COUNTS)
SPEED = Metric("speed", "translation speed on this machine (images/s, batch-1 latency)", run_speed)
