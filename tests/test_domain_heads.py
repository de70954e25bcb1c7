"""``model.d_domain_heads``: D_src with one real/fake map per label value, an image judged
by the maps its labels pick; in D, the training losses, config checks and model folders."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from stargan.errors import StarGANError
from stargan.export import export_model
from stargan.models.v1 import Discriminator, src_for_labels
from stargan.presets import get_preset
from stargan.train import prepare_config
from stargan.translate import Translator
from test_joint import _joint_tiny
from test_joint import _trainer as _joint_trainer
from test_train import _trainer


def test_each_label_value_picks_its_own_map() -> None:
    out_src = torch.arange(2 * 3, dtype=torch.float32).view(1, 6, 1, 1).repeat(2, 1, 2, 2)
    # maps: on = 0, 1, 2; off = 3, 4, 5
    c = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    got = src_for_labels(out_src, c, slice(0, 3))
    assert got.shape == (2, 1, 2, 2)
    assert torch.allclose(got[0], torch.full((1, 2, 2), (0 + 4 + 2) / 3))
    assert torch.allclose(got[1], torch.full((1, 2, 2), (3 + 4 + 5) / 3))
    # a joint batch's dataset owns some columns only: the others' maps are not used
    assert torch.allclose(src_for_labels(out_src, c, slice(1, 3))[0], torch.full((1, 2, 2), 3.0))
    one = torch.randn(2, 1, 2, 2)
    assert src_for_labels(one, c, slice(0, 3)) is one  # the paper's shared head untouched


def test_the_discriminator_grows_the_maps_only_when_asked() -> None:
    x = torch.randn(2, 3, 16, 16)
    plain, heads = Discriminator(16, 5, 8, 2), Discriminator(16, 5, 8, 2, domain_heads=True)
    assert plain(x)[0].shape == (2, 1, 4, 4) and heads(x)[0].shape == (2, 10, 4, 4)
    assert plain(x)[1].shape == heads(x)[1].shape == (2, 5)


def _cfg(base=None, **train):
    sets = ["model.d_domain_heads=true", "loss.adv=ns-r1"]
    cfg = prepare_config(base or get_preset("tiny"), sets)
    return replace(cfg, train=replace(cfg.train, **train))


def test_training_moves_the_maps_the_labels_pick(tmp_path: Path) -> None:
    cfg = _cfg()
    tr = _trainer(cfg, tmp_path / "run")
    weight = tr.D.conv_src.weight
    assert weight.shape[0] == 2 * cfg.model.c_dim
    before = weight.detach().clone()
    for _ in range(cfg.optim.n_critic):
        parts = tr.train_step()
    assert all(torch.isfinite(v).all() for v in parts.values())
    moved = (weight.detach() - before).flatten(1).abs().sum(1)
    assert (moved > 0).all()  # every map judged some image in these batches


def test_a_joint_run_trains_with_the_heads(tmp_path: Path) -> None:
    cfg = _cfg(_joint_tiny())
    tr = _joint_trainer(cfg, tmp_path / "run")
    assert tr.D.conv_src.weight.shape[0] == 2 * cfg.model.c_dim  # both datasets' labels
    for _ in range(2 * cfg.optim.n_critic):
        parts = tr.train_step()
    assert all(torch.isfinite(v).all() for v in parts.values())


def test_a_model_folder_keeps_the_option(tmp_path: Path) -> None:
    cfg = _cfg(num_iters=4, num_iters_decay=2, ckpt_every=4)
    _trainer(cfg, tmp_path / "run").fit(progress=False)
    model = export_model(tmp_path / "run", tmp_path / "model")
    tr = Translator.from_pretrained(model, precision="fp32")
    assert tr.model_cfg.d_domain_heads and tr.D is not None
    x = tr.preprocess(torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8))
    assert tr.apply(x, "Male=1").shape == (2, 3, 16, 16)  # D_cls estimates the labels


def test_the_heads_need_the_bounded_loss() -> None:
    """With the WGAN-GP the maps diverged on CelebA with every kind of targets
    (docs/quality.md): the option needs loss.adv=ns-r1."""
    for targets in ("permute", "single", "mixed"):
        sets = ["model.d_domain_heads=true", f"train.targets={targets}"]
        with pytest.raises(StarGANError, match="needs loss.adv=ns-r1"):
            prepare_config(get_preset("tiny"), sets)
        assert prepare_config(get_preset("tiny"), [*sets, "loss.adv=ns-r1"]).model.d_domain_heads
    with pytest.raises(StarGANError, match="needs loss.adv=ns-r1"):
        prepare_config(get_preset("celeba-subset-v1"), ["model.d_domain_heads=true"])


def test_v2_refuses_the_option() -> None:
    with pytest.raises(StarGANError, match="d_domain_heads"):
        prepare_config(get_preset("tiny-v2"), ["model.d_domain_heads=true"])
