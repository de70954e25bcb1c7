"""Learning-rate schedule: a pure function of the iteration index."""

from __future__ import annotations


def linear_decay_lr(base_lr: float, step: int, num_iters: int, num_iters_decay: int) -> float:
    """Learning rate for iteration ``step`` (0-based) of ``num_iters``.

    Constant for the first ``num_iters - num_iters_decay`` iterations, then linear down to
    exactly 0 at the last iteration (``step == num_iters - 1``), as the paper says. (The
    official code subtracts ``lr / num_iters_decay`` every 1000 iterations from the
    current lr and ends at 9.99e-5 for a base of 1e-4.)
    """
    decay_start = num_iters - num_iters_decay
    if step < decay_start or num_iters_decay == 0:
        return base_lr
    span = num_iters - 1 - decay_start
    if span <= 0:
        return 0.0
    return base_lr * max(0.0, (num_iters - 1 - step) / span)
