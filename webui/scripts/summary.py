"""Print `NAME: N passed, N failed, N skipped` from a Vitest or Playwright JSON report.

    python3 webui/scripts/summary.py vitest webui/test-results/vitest.json
    python3 webui/scripts/summary.py playwright webui/test-results/playwright.json

Neither runner ends with that plain line, which CI reads; a missing or broken report counts
as one failure so it can never look green.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["counts", "main"]


def counts(kind: str, report: dict) -> tuple[int, int, int]:  # type: ignore[type-arg]
    if kind == "vitest":
        passed = int(report.get("numPassedTests", 0))
        failed = int(report.get("numFailedTests", 0)) + int(report.get("numRuntimeErrorTests", 0))
        skipped = int(report.get("numPendingTests", 0)) + int(report.get("numTodoTests", 0))
        if report.get("success") is False and failed == 0:
            failed = 1  # e.g. a file that failed to load, or unhandled errors
        return passed, failed, skipped
    stats = report.get("stats", {})
    failed = int(stats.get("unexpected", 0)) + int(stats.get("flaky", 0))
    failed += len(report.get("errors", []))  # global set-up errors (the stack did not start)
    return int(stats.get("expected", 0)), failed, int(stats.get("skipped", 0))


def main(argv: list[str]) -> int:
    kind, path = argv[1], Path(argv[2])
    try:
        passed, failed, skipped = counts(kind, json.loads(path.read_text()))
    except (OSError, ValueError) as error:
        print(f"{kind}: 0 passed, 1 failed (no report: {error})")
        return 1
    print(f"{kind}: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
