"""The dataplane from an installed wheel, with no checkout: sdist → wheel → fresh venv → run.

The wheel is built the way a packager builds it (an sdist of a copy of the tree, then a wheel
from that sdist, whose build step compiles the XDP objects) and installed into a new venv
outside the repository. Its dependencies are the shared venv's site-packages, added after the
venv's own by a .pth file (no network needed), so `app`, `dataplane` and the BPF files can only
come from the wheel. Every run has its cwd outside the repository and no PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataplane.netns import Topology, VethPair, unique_prefix
from dataplane.sources.pcap import PcapWriter
from tests.e2e.conftest import ControlPlane
from tests.e2e.test_dataplane_e2e import (
    MALFORMED,
    TOTAL,
    _expected_flows_present,
    _frames,
    _send,
    _stop,
    _wait_attached,
)

REPO = Path(__file__).resolve().parents[2]
DATA = "dataplane/bpf/data"
SHIPPED = ("floe_xdp.o", "floe_gen.o", "floe_steer.o", "floe_kern_user.h")
# What a packager's tree holds: the sources (and the generated gRPC code in floe/), no
# build products, no venv, no tests.
_NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "build", "var", "dist", "node_modules", "webui", "tests", "bench",
    "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.pcap")


@dataclass(slots=True, frozen=True)
class Installed:
    wheel: Path
    venv: Path
    workdir: Path  # cwd of every run: outside the repository

    @property
    def floe(self) -> str:
        return str(self.venv / "bin" / "floe")

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in base.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["FLOE_TICK_SECONDS"] = "0.1"
        return env


def _run(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{argv}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel")
    source, dist, venv, workdir = (base / n for n in ("src", "dist", "venv", "run"))
    shutil.copytree(REPO, source, ignore=_NOT_COPIED, symlinks=True)
    workdir.mkdir()
    build_sdist = f"from setuptools.build_meta import build_sdist; build_sdist({str(dist)!r})"
    _run([sys.executable, "-c", build_sdist], cwd=source)
    (sdist,) = dist.glob("floe-*.tar.gz")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--no-cache-dir", "-w", str(dist), str(sdist)], cwd=workdir, timeout=300)
    (wheel,) = dist.glob("floe-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=workdir)
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
          "-q", "--no-deps", "--no-index", str(wheel)], cwd=workdir, timeout=300)
    site = _run([str(venv / "bin" / "python"), "-c",
                 "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=workdir)
    deps = Path(sysconfig.get_paths()["purelib"])  # the shared venv: dependencies only
    (Path(site.stdout.strip()) / "zz_floe_test_deps.pth").write_text(f"{deps}\n")
    yield Installed(wheel, venv, workdir)


@pytest.fixture
def veth_pair() -> Iterator[VethPair]:
    with Topology(unique_prefix("whl")) as topology:
        yield topology.add_veth(namespace=topology.add_namespace())


def test_the_wheel_carries_the_xdp_objects_and_the_header(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        assert {f"{DATA}/{name}" for name in SHIPPED} <= names, sorted(names)
        header = (REPO / "bpf" / "floe_kern_user.h").read_bytes()
        assert wheel.read(f"{DATA}/floe_kern_user.h") == header
        for name in ("floe_xdp.o", "floe_gen.o", "floe_steer.o"):
            elf = wheel.read(f"{DATA}/{name}")
            assert elf[:4] == b"\x7fELF"
            assert int.from_bytes(elf[18:20], "little") == 247  # e_machine: EM_BPF
        assert not any(n.startswith(("bpf/", "tests/")) for n in names)


def test_the_installed_package_uses_nothing_from_the_checkout(installed: Installed) -> None:
    code = (
        "import json, sys, app, dataplane\n"
        "from dataplane.bpf import layout\n"
        "print(json.dumps({'path': sys.path, 'files': [app.__file__, dataplane.__file__, "
        "str(layout.KERN_USER_HEADER), str(layout.XDP_OBJECT), str(layout.GEN_OBJECT)],"
        "'max_rules': layout.FLOE_MAX_RULES}))"
    )
    result = _run([installed.python, "-c", code], cwd=installed.workdir)
    found = json.loads(result.stdout)
    # the shared venv (dependencies only) may itself live in the checkout: not the code
    deps = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert not [p for p in found["path"]
                if p and Path(p).resolve().is_relative_to(REPO) and Path(p).resolve() != deps]
    for path in found["files"]:
        assert Path(path).is_relative_to(installed.venv), found["files"]
        assert Path(path).is_file(), path
    assert found["max_rules"] > 0  # the header was read from the package's copy
    help_text = _run([installed.floe, "dataplane", "--help"], cwd=installed.workdir).stdout
    assert "--interface" in help_text


def test_installed_pcap_run_reports_exact_counts(
    installed: Installed, control_plane: ControlPlane
) -> None:
    capture = installed.workdir / "wheel.pcap"
    with PcapWriter(capture) as writer:
        for i, frame in enumerate(_frames()):
            writer.write(frame, time.time_ns() + i * 1000)
    process = subprocess.run(
        [installed.floe, "dataplane", "--mode", "pcap", "--pcap", str(capture)],
        cwd=installed.workdir, env=installed.env(control_plane.server.env),
        capture_output=True, text=True, timeout=90, check=False)
    assert process.returncode == 0, process.stderr[-3000:]
    entry = control_plane.wait_packets("wheel.pcap", TOTAL)
    assert (entry["packets"], entry["malformed"]) == (TOTAL, MALFORMED)
    _expected_flows_present(control_plane.flows("wheel.pcap"))


@pytest.mark.root
def test_installed_dataplane_attaches_xdp_on_a_veth(
    installed: Installed, control_plane: ControlPlane, veth_pair: VethPair
) -> None:
    """Inline mode from the wheel's floe_xdp.o on a veth whose peer is in a namespace;
    --status and --detach from the wheel too."""
    env = installed.env(control_plane.server.env)
    process = subprocess.Popen(
        [installed.floe, "dataplane", "--mode", "inline", "--interface", veth_pair.host],
        cwd=installed.workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_attached(control_plane, veth_pair.host)
        _send(veth_pair, _frames())
        entry = control_plane.wait_packets(veth_pair.host, TOTAL)
        assert entry["attach_mode"] in ("native", "generic")
        status = json.loads(_run([installed.floe, "dataplane", "--status", "--json",
                                  "--interface", veth_pair.host], cwd=installed.workdir).stdout)
        assert status["attached"] in ("native", "generic") and status["mode"] == "inline"
        assert status["counters"]["packets"] == TOTAL
    finally:
        _stop(process)
        detach = subprocess.run(
            [installed.floe, "dataplane", "--detach", "--interface", veth_pair.host],
            cwd=installed.workdir, env=env, capture_output=True, text=True, timeout=30,
            check=False)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    assert detach.returncode == 0, detach.stderr
    gone = subprocess.run([installed.floe, "dataplane", "--status", "--interface", veth_pair.host],
                          cwd=installed.workdir, env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    assert gone.returncode == 1 and "no pinned floe maps" in gone.stderr, gone.stderr
