"""webui/scripts/summary.py turns Vitest/Playwright JSON reports into the plain
`NAME: N passed, N failed, N skipped` line `make test` prints; a missing or broken report
must count as a failure, never as green."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "webui" / "scripts" / "summary.py"


def _run(kind: str, path: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, str(SCRIPT), kind, str(path)],
                          capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout.strip()


def test_vitest_report(tmp_path: Path) -> None:
    report = tmp_path / "v.json"
    report.write_text(json.dumps({"numPassedTests": 46, "numFailedTests": 1,
                                  "numPendingTests": 2, "numTodoTests": 0, "success": False}))
    assert _run("vitest", report) == (1, "vitest: 46 passed, 1 failed, 2 skipped")
    report.write_text(json.dumps({"numPassedTests": 3, "numFailedTests": 0, "success": False}))
    assert _run("vitest", report) == (1, "vitest: 3 passed, 1 failed, 0 skipped")  # load error


def test_playwright_report(tmp_path: Path) -> None:
    report = tmp_path / "p.json"
    report.write_text(json.dumps({"stats": {"expected": 15, "unexpected": 0, "flaky": 0,
                                            "skipped": 1}, "errors": []}))
    assert _run("playwright", report) == (0, "playwright: 15 passed, 0 failed, 1 skipped")
    report.write_text(json.dumps({"stats": {"expected": 0, "unexpected": 0, "skipped": 0},
                                  "errors": [{"message": "webServer did not start"}]}))
    assert _run("playwright", report) == (1, "playwright: 0 passed, 1 failed, 0 skipped")


def test_missing_report_is_a_failure(tmp_path: Path) -> None:
    code, line = _run("playwright", tmp_path / "absent.json")
    assert code == 1 and line.startswith("playwright: 0 passed, 1 failed")
