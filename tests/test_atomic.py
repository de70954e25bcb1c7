"""stargan.atomic: files are written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from stargan.atomic import atomic_path, write_bytes, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "model.safetensors"
    write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a fi")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.safetensors"]


def test_a_complete_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "config.json"  # parents are made
    write_text(target, "{}")
    write_text(target, '{"a": "é"}')
    assert target.read_text(encoding="utf-8") == '{"a": "é"}'
    with atomic_path(target, suffix=".npy") as tmp:
        assert tmp.name.endswith(".npy") and tmp.parent == target.parent
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x"
    assert sorted(p.name for p in target.parent.iterdir()) == ["config.json"]
