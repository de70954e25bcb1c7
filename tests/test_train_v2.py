"""StarGAN v2 training: the official order of operations, exact resume, EMA, sampling."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from stargan.config import validate
from stargan.data import load_dataset
from stargan.data.sampling import DomainIndex, random_resized_crop
from stargan.errors import StarGANError
from stargan.losses import v2 as losses_v2
from stargan.models.v2 import he_init_
from stargan.presets import get_preset
from stargan.train import prepare_config, run_training
from stargan.train.checkpoint import list_checkpoints
from stargan.train.v2 import TRAINED, V2Trainer


def _cfg(**train):
    cfg = prepare_config(get_preset("tiny-v2"))
    return replace(cfg, train=replace(cfg.train, **train))


def _trainer(cfg, run_dir: Path) -> V2Trainer:
    run_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(cfg.data, cfg.model.image_size, "train")
    return V2Trainer(cfg, run_dir, data, data)


def _weights(tr: V2Trainer) -> dict[str, torch.Tensor]:
    out = {
        f"{name}.{k}": v.clone()
        for name, net in tr.nets.items()
        for k, v in net.state_dict().items()
    }
    for name, opt in tr.optims.items():
        for i, st in enumerate(opt.state_dict()["state"].values()):
            out |= {f"{name}.opt{i}.{k}": torch.as_tensor(v).clone() for k, v in st.items()}
    return out


def _official_step(tr: V2Trainer) -> None:
    """The official solver's iteration written out plainly (core/solver.py): full graphs,
    every optimizer's gradients reset before each backward, EMA by torch.lerp."""
    cfg, step = tr.cfg, tr.state.step
    G, F, E, D = tr.G, tr.F, tr.E, tr.D
    b = tr.make_batch(step)
    lambda_ds = cfg.loss.lambda_ds * (1 - step / cfg.loss.ds_iter)

    def reset():
        for opt in tr.optims.values():
            opt.zero_grad()

    for use_latent in (True, False):
        x_real = b.x_real.clone().requires_grad_()
        out = D(x_real, b.y_org)
        loss_real = losses_v2.adversarial(out, True)
        (grad,) = torch.autograd.grad(out.sum(), x_real, create_graph=True)
        loss_reg = 0.5 * grad.pow(2).reshape(grad.size(0), -1).sum(1).mean()
        with torch.no_grad():
            s = F(b.z_trg, b.y_trg) if use_latent else E(b.x_ref, b.y_trg)
            x_fake = G(x_real, s)
        loss = loss_real + losses_v2.adversarial(D(x_fake, b.y_trg), False) + loss_reg
        reset()
        loss.backward()
        tr.optims["D"].step()
    for use_latent in (True, False):
        s_trg = F(b.z_trg, b.y_trg) if use_latent else E(b.x_ref, b.y_trg)
        x_fake = G(b.x_real, s_trg)
        loss_adv = losses_v2.adversarial(D(x_fake, b.y_trg), True)
        loss_sty = torch.mean(torch.abs(E(x_fake, b.y_trg) - s_trg))
        s_trg2 = F(b.z_trg2, b.y_trg) if use_latent else E(b.x_ref2, b.y_trg)
        x_fake2 = G(b.x_real, s_trg2).detach()
        loss_ds = torch.mean(torch.abs(x_fake - x_fake2))
        x_rec = G(x_fake, E(b.x_real, b.y_org))
        loss_cyc = torch.mean(torch.abs(x_rec - b.x_real))
        loss = loss_adv + loss_sty - lambda_ds * loss_ds + loss_cyc
        reset()
        loss.backward()
        for name in ("G", "F", "E") if use_latent else ("G",):
            tr.optims[name].step()
    for name in TRAINED:
        net, ema = tr.nets[name], tr.nets[f"{name}_ema"]
        for p, p_ema in zip(net.parameters(), ema.parameters(), strict=True):
            p_ema.data = torch.lerp(p.data, p_ema.data, cfg.optim.ema_beta)
    tr.state.step += 1


def test_training_step_matches_the_official_order_of_operations(tmp_path: Path) -> None:
    cfg = _cfg()
    ours, official = _trainer(cfg, tmp_path / "a"), _trainer(cfg, tmp_path / "b")
    for _ in range(3):
        parts = ours.train_step()
        _official_step(official)
    assert all(torch.isfinite(v) for v in parts.values())
    a, b = _weights(ours), _weights(official)
    assert a.keys() == b.keys()
    for k in a:  # lerp's two forms round differently: EMA weights within float eps
        assert torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-7), k
    for k in (k for k in a if "_ema" not in k):
        assert torch.equal(a[k], b[k]), k


