"""cnnlib.numpy.optim: the schedules of lecture 08 (warm-up, cosine with restarts) against their
closed forms and torch.optim.lr_scheduler, and update_ratio."""

import functools
import math

import numpy as np
import pytest
import torch

from cnnlib.numpy import optim


def _torch_rates(make_scheduler, lr0, epochs):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    scheduler = make_scheduler(opt)
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return rates


def test_linear_warmup_closed_form():
    rates = [optim.linear_warmup(0.4, e, warmup_epochs=4, start_factor=0.25) for e in range(7)]
    assert rates == pytest.approx([0.1, 0.175, 0.25, 0.325, 0.4, 0.4, 0.4], rel=1e-15)
    assert optim.linear_warmup(1.0, 0.5, warmup_epochs=2, start_factor=0.1) == pytest.approx(
        0.1 + 0.9 * 0.25, rel=1e-15)  # fractional epochs: the warm-up per iteration
    assert optim.linear_warmup(1.0, 0, warmup_epochs=3, start_factor=1.0) == 1.0


def test_linear_warmup_matches_torch_linear_lr():
    torch_rates = _torch_rates(lambda o: torch.optim.lr_scheduler.LinearLR(
        o, start_factor=0.05, end_factor=1.0, total_iters=6), 0.3, 10)
    ours = [optim.linear_warmup(0.3, e, warmup_epochs=6, start_factor=0.05) for e in range(10)]
    np.testing.assert_allclose(ours, torch_rates, rtol=1e-12)


def test_with_warmup_then_cosine_matches_torch_sequential_lr():
    warmup, total, lr0 = 3, 15, 0.2
    schedule = optim.with_warmup(functools.partial(optim.cosine_decay, total_epochs=total - warmup),
                                 warmup_epochs=warmup, start_factor=0.1)

    def make(o):
        first = torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=warmup)
        then = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total - warmup)
        return torch.optim.lr_scheduler.SequentialLR(o, [first, then], milestones=[warmup])

    torch_rates = _torch_rates(make, lr0, total + 1)
    ours = [schedule(lr0, e) for e in range(total + 1)]
    np.testing.assert_allclose(ours, torch_rates, rtol=0, atol=1e-12 * lr0)
    assert "with_warmup(cosine_decay" in schedule.__name__
    # the peak is lr0, reached when the warm-up ends
    assert schedule(lr0, warmup) == pytest.approx(lr0) and max(ours) == pytest.approx(lr0)


def test_cosine_restarts_matches_torch():
    for period, mult in ((5, 1), (3, 2)):
        torch_rates = _torch_rates(lambda o, p=period, m=mult: (
            torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=p, T_mult=m,
                                                                 eta_min=0.001)), 0.1, 22)
        ours = [optim.cosine_restarts(0.1, e, period, mult, lr_min=0.001) for e in range(22)]
        np.testing.assert_allclose(ours, torch_rates, rtol=0, atol=1e-12)
    # restarts at 0, 3, 9, 21 for period 3 doubling: the rate is back at lr0 there
    for start in (0, 3, 9, 21):
        assert optim.cosine_restarts(0.1, start, 3, 2) == pytest.approx(0.1, rel=1e-15)
    assert optim.cosine_restarts(0.1, 1.5, 3, 2) == pytest.approx(0.05, rel=1e-12)


def test_new_schedule_errors_name_the_argument():
    with pytest.raises(ValueError, match="warmup_epochs must be > 0, got 0"):
        optim.linear_warmup(0.1, 1, 0)
    with pytest.raises(ValueError, match=r"start_factor must be in \(0, 1\]"):
        optim.linear_warmup(0.1, 1, 5, start_factor=0.0)
    with pytest.raises(TypeError, match="start_factor must be a number"):
        optim.linear_warmup(0.1, 1, 5, start_factor="small")
    with pytest.raises(ValueError, match="lr0 must be > 0"):
        optim.linear_warmup(0.0, 1, 5)
    with pytest.raises(TypeError, match="schedule must be a function"):
        optim.with_warmup(0.1, 5)
    with pytest.raises(ValueError, match="warmup_epochs must be > 0"):
        optim.with_warmup(optim.cosine_decay, -1)
    with pytest.raises(ValueError, match="period must be >= 1"):
        optim.cosine_restarts(0.1, 2, 0)
    with pytest.raises(TypeError, match="period_mult must be an int"):
        optim.cosine_restarts(0.1, 2, 5, 1.5)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        optim.cosine_restarts(0.1, -1, 5)


def test_update_ratio_by_hand():
    w = np.array([[3.0, 0.0], [0.0, 4.0]])  # norm 5
    assert optim.update_ratio(w, w + np.array([[0.0, 0.3], [0.4, 0.0]])) == pytest.approx(0.1)
    assert optim.update_ratio(w, w) == 0.0
    assert optim.update_ratio(np.zeros(3), np.zeros(3)) == 0.0
    assert optim.update_ratio(np.zeros(3), np.ones(3)) == math.inf
    assert math.isnan(optim.update_ratio(w, w * np.nan))  # NaN propagates
    # for plain SGD the ratio is learning_rate * |dw| / |w|
    rng = np.random.default_rng(0)
    w, dw = rng.standard_normal((20, 30)).astype(np.float32), rng.standard_normal((20, 30))
    next_w, _ = optim.sgd(w, dw.astype(np.float32), {"learning_rate": 1e-3})
    assert optim.update_ratio(w, next_w) == pytest.approx(
        1e-3 * np.linalg.norm(dw) / np.linalg.norm(w), rel=1e-4)  # float32 rounding


def test_update_ratio_errors():
    with pytest.raises(ValueError, match=r"next_w must have the shape of w \(2,\)"):
        optim.update_ratio(np.ones(2), np.ones(3))
    with pytest.raises(TypeError, match="w must be a floating-point array"):
        optim.update_ratio([1.0, 2.0], np.ones(2))
