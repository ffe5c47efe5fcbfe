"""The container files agree with the code: the dataplane image runs privileged on the host's
network and bpffs, finds its key where the dataplane looks, and both images copy what the
wheel's build step compiles. `docker compose config` validates the compose files where a
compose CLI is installed (no engine needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataplane.config import KEY_FILE

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.dev.yml", "docker-compose.dataplane.yml")
# What setup.py and MANIFEST.in need to build the wheel with its XDP objects.
BUILD_INPUTS = {"pyproject.toml", "setup.py", "MANIFEST.in", "requirements.lock", ".version",
                "README.md", "app", "dataplane", "proto", "bpf"}


def _compose(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return loaded


def _copied(dockerfile: str) -> set[str]:
    sources: set[str] = set()
    for line in (ROOT / ".docker" / dockerfile).read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources.update(p.rstrip("/") for p in line.split()[1:-1])
    return sources


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.dataplane"])
def test_each_image_copies_what_the_wheel_build_needs(dockerfile: str) -> None:
    assert BUILD_INPUTS <= _copied(dockerfile)
    text = (ROOT / ".docker" / dockerfile).read_text()
    for tool in ("clang", "bpftool", "libbpf-dev", "make"):
        assert re.search(rf"apt-get install .*\b{tool}\b", text), (dockerfile, tool)


def test_the_dataplane_service_runs_on_the_host_with_its_bpffs() -> None:
    service = _compose("docker-compose.dataplane.yml")["services"]["dataplane"]
    assert service["privileged"] is True and service["network_mode"] == "host"
    assert service["build"]["dockerfile"] == ".docker/Dockerfile.dataplane"
    mounts = {(v["source"], v["target"]) for v in service["volumes"]}
    assert ("/sys/fs/bpf", "/sys/fs/bpf") in mounts
    env = service["environment"]
    assert env["FLOE_CONTROL_PLANE_TLS"] == "true"
    assert env["FLOE_CONTROL_PLANE_CA"] in {v["target"] for v in service["volumes"]}
    assert "FLOE_NODE_ID" in env and "FLOE_API_KEY" not in env  # the key is a secret file
    (secret,) = service["secrets"]
    assert secret["target"] == f"{env['FLOE_DATA_DIR']}/{KEY_FILE}"  # where the dataplane reads


def test_the_image_health_check_reads_the_dataplane_health_port() -> None:
    text = (ROOT / ".docker" / "Dockerfile.dataplane").read_text()
    image_port = re.search(r"FLOE_DATAPLANE_HEALTH_PORT=(\d+)", text)
    assert image_port is not None
    check = re.search(r"HEALTHCHECK .*\n(.*)", text)
    assert check is not None
    assert "/healthz" in check.group(1) and "FLOE_DATAPLANE_HEALTH_PORT" in check.group(1)
    service = _compose("docker-compose.dataplane.yml")["services"]["dataplane"]
    assert service["environment"]["FLOE_DATAPLANE_HEALTH_PORT"] == image_port.group(1)


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False, timeout=30).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_config_accepts_the_file(name: str, tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no `docker compose` or `docker-compose` here: parsed above only")
    env = {"PATH": str(Path(cli[0]).parent), "HOME": str(tmp_path),
           "FLOE_INTERFACE": "eth0", "FLOE_CONTROL_PLANE": "cp.example.com:50051",
           "FLOE_NODE_ID": "edge-1"}
    result = subprocess.run([*cli, "-f", str(ROOT / name), "config", "-q"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
