"""The serving process freezes its start-up heap and raises the gen-0 threshold."""

from __future__ import annotations

import gc

from app.serving.run import GC_THRESHOLDS, tune_gc


def test_tune_gc_freezes_and_sets_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 1000  # this test process's modules, at least
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
