"""Overload control: sample inside XDP before the ring to user space overflows.

A consumer that falls behind loses far more than its CPU share (the ring alternates between
full and empty; platform notes), so when a tick shows ring loss the dataplane asks the XDP
program to hand over only 1 in N frames, doubling N while loss persists and halving it after a
few clean ticks. Tap mode: the rest pass and are counted `sampled_out` (reported as loss with
its source). Pass-through mode: the rest ride on the next record's weight, so flow totals stay
exact. Kernel counters stay exact whatever N is: sampling only thins what reaches user space.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SamplingController"]


@dataclass(slots=True)
class SamplingController:
    max_n: int = 64
    loss_ratio: float = 0.01  # ring loss above 1 % of a tick's frames counts as overload
    calm_ticks: int = 20  # clean ticks before halving N
    n: int = 1
    _calm: int = 0
    _last_loss: int = 0
    _last_frames: int = 0

    def baseline(self, ring_loss_total: int, frames_total: int) -> None:
        """Totals as they stand now, so the first update sees only what grows after it."""
        self._last_loss, self._last_frames = ring_loss_total, frames_total

    def update(self, ring_loss_total: int, frames_total: int) -> int | None:
        """Feed cumulative totals once per tick; returns a new N to set, or None to keep it."""
        loss = max(0, ring_loss_total - self._last_loss)
        frames = max(0, frames_total - self._last_frames)
        self._last_loss, self._last_frames = ring_loss_total, frames_total
        if loss > 0 and loss > self.loss_ratio * max(1, frames + loss):
            self._calm = 0
            if self.n < self.max_n:
                self.n = min(self.max_n, self.n * 2)
                return self.n
            return None
        self._calm += 1
        if self.n > 1 and self._calm >= self.calm_ticks:
            self._calm = 0
            self.n //= 2
            return self.n
        return None
