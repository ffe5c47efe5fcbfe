"""The installed package imports from anywhere, as the `floe` console script does."""

from __future__ import annotations

import subprocess
import sys


def test_generated_grpc_code_imports_outside_the_repository() -> None:
    # cwd=/ keeps the repository root off sys.path: only the editable install can resolve
    # these (`python -m app.cli` from the root hid a missing `floe` package from the tests).
    code = "import floe.dataplane.v1.uplink_pb2, dataplane.runner, app.factory"
    result = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
