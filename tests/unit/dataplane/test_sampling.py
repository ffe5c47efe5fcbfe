from __future__ import annotations

from dataplane.sampling import SamplingController


def test_doubles_under_loss_and_caps() -> None:
    control = SamplingController(max_n=8)
    frames = loss = 0
    steps = []
    for _ in range(5):
        frames += 1000
        loss += 500
        steps.append(control.update(loss, frames))
    assert steps == [2, 4, 8, None, None]
    assert control.n == 8


def test_small_loss_is_tolerated_and_calm_halves() -> None:
    control = SamplingController(calm_ticks=3)
    assert control.update(5, 10_000) is None  # 0.05 % loss: not overload
    assert control.update(2000, 20_000) == 2  # 20 % loss
    frames = 20_000
    results = []
    for _ in range(3):
        frames += 1000
        results.append(control.update(2000, frames))
    assert results == [None, None, 1]
    assert control.n == 1


def test_never_below_one() -> None:
    control = SamplingController(calm_ticks=1)
    for i in range(5):
        assert control.update(0, 1000 * (i + 1)) is None
    assert control.n == 1


def test_a_baseline_hides_loss_counted_before_this_process() -> None:
    """Pass-through feeds the kernel's ring_full, which lives as long as the pins: loss from
    before the dataplane started must not raise N at its first tick."""
    control = SamplingController()
    control.baseline(50_000, 0)
    assert control.update(50_000, 1000) is None
    assert control.update(50_500, 2000) == 2
