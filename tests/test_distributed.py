"""Data-parallel training under torchrun: two CPU processes (gloo, loopback) end with
identical weights, equal to one process on the same global batch within float rounding,
and a run resumes on another world size."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stargan.errors import StarGANError
from stargan.train.distributed import World, world_from_env

TINY = ["--preset", "tiny", "--quiet", "--set", "train.threads=1"]  # 10 its, batch 4, lr 1e-4


def _train(args: list[str], tmp: Path, procs: int = 1) -> subprocess.CompletedProcess:
    launch = [sys.executable, "-m", "stargan"]
    if procs > 1:
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        launch += ["--nproc_per_node", str(procs), "-m", "stargan"]
    env = {**os.environ, "STARGAN_CACHE": str(tmp / "cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*launch, "train", *args], capture_output=True, text=True, timeout=300, env=env
    )


def _weights(ckpt: Path, nets: tuple[str, ...] = ("G", "D")) -> dict[str, torch.Tensor]:
    return {
        f"{net}.{k}": v for net in nets for k, v in load_file(ckpt / f"{net}.safetensors").items()
    }


def _assert_same_training(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Equal within float rounding. Gradients summed in another order differ by ~1e-7, and
    where one is ~0 Adam's g/sqrt(v) can flip its sign: such a weight moves up to ~lr per
    update. So: none off by more than a few updates, nearly all equal to 1e-6."""
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 3e-4  # 3 x lr
    off = sum(((a[k] - b[k]).abs() > 1e-6).sum().item() for k in a)
    assert off <= 2e-3 * sum(v.numel() for v in a.values())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ddp")
    single = _train([*TINY, "--outdir", str(tmp / "single")], tmp)
    assert single.returncode == 0, single.stderr
    two = _train([*TINY, "--outdir", str(tmp / "two")], tmp, procs=2)
    assert two.returncode == 0, two.stderr
    (tmp / "two.out").write_text(two.stdout)
    return tmp


def test_two_processes_end_in_sync_and_equal_one_process(runs: Path) -> None:
    out = (runs / "two.out").read_text()
    assert "2 ranks in sync: identical weights" in out
    assert out.count("run folder:") == 1  # rank 0 speaks for the run
    two = runs / "two" / "00001-tiny"
    assert not (runs / "two" / "00002-tiny").exists()  # one run folder, made by rank 0
    assert len((two / "stats.jsonl").read_text().splitlines()) == 5  # logged once per step
    final = _weights(two / "checkpoints" / "step-0000010")
    reference = _weights(runs / "single" / "00001-tiny" / "checkpoints" / "step-0000010")
    _assert_same_training(final, reference)
    assert any(not torch.equal(final[k], reference[k]) for k in final)  # two real processes


def test_a_two_process_checkpoint_resumes_in_one_process(runs: Path) -> None:
    run = runs / "resumed" / "00001-tiny"
    shutil.copytree(runs / "two" / "00001-tiny", run)
    shutil.rmtree(run / "checkpoints" / "step-0000010")
    proc = _train(["--quiet", "--resume", str(run / "checkpoints" / "step-0000005")], runs)
    assert proc.returncode == 0, proc.stderr
    resumed = _weights(run / "checkpoints" / "step-0000010")
    reference = _weights(runs / "single" / "00001-tiny" / "checkpoints" / "step-0000010")
    _assert_same_training(resumed, reference)


def test_a_global_batch_that_does_not_split_is_refused(tmp_path: Path) -> None:
    proc = _train([*TINY, "--set", "train.batch_size=5", "--outdir", str(tmp_path)], tmp_path, 2)
    assert proc.returncode != 0
    assert "must be divisible by the 2 processes" in proc.stderr + proc.stdout
    assert not list(tmp_path.glob("*-tiny"))


V2_NETS = ("G", "F", "E", "D", "G_ema", "F_ema", "E_ema")


def test_v2_two_processes_end_in_sync_and_equal_one_process(tmp_path: Path) -> None:
    """StarGAN v2 under torchrun: four networks through DDP, the running averages updated
    on every rank from identical weights; bf16 autocast on the way (the CPU default)."""
    args = ["--preset", "tiny-v2", "--quiet", "--set", "train.threads=1", "--precision", "bf16"]
    single = _train([*args, "--outdir", str(tmp_path / "single")], tmp_path)
    assert single.returncode == 0, single.stderr
    two = _train([*args, "--outdir", str(tmp_path / "two")], tmp_path, procs=2)
    assert two.returncode == 0, two.stderr
    assert "2 ranks in sync: identical weights (G, F, E, D, G_ema, F_ema, E_ema)" in two.stdout
    last = Path("00001-tiny-v2", "checkpoints", "step-0000010")
    final = _weights(tmp_path / "two" / last, V2_NETS)
    reference = _weights(tmp_path / "single" / last, V2_NETS)
    assert max((final[k] - reference[k]).abs().max().item() for k in final) < 5e-3  # bf16
    assert any(not torch.equal(final[k], reference[k]) for k in final)


def test_ddp_is_told_of_the_w_hpf_generators_unused_shortcuts(tmp_path: Path) -> None:
    """G with w_hpf > 0 builds the official decoder's 1x1 shortcuts and never uses them:
    DDP must find unused parameters there, or its second iteration fails."""
    import torch.distributed as dist

    from stargan.models.v2 import build_v2
    from stargan.train.distributed import wrap

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        G = build_v2(img_size=32, num_domains=2, w_hpf=1, base_dim=8, mapping_dim=16)["G"]
        x, s = torch.randn(2, 3, 32, 32), torch.randn(2, 64)
        masks = [torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)]
        world = World(0, 2)  # wrap only asks whether the world is distributed
        told = wrap(G, world, torch.device("cpu"), find_unused=True)
        for _ in range(2):
            told(x, s, masks=masks).mean().backward()
        untold = wrap(G, world, torch.device("cpu"))
        untold(x, s, masks=masks).mean().backward()
        with pytest.raises(RuntimeError, match="finished reduction"):
            untold(x, s, masks=masks).mean().backward()
    finally:
        dist.destroy_process_group()


def test_world_shards_the_global_batch() -> None:
    rows = [World(rank, 4).shard(16) for rank in range(4)]
    assert [(s.start, s.stop) for s in rows] == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert World().shard(16) == slice(0, 16)
    with pytest.raises(StarGANError, match="divisible"):
        World(0, 3).local_batch(16)


def test_world_from_torchrun_environment() -> None:
    assert world_from_env({}) == World()
    world = world_from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert (world.rank, world.size, world.is_main, world.distributed) == (2, 4, False, True)
    assert world_from_env({"WORLD_SIZE": "1", "RANK": "0"}) == World()
