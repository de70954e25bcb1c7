"""Losses against hand-computed values (paper eqs. 2-8)."""

from __future__ import annotations

import math

import pytest
import torch

from stargan.losses import classification_loss, d_loss, g_loss, gradient_penalty


def _bce(logit: float, target: float) -> float:
    p = 1.0 / (1.0 + math.exp(-logit))
    return -(target * math.log(p) + (1.0 - target) * math.log(1.0 - p))


def test_classification_multi_label_sums_attributes_averages_batch() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], dtype=torch.float64)
    c = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    expected = (
        sum(_bce(z, t) for z, t in zip(logits[0].tolist(), c[0].tolist(), strict=True))
        + sum(_bce(z, t) for z, t in zip(logits[1].tolist(), c[1].tolist(), strict=True))
    ) / 2
    got = classification_loss(logits, c, "multi")
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # i.e. mean over attributes times the number of attributes, not the mean
    mean_bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, c)
    assert got.item() == pytest.approx(3 * mean_bce.item(), rel=1e-12)


def test_classification_multi_label_known_value() -> None:
    # logit 0 -> p = 1/2 -> each attribute costs log 2, whatever the target.
    logits = torch.zeros(4, 5)
    c = torch.randint(0, 2, (4, 5)).float()
    assert classification_loss(logits, c, "multi").item() == pytest.approx(5 * math.log(2))


def test_classification_categorical_is_cross_entropy_of_argmax() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]], dtype=torch.float64)
    c = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)

    def nll(row: list[float], k: int) -> float:
        return -(row[k] - math.log(sum(math.exp(v) for v in row)))

    expected = (nll(logits[0].tolist(), 1) + nll(logits[1].tolist(), 0)) / 2
    got = classification_loss(logits, c, "categorical")
    assert got.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("w_scale", [0.3, 1.0, 2.5])
def test_gradient_penalty_of_linear_critic_is_exact(w_scale: float) -> None:
    # D(x) = <w, x> has gradient w everywhere, so the penalty is (||w|| - 1)^2 exactly.
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4, dtype=torch.float64)
    w = w / w.norm() * w_scale
    x_hat = torch.randn(5, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    d_src = (x_hat * w).flatten(1).sum(1)  # [N]
    gp = gradient_penalty(d_src, x_hat)
    assert gp.item() == pytest.approx((w_scale - 1.0) ** 2, abs=1e-12)


def test_gradient_penalty_is_per_sample_and_differentiable() -> None:
    # Per-sample critic slopes 2 and 0.5 -> ((2-1)^2 + (0.5-1)^2) / 2 = 0.625; a penalty
    # on the whole batch's gradient norm (sqrt(4.25)) would give a different number.
    x_hat = torch.ones(2, 1, 1, 1, dtype=torch.float64, requires_grad=True)
    slopes = torch.tensor([2.0, 0.5], dtype=torch.float64, requires_grad=True)
    d_src = x_hat.flatten() * slopes  # [N]
    gp = gradient_penalty(d_src, x_hat)
    assert gp.item() == pytest.approx(0.625)
    # create_graph=True: the penalty back-propagates to the critic's parameters.
    gp.backward()
    assert slopes.grad.tolist() == pytest.approx([1.0, -0.5])  # d/ds (s-1)^2 / 2


def test_d_loss_composes_parts() -> None:
    torch.manual_seed(1)
    d_src_real = torch.randn(4, 1, 2, 2, requires_grad=True)
    d_src_fake = torch.randn(4, 1, 2, 2)
    d_cls_real = torch.randn(4, 3)
    c_org = torch.randint(0, 2, (4, 3)).float()
    gp = torch.tensor(0.7)
    loss, parts = d_loss(d_src_real, d_cls_real, c_org, d_src_fake, gp, "multi", 2.0, 10.0)

    cls = classification_loss(d_cls_real, c_org, "multi")
    expected = -d_src_real.mean() + d_src_fake.mean() + 2.0 * cls + 10.0 * 0.7
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(parts) == {"D/loss_real", "D/loss_fake", "D/loss_cls", "D/loss_gp", "D/loss"}
    assert parts["D/loss_real"].item() == pytest.approx(-d_src_real.mean().item())
    assert parts["D/loss_fake"].item() == pytest.approx(d_src_fake.mean().item())
    assert parts["D/loss_cls"].item() == pytest.approx(cls.item())
    assert parts["D/loss_gp"].item() == pytest.approx(0.7)
    assert parts["D/loss"].item() == pytest.approx(loss.item())
    assert loss.requires_grad
    assert all(not v.requires_grad for v in parts.values())


def test_g_loss_composes_parts() -> None:
    torch.manual_seed(2)
    d_src_fake = torch.randn(4, 1, 2, 2, requires_grad=True)
    d_cls_fake = torch.randn(4, 3)
    c_trg = torch.eye(3)[[0, 2, 1, 0]]
    x_real = torch.zeros(4, 3, 2, 2)
    x_rec = torch.full((4, 3, 2, 2), 0.25)  # L1 reconstruction error 0.25 per pixel
    loss, parts = g_loss(d_src_fake, d_cls_fake, c_trg, x_real, x_rec, "categorical", 1.5, 10.0)

    cls = torch.nn.functional.cross_entropy(d_cls_fake, torch.tensor([0, 2, 1, 0]))
    expected = -d_src_fake.mean() + 1.5 * cls + 10.0 * 0.25
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(parts) == {"G/loss_fake", "G/loss_cls", "G/loss_rec", "G/loss"}
    assert parts["G/loss_fake"].item() == pytest.approx(-d_src_fake.mean().item())
    assert parts["G/loss_cls"].item() == pytest.approx(cls.item())
    assert parts["G/loss_rec"].item() == pytest.approx(0.25)
    assert parts["G/loss"].item() == pytest.approx(loss.item())
    assert all(not v.requires_grad for v in parts.values())
    loss.backward()  # the returned loss still carries the graph
    assert d_src_fake.grad is not None
    assert torch.allclose(d_src_fake.grad, torch.full_like(d_src_fake, -1 / 16))
