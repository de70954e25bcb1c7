"""Training loop: finite losses, exact resume, crash safety, run folder contents."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from stargan.data import load_dataset
from stargan.errors import StarGANError
from stargan.presets import get_preset
from stargan.train import V1Trainer, prepare_config, run_training
from stargan.train.checkpoint import list_checkpoints


def _tiny_cfg(**train):
    cfg = prepare_config(get_preset("tiny"))
    return replace(cfg, train=replace(cfg.train, **train))


def _trainer(cfg, run_dir: Path) -> V1Trainer:
    run_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(cfg.data, cfg.model.image_size, "train")
    return V1Trainer(cfg, run_dir, data, data)


def _weights(tr: V1Trainer) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v.clone() for k, v in tr.G.state_dict().items()}
    out |= {f"D.{k}": v.clone() for k, v in tr.D.state_dict().items()}
    for name, opt in tr.optims.items():
        for i, st in enumerate(opt.state_dict()["state"].values()):
            out |= {f"{name}.opt{i}.{k}": torch.as_tensor(v).clone() for k, v in st.items()}
    return out


def straight_and_resumed(cfg, tmp_path: Path, until: int) -> tuple[V1Trainer, V1Trainer]:
    """A run trained straight through, and one stopped at ``until`` and resumed from disk."""
    straight = _trainer(cfg, tmp_path / "a")
    straight.fit(progress=False)
    first = _trainer(cfg, tmp_path / "b")
    first.fit(progress=False, until=until)
    resumed = _trainer(cfg, tmp_path / "b")
    resumed.resume(list_checkpoints(tmp_path / "b" / "checkpoints")[-1])
    resumed.fit(progress=False)
    return straight, resumed


def test_steps_give_finite_losses_and_count_g_updates(tmp_path: Path) -> None:
    tr = _trainer(_tiny_cfg(), tmp_path / "run")
    parts = [tr.train_step() for _ in range(10)]
    assert tr.state.step == 10 and tr.state.g_updates == 10 // tr.cfg.optim.n_critic
    for p in parts:
        assert all(torch.isfinite(v) for v in p.values())
    assert sum("G/loss" in p for p in parts) == 2  # G updates on iterations 5 and 10 only


def test_d_step_changes_only_d_and_g_step_only_g(tmp_path: Path) -> None:
    tr = _trainer(_tiny_cfg(), tmp_path / "run")
    g0 = {k: v.clone() for k, v in tr.G.state_dict().items()}
    tr.train_step()  # iteration 1: D only
    assert all(torch.equal(g0[k], v) for k, v in tr.G.state_dict().items())


def test_learning_rate_reaches_exactly_zero_at_last_iteration(tmp_path: Path) -> None:
    cfg = _tiny_cfg(num_iters=10, num_iters_decay=5)
    tr = _trainer(cfg, tmp_path / "run")
    lrs = []
    for _ in range(10):
        tr.train_step()
        lrs.append(tr.g_opt.param_groups[0]["lr"])
    assert lrs[:6] == [cfg.optim.g_lr] * 6
    assert lrs[-1] == 0.0
    assert all(a > b for a, b in zip(lrs[5:], lrs[6:], strict=False))


def test_resume_from_disk_is_bit_identical(tmp_path: Path) -> None:
    cfg = _tiny_cfg(num_iters=10, num_iters_decay=5, ckpt_every=3)
    straight = _trainer(cfg, tmp_path / "a")
    straight.fit(progress=False)

    first = _trainer(cfg, tmp_path / "b")
    first.fit(progress=False, until=6)
    ckpt = list_checkpoints(tmp_path / "b" / "checkpoints")[-1]
    assert ckpt.name == "step-0000006"
    resumed = _trainer(cfg, tmp_path / "b")
    resumed.resume(ckpt)
    assert resumed.state.step == 6 and resumed.state.g_updates == 1
    resumed.fit(progress=False)

    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_run_folder_has_config_stats_samples_and_keeps_last_checkpoints(tiny_run: Path) -> None:
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["name"] == "tiny" and cfg["model"]["c_dim"] == 5
    lines = [json.loads(x) for x in (tiny_run / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4, 6, 8, 10]
    assert lines[-1]["g_updates"] == 2 and lines[-1]["lr/G"] == 0.0
    assert all(r["D/loss"] == r["D/loss"] for r in lines)  # not NaN
    ckpts = list_checkpoints(tiny_run / "checkpoints")
    assert [c.name for c in ckpts] == ["step-0000005", "step-0000010"]
    grid = tiny_run / "samples" / "step-0000010.png"
    from PIL import Image

    with Image.open(grid) as im:  # 8 rows x (input + 5 domains) of 16 px + 2 px padding
        assert im.size == (6 * 18 + 2, 8 * 18 + 2)


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import stargan.train.checkpoint as ck
    from stargan.presets import get_preset
    from stargan.train import run_training

    original = ck._write_tensors

    def crash_on_second_checkpoint(tensors, path):
        if "step-0000010" in str(path.parent) and path.name == "D.safetensors":
            path.write_bytes(b"half a file")
            os.kill(os.getpid(), signal.SIGKILL)
        original(tensors, path)

    ck._write_tensors = crash_on_second_checkpoint
    run_training(get_preset("tiny"), Path(sys.argv[1]), progress=False,
                 overrides=["train.num_iters=15", "train.num_iters_decay=5", "train.threads=1"])
    """
)


