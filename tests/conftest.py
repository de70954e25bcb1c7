"""Shared fixtures: one render cache per test session, a tiny trained run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep renders and classifiers out of the user's ~/.cache, shared across tests; the
    evaluation weights (``stargan weights``) are read from where the user has them."""
    from stargan.weights import weights_dir

    os.environ.setdefault("STARGAN_WEIGHTS", str(weights_dir()))
    if "STARGAN_CACHE" not in os.environ:
        os.environ["STARGAN_CACHE"] = str(tmp_path_factory.mktemp("stargan-cache"))


def require_weights(*names: str) -> None:
    """Skip (saying what to run) when evaluation weights are missing; where
    ``STARGAN_REQUIRE_WEIGHTS=1`` (CI, after ``stargan weights``) fail instead."""
    from stargan.weights import weights_dir

    missing = [n for n in names if not (weights_dir() / n).exists()]
    if not missing:
        return
    message = f"weights {missing} missing in {weights_dir()}: run `stargan weights`"
    if os.environ.get("STARGAN_REQUIRE_WEIGHTS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    """Tiny tensors: intra-op threads cost more than the convolutions themselves (measured
    0.4 s vs 3 ms per forward of the tiny G on a busy 2-core machine)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _fp32_inference_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``precision="auto"`` (the loaders' default) runs bf16 on CPUs with native bf16, and many
    tests compare a model folder's outputs with its G called directly: here auto resolves to
    fp32 as on a CPU without bf16. tests/test_inference_precision.py tests the bf16 path and
    auto's choice (patching this back)."""
    import stargan.inference_precision

    monkeypatch.setattr(stargan.inference_precision, "native_bf16", lambda device: False)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 10-iteration run of the ``tiny`` preset (16 px faces)."""
    from stargan.presets import get_preset
    from stargan.train import run_training

    outdir = tmp_path_factory.mktemp("runs")
    return run_training(get_preset("tiny"), outdir, progress=False)


@pytest.fixture(scope="session")
def tiny_model(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stargan.export import export_model

    return export_model(tiny_run, tmp_path_factory.mktemp("model") / "tiny-model")