def test_resume_from_disk_is_bit_identical(tmp_path: Path) -> None:
    cfg = _cfg(num_iters=6, ckpt_every=3)
    straight = _trainer(cfg, tmp_path / "a")
    straight.fit(progress=False)
    first = _trainer(cfg, tmp_path / "b")
    first.fit(progress=False, until=3)
    resumed = _trainer(cfg, tmp_path / "b")
    resumed.resume(list_checkpoints(tmp_path / "b" / "checkpoints")[-1])
    assert resumed.state.step == 3
    resumed.fit(progress=False)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and len(a) > 100
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_ema_copies_start_from_default_init_and_track_the_weights(tmp_path: Path) -> None:
    tr = _trainer(_cfg(), tmp_path / "run")
    w, w_ema = tr.G.from_rgb.weight, tr.nets["G_ema"].from_rgb.weight
    assert not torch.equal(w, w_ema)  # He init came after the copy
    fresh = he_init_(copy.deepcopy(tr.nets["G_ema"]))
    assert fresh.from_rgb.weight.std() > 1.5 * w_ema.std()  # He init is wider than default
    before = w_ema.detach().clone()
    tr.train_step()
    beta = tr.cfg.optim.ema_beta
    expected = beta * before + (1 - beta) * tr.G.from_rgb.weight.detach()
    assert torch.allclose(tr.nets["G_ema"].from_rgb.weight, expected, atol=1e-7)
    assert not any(p.requires_grad for p in tr.nets["G_ema"].parameters())


def test_diversity_weight_is_a_pure_linear_decay_to_zero() -> None:
    assert losses_v2.diversity_weight(2.0, 0, 100) == 2.0
    assert losses_v2.diversity_weight(2.0, 50, 100) == 1.0
    assert losses_v2.diversity_weight(2.0, 100, 100) == 0.0
    assert losses_v2.diversity_weight(2.0, 250, 100) == 0.0  # never negative


def test_balanced_sampling_and_reference_partners() -> None:
    domains = torch.tensor([0] * 90 + [1] * 10)  # 9:1 imbalance
    index = DomainIndex(domains, ("a", "b"))
    gen = torch.Generator().manual_seed(0)
    drawn = index.balanced(4000, gen)
    share = (domains[drawn] == 1).float().mean()
    assert 0.45 < share < 0.55
    partners = index.partners(drawn[:200], gen)
    assert torch.equal(domains[partners], domains[drawn[:200]])
    with pytest.raises(StarGANError, match="every domain"):
        DomainIndex(torch.zeros(5, dtype=torch.long), ("a", "b"))


def test_random_resized_crop() -> None:
    x = torch.rand(6, 3, 64, 64) * 2 - 1
    same = random_resized_crop(x, 0.0, torch.Generator().manual_seed(0))
    assert same is x
    a = random_resized_crop(x, 1.0, torch.Generator().manual_seed(1))
    b = random_resized_crop(x, 1.0, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert all(not torch.equal(a[i], x[i]) for i in range(6))  # every image cropped
    assert a.min() >= -1 and a.max() <= 1


def test_run_writes_v2_checkpoints_and_three_sample_grids(tmp_path: Path) -> None:
    run = run_training(get_preset("tiny-v2"), tmp_path, progress=False)
    ckpt = list_checkpoints(run / "checkpoints")[-1]
    names = {p.stem for p in ckpt.glob("*.safetensors")}
    assert names == {"G", "F", "E", "D", "G_ema", "F_ema", "E_ema"}
    grids = sorted(p.name for p in (run / "samples").glob("step-0000010-*.png"))
    assert grids == [
        "step-0000010-cycle.png",
        "step-0000010-latent.png",
        "step-0000010-reference.png",
    ]


def test_v2_refuses_multi_label_data_and_hpf_without_fan() -> None:
    cfg = get_preset("tiny-v2")
    with pytest.raises(StarGANError, match="categorical"):
        prepare_config(replace(cfg, data=replace(cfg.data, dataset="faces-attr")))
    with pytest.raises(StarGANError, match="FAN weights"):
        validate(replace(cfg, model=replace(cfg.model, w_hpf=1.0)))
    with pytest.raises(StarGANError, match="power of two"):
        validate(replace(cfg, model=replace(cfg.model, image_size=48)))


def test_faces_sex_labels_the_renders_by_sex_and_has_exact_counterfactuals() -> None:
    import numpy as np

    from stargan.data import builtin, faces

    data = builtin.load_builtin("faces-sex", "test", 32, 40)
    assert data.spec.names == ("female", "male") and data.spec.kind == "categorical"
    males = [faces.params_for(0, "test", i).male for i in range(40)]
    assert data.labels.argmax(1).tolist() == [int(m) for m in males]
    flipped = np.eye(2, dtype=np.float32)[[1 - int(m) for m in males[:4]]]
    truth, valid = builtin.counterfactual_images(0, "test", range(4), 32, data.spec, flipped)
    assert valid.all()
    for i in range(4):  # the other sex, every other parameter kept
        p = faces.params_for(0, "test", i)
        other = faces.counterfactual(p, attrs=_with_male(faces.attr_vector(p), not p.male))
        assert np.array_equal(truth[i], faces.render(other, 32))
        assert not np.array_equal(truth[i], data.images[i])


def _with_male(attrs, male: bool):
    from stargan.data import faces

    attrs = attrs.copy()
    attrs[faces.ATTR_NAMES.index("Male")] = float(male)
    return attrs
