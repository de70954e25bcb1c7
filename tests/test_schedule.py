"""Learning-rate schedule: linear decay to zero over the last num_iters_decay iterations."""

from __future__ import annotations

import pytest

from stargan.train.schedule import linear_decay_lr


def test_constant_before_decay_starts() -> None:
    for step in (0, 1, 499, 599):
        assert linear_decay_lr(2e-4, step, 1000, 400) == 2e-4


def test_linear_after_decay_start_and_zero_at_last_step() -> None:
    base, n, decay = 1.0, 11, 6  # decay from step 5 to step 10 (= n - 1), 5 equal steps
    lrs = [linear_decay_lr(base, s, n, decay) for s in range(n)]
    assert lrs[:6] == [1.0] * 6
    assert lrs[5:] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2, 0.0])
    assert lrs[-1] == 0.0  # exactly zero, not a rounding residue


def test_strictly_decreasing_by_equal_steps_in_the_decay_phase() -> None:
    n, decay = 200, 100
    lrs = [linear_decay_lr(1e-4, s, n, decay) for s in range(n - decay, n)]
    diffs = [a - b for a, b in zip(lrs, lrs[1:], strict=False)]
    assert all(d > 0 for d in diffs)
    assert max(diffs) == pytest.approx(min(diffs), rel=1e-9)
    assert diffs[0] == pytest.approx(1e-4 / (decay - 1))


def test_never_negative_even_past_the_end() -> None:
    for step in range(0, 30):
        assert linear_decay_lr(1e-3, step, 20, 10) >= 0.0
    assert linear_decay_lr(1e-3, 25, 20, 10) == 0.0


def test_no_decay_means_constant() -> None:
    assert {linear_decay_lr(3e-4, s, 50, 0) for s in range(60)} == {3e-4}


def test_edge_cases() -> None:
    # Decay over the whole run: starts at base, ends at 0.
    assert linear_decay_lr(1.0, 0, 5, 5) == 1.0
    assert linear_decay_lr(1.0, 4, 5, 5) == 0.0
    # A decay phase of a single iteration: that iteration is the last, so lr 0.
    assert linear_decay_lr(1.0, 8, 10, 1) == 1.0
    assert linear_decay_lr(1.0, 9, 10, 1) == 0.0


def test_paper_schedule_versus_official_code() -> None:
    """The paper: lr decays linearly to 0 over the last 100k of 200k iterations. The
    official solver instead does ``lr -= base_lr / num_iters_decay`` every 1000 iterations
    in the second half, which removes only 100 * 1e-9 = 1e-7 and ends near 9.99e-5.
    This schedule follows the paper; the official rule is computed here to document that."""
    base, n, decay, update_step = 1e-4, 200_000, 100_000, 1000

    official = base
    for i in range(n):
        if (i + 1) % update_step == 0 and (i + 1) > (n - decay):
            official -= base / decay
    assert official == pytest.approx(9.99e-5, rel=1e-9)

    assert linear_decay_lr(base, n - decay - 1, n, decay) == base
    halfway = n - decay + (decay - 1) // 2
    assert linear_decay_lr(base, halfway, n, decay) == pytest.approx(base / 2, rel=1e-4)
    assert linear_decay_lr(base, n - 1, n, decay) == 0.0
    assert linear_decay_lr(base, n - 1, n, decay) < official / 1000
