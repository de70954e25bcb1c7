"""The real-face model shipped in the package (src/stargan/bundled/celeba): present, small,
half precision, documented, and translating its own real test faces (issue 17)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from safetensors import safe_open

import stargan
from stargan.bundled import bundled_root, list_bundled
from stargan.translate import Translator

FOLDER = bundled_root() / "celeba"
ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


@pytest.fixture(scope="module")
def model() -> Translator:
    return stargan.load("celeba")


@pytest.fixture(scope="module")
def samples() -> list[Image.Image]:
    return [Image.open(p).convert("RGB") for p in sorted((FOLDER / "samples").glob("*.jpg"))]


def test_it_ships_in_the_package_with_a_card_and_real_samples() -> None:
    (entry,) = [m for m in list_bundled() if m.name == "celeba"]
    assert "real CelebA faces, 64 px" in entry.summary
    card = (FOLDER / "card.md").read_text(encoding="utf-8")
    for needed in (
        "stargan train --preset celeba-bundled-v1",
        "target attribute accuracy",
        "## Limits",
        "non-commercial",
    ):
        assert needed in card, needed
    provenance = (FOLDER / "samples" / "README.md").read_text(encoding="utf-8")
    names = sorted(p.name for p in (FOLDER / "samples").glob("*.jpg"))
    assert len(names) == 8 and all(name in provenance for name in names)
    assert "partition 2 (test)" in provenance


def test_weights_are_half_precision_and_small() -> None:
    files = sorted(FOLDER.glob("*.safetensors"))
    assert sum(f.stat().st_size for f in files) < 25 * 2**20
    for f in files:
        with safe_open(str(f), "pt") as weights:
            dtypes = {weights.get_tensor(k).dtype for k in weights.keys()}  # noqa: SIM118
        assert torch.float16 in dtypes and torch.float32 not in dtypes, f.name


def test_loads_as_float32_with_the_five_attributes(model: Translator) -> None:
    assert model.image_size == 64 and list(model.spec.names) == ATTRS
    assert all(p.dtype == torch.float32 for p in model.G.parameters())


def test_translations_of_real_test_faces_carry_the_target(
    model: Translator, samples: list[Image.Image]
) -> None:
    """On its eight real test faces, its own D_cls reads the target in most single changes
    (black hair, the other sex): a model that learned something, not noise."""
    x = model.preprocess(samples)
    own = model.estimate_labels(x)
    changed = dict(model.all_domains(x))
    assert (model.estimate_labels(changed["Black_Hair"])[:, 0] == 1).sum() >= 6
    assert (model.estimate_labels(changed["Male"])[:, 3] != own[:, 3]).sum() >= 6
    assert 0.02 < (changed["Black_Hair"] - x).abs().mean() < 0.3  # changed, not replaced