def test_sigkill_while_checkpointing_resumes_from_last_complete(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    assert [c.name for c in list_checkpoints(run_dir / "checkpoints")] == ["step-0000005"]

    overrides = ["train.num_iters=15", "train.num_iters_decay=5", "train.threads=1"]
    resumed = run_training(
        get_preset("tiny"), tmp_path / "runs", resume="latest", overrides=overrides, progress=False
    )
    assert resumed == run_dir
    steps = [json.loads(x)["step"] for x in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 15  # steps 6-10 logged once, not twice
    straight = run_training(
        get_preset("tiny"), tmp_path / "straight", overrides=overrides, progress=False
    )
    from safetensors.torch import load_file

    for net in ("G", "D"):
        a = load_file(str(list_checkpoints(run_dir / "checkpoints")[-1] / f"{net}.safetensors"))
        b = load_file(str(list_checkpoints(straight / "checkpoints")[-1] / f"{net}.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not list((run_dir / "checkpoints").glob(".tmp-*"))


def test_logs_of_a_resumed_run_are_those_of_an_uninterrupted_one(tmp_path, monkeypatch) -> None:
    """Ctrl-C between two log steps, then resume: stats.jsonl holds the same rows (the row
    after the resume averages the same steps, G's losses included) and the same weights."""
    import json
    import os
    import signal

    cfg = _tiny_cfg(num_iters=12, num_iters_decay=4, log_every=4, ckpt_every=12)
    straight = _trainer(cfg, tmp_path / "a")
    straight.fit(progress=False)
    stopped = _trainer(cfg, tmp_path / "b")
    step = stopped.train_step

    def step_then_ctrl_c():
        parts = step()
        if stopped.state.step == 6:  # between the log steps 4 and 8, after a G step (5)
            os.kill(os.getpid(), signal.SIGINT)
        return parts

    monkeypatch.setattr(stopped, "train_step", step_then_ctrl_c)
    stopped.fit(progress=False)
    assert stopped.state.step == 6
    resumed = _trainer(cfg, tmp_path / "b")
    resumed.resume(list_checkpoints(tmp_path / "b" / "checkpoints")[-1])
    resumed.fit(progress=False)

    def rows(run: str) -> list[dict]:
        lines = (tmp_path / run / "stats.jsonl").read_text().splitlines()
        drop = ("time_s", "sec_per_iter")
        return [{k: v for k, v in json.loads(x).items() if k not in drop} for x in lines]

    assert [r["step"] for r in rows("b")] == [4, 8, 12]
    assert rows("b") == rows("a") and "G/loss" in rows("b")[1]
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    rng_a, rng_b = (
        torch.load(list_checkpoints(tmp_path / r / "checkpoints")[-1] / "rng.pt")["torch"]
        for r in "ab"
    )
    assert torch.equal(rng_a, rng_b)


def test_resume_latest_without_runs_is_a_clear_error(tmp_path: Path) -> None:
    from stargan.errors import StarGANError

    with pytest.raises(StarGANError, match="no run with a checkpoint"):
        run_training(get_preset("tiny"), tmp_path, resume="latest", progress=False)


def _official_classification_loss(logit, target, kind: str) -> torch.Tensor:
    """solver.py classification_loss, transcribed (CelebA: BCE summed / batch; RaFD: CE)."""
    if kind == "multi":
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, target, reduction="sum")
        return bce / logit.size(0)
    return torch.nn.functional.cross_entropy(logit, target.argmax(1))


def _official_gradient_penalty(y, x) -> torch.Tensor:
    """solver.py gradient_penalty, transcribed."""
    weight = torch.ones(y.size())
    dydx = torch.autograd.grad(
        outputs=y,
        inputs=x,
        grad_outputs=weight,
        retain_graph=True,
        create_graph=True,
        only_inputs=True,
    )[0]
    dydx = dydx.view(dydx.size(0), -1)
    dydx_l2norm = torch.sqrt(torch.sum(dydx**2, dim=1))
    return torch.mean((dydx_l2norm - 1) ** 2)


def _official_order_step(tr: V1Trainer) -> None:
    """One iteration of the official solver's train(), its lines transcribed (nothing from
    stargan.losses); only the batch, the targets and alpha's random numbers come from our
    trainer, so both see the same data."""
    cfg, i, kind = tr.cfg, tr.state.step, tr.spec.kind
    lambda_cls, lambda_gp, lambda_rec = cfg.loss.lambda_cls, cfg.loss.lambda_gp, cfg.loss.lambda_rec
    tr.set_lr(i)
    b, gen = tr.make_batch(i)
    x_real, c_org, c_trg = b.x_real, b.c_org, b.c_trg
    # 2. Train the discriminator
    out_src, out_cls = tr.D(x_real)
    d_loss_real = -torch.mean(out_src)
    d_loss_cls = _official_classification_loss(out_cls, c_org, kind)
    x_fake = tr.G(x_real, c_trg)
    out_src, out_cls = tr.D(x_fake.detach())
    d_loss_fake = torch.mean(out_src)
    alpha = torch.rand(x_real.size(0), 1, 1, 1, generator=gen)
    x_hat = (alpha * x_real.data + (1 - alpha) * x_fake.data).requires_grad_(True)
    out_src, _ = tr.D(x_hat)
    d_loss_gp = _official_gradient_penalty(out_src, x_hat)
    d_loss = d_loss_real + d_loss_fake + lambda_cls * d_loss_cls + lambda_gp * d_loss_gp
    tr.g_opt.zero_grad()
    tr.d_opt.zero_grad()
    d_loss.backward()
    tr.d_opt.step()
    # 3. Train the generator
    if (i + 1) % cfg.optim.n_critic == 0:
        x_fake = tr.G(x_real, c_trg)
        out_src, out_cls = tr.D(x_fake)
        g_loss_fake = -torch.mean(out_src)
        g_loss_cls = _official_classification_loss(out_cls, c_trg, kind)
        x_reconst = tr.G(x_fake, c_org)
        g_loss_rec = torch.mean(torch.abs(x_real - x_reconst))
        g_loss = g_loss_fake + lambda_rec * g_loss_rec + lambda_cls * g_loss_cls
        tr.g_opt.zero_grad()
        tr.d_opt.zero_grad()
        g_loss.backward()
        tr.g_opt.step()
    tr.state.step += 1


@pytest.mark.parametrize("fast_kernels", [False, True], ids=["deterministic", "fast"])
def test_training_step_matches_the_official_solver(tmp_path: Path, fast_kernels: bool) -> None:
    """Equal weights after 10 iterations: with --deterministic (stock Adam and convolutions,
    as the official code runs) this is equality with the official solver's arithmetic."""
    cfg = _tiny_cfg(fast_kernels=fast_kernels)
    ours, official = _trainer(cfg, tmp_path / "a"), _trainer(cfg, tmp_path / "b")
    for _ in range(10):  # two G updates
        ours.train_step()
        _official_order_step(official)
    a, b = _weights(ours), _weights(official)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_logged_time_continues_across_a_resume(tmp_path: Path) -> None:
    import json

    from stargan.train.logging import StatsLogger

    (tmp_path / "stats.jsonl").write_text(json.dumps({"step": 5, "time_s": 100.0}) + "\n")
    logger = StatsLogger(tmp_path, tensorboard=False)
    logger.log(6, 1, {})
    last = json.loads((tmp_path / "stats.jsonl").read_text().splitlines()[-1])
    assert 100.0 <= last["time_s"] < 160.0


def test_single_targets_train_g_on_one_domain_changes(tmp_path: Path) -> None:
    cfg = prepare_config(get_preset("tiny"), ["train.targets=single"])
    tr = _trainer(cfg, tmp_path / "run")
    for step in range(3):
        batch, _ = tr.make_batch(step)
        spec = tr.layout.specs[batch.part]
        singles = [c for _, c in spec.single_changes(batch.c_org)]
        for i in range(batch.c_org.size(0)):
            assert any(torch.equal(batch.c_trg[i], c[i]) for c in singles)
        assert (batch.c_trg != batch.c_org).any(1).all()
    tr.train_step()  # and it trains
    with pytest.raises(StarGANError, match="train.targets must be one of"):
        prepare_config(get_preset("tiny"), ["train.targets=every"])
    with pytest.raises(StarGANError, match="StarGAN v1 options"):
        prepare_config(get_preset("tiny-v2"), ["train.targets=single"])


def test_target_weights_reach_the_trainer_and_are_checked(tmp_path: Path) -> None:
    sets = ["train.targets=single", "train.target_weights=Young=50, Male=1"]
    tr = _trainer(prepare_config(get_preset("tiny"), sets), tmp_path / "run")
    assert tr.target_weights == [{"Young": 50.0, "Male": 1.0}]
    young = tr.layout.specs[0].index("Young")
    batches = [tr.make_batch(step)[0] for step in range(4)]
    changed = torch.cat([b.c_trg != b.c_org for b in batches])  # [rows, domains]
    assert changed[:, young].float().mean() > 0.8  # 50 to 1 against each other change
    bad = prepare_config(get_preset("tiny"), ["train.targets=single", "train.target_weights=Old=2"])
    with pytest.raises(StarGANError, match="unknown domain.*Old.*valid: Black_Hair"):
        _trainer(bad, tmp_path / "bad")
    with pytest.raises(StarGANError, match="needs train.targets=single or mixed"):
        prepare_config(get_preset("tiny"), ["train.target_weights=Young=2"])
    for entry in ("Young", "Young=0", "Young=-1", "Young=x", "=2", "Young=inf", "Young=1e39"):
        with pytest.raises(StarGANError, match="expected NAME=W with W from 0.001 to 1000"):
            sets = ["train.targets=mixed", f"train.target_weights={entry}"]
            prepare_config(get_preset("tiny"), sets)
    with pytest.raises(StarGANError, match="names 'Young' twice"):
        prepare_config(
            get_preset("tiny"), ["train.targets=mixed", "train.target_weights=Young=2,Young=3"]
        )
    with pytest.raises(StarGANError, match="StarGAN v1 options"):
        prepare_config(get_preset("tiny-v2"), ["train.target_weights=cat=2"])
