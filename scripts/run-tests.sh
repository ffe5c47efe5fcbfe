#!/usr/bin/env bash
# Run every suite: pytest, then the dashboard's Vitest and Playwright suites (webui/).
# Each prints one plain `NAME: N passed, N failed, N skipped` line; the LAST line is the
# combined `total: …` line (CI reads it). The exit code is non-zero when any suite failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-services.sh

mkdir -p build
rm -f build/pytest.xml  # a crashed run must not be summed from the previous report
.venv/bin/python -m pytest -q -p no:cacheprovider --junitxml=build/pytest.xml tests "$@"
pytest_rc=$?

ui_rc=0
if [ "${FLOE_SKIP_WEBUI:-0}" = "1" ]; then
  echo "webui: suites skipped (FLOE_SKIP_WEBUI=1)"
else
  rm -f webui/test-results/vitest.json webui/test-results/playwright.json
  [ -f webui/dist/index.html ] || (cd webui && npm run -s build) || ui_rc=1
  (cd webui && npx vitest run --reporter=dot --reporter=json --outputFile.json=test-results/vitest.json)
  (cd webui && npx playwright test)
fi

python3 - "$pytest_rc" <<'PY'
import os, subprocess, sys, xml.etree.ElementTree as ET

lines, totals = [], [0, 0, 0]
try:
    root = ET.parse("build/pytest.xml").getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    tests, failures, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    counts = (tests - failures - errors - skipped, failures + errors, skipped)
except (OSError, ET.ParseError, AttributeError) as error:
    counts = (0, 1, 0)
    print(f"pytest: no junit report ({error})")
if int(sys.argv[1]) not in (0, 5) and counts[1] == 0:
    counts = (counts[0], 1, counts[2])  # pytest failed without a failing test (usage, crash)
lines.append(f"pytest: {counts[0]} passed, {counts[1]} failed, {counts[2]} skipped")
totals = [a + b for a, b in zip(totals, counts)]
if os.environ.get("FLOE_SKIP_WEBUI", "0") != "1":
    for kind in ("vitest", "playwright"):
        out = subprocess.run([sys.executable, "webui/scripts/summary.py", kind, f"webui/test-results/{kind}.json"],
                             capture_output=True, text=True).stdout.strip()
        lines.append(out)
        nums = [int(w) for w in out.split(":", 1)[1].replace(",", " ").split() if w.isdigit()][:3]
        totals = [a + b for a, b in zip(totals, nums + [0] * (3 - len(nums)))]
print("\n".join(lines))
print(f"total: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
sys.exit(1 if totals[1] else 0)
PY
summary_rc=$?
[ "$pytest_rc" -eq 0 ] || [ "$pytest_rc" -eq 5 ] || exit "$pytest_rc"
[ "$ui_rc" -eq 0 ] || exit 1
exit "$summary_rc"
