"""FLOE_CONTROL_PLANE / --control-plane as a list of control-plane addresses: what is
accepted, the one-line errors (exit 2), and TLS settings per address."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from app.config import ConfigError, load_settings
from app.serving.tls import ensure_dev_certificate
from dataplane.config import MAX_TARGETS, DataplaneConfig, load_dataplane_config, tls_material
from tests.support.server import PYTHON, REPO_ROOT


def config(tmp_path: Path, override: str | None = None, **env: str) -> DataplaneConfig:
    return load_dataplane_config(load_settings({"FLOE_DATA_DIR": str(tmp_path), **env}),
                                 control_plane=override)


# -- parsing ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "targets"), [
    ("cp1:50051", ("cp1:50051",)),
    ("cp1:50051,cp2:50051", ("cp1:50051", "cp2:50051")),
    (" cp1:1 , 10.0.0.2:2 ,[::1]:3 ", ("cp1:1", "10.0.0.2:2", "[::1]:3")),
    ("dns:///cp.example.com:443,ipv4:10.0.0.1:50051",
     ("dns:///cp.example.com:443", "ipv4:10.0.0.1:50051")),
    (",".join(f"10.0.0.{i}:50051" for i in range(MAX_TARGETS)),
     tuple(f"10.0.0.{i}:50051" for i in range(MAX_TARGETS))),
])
def test_a_list_of_addresses_is_kept_in_order(tmp_path: Path, raw: str,
                                              targets: tuple[str, ...]) -> None:
    assert config(tmp_path, FLOE_CONTROL_PLANE=raw).targets == targets
    assert config(tmp_path, raw).targets == targets  # --control-plane likewise


def test_one_address_is_what_it_always_was(tmp_path: Path) -> None:
    assert config(tmp_path, GRPC_PORT="50999").targets == ("127.0.0.1:50999",)
    assert config(tmp_path, FLOE_CONTROL_PLANE="cp:1").target == "cp:1"
    assert config(tmp_path, "cp:2", FLOE_CONTROL_PLANE="cp:1").target == "cp:2"  # flag wins


@pytest.mark.parametrize(("raw", "words"), [
    ("cp1:1,,cp2:2", "empty address (number 2)"),
    (",cp1:1", "empty address (number 1)"),
    ("cp1:1,", "empty address (number 2)"),
    ("cp1:1, ,cp2:2", "empty address (number 2)"),
    ("cp1:0", "port '0'"),
    ("cp1:65536", "port '65536'"),
    ("cp1:http", "port 'http'"),
    ("cp1:", "port ''"),
    ("cp1", "must be HOST:PORT"),
    (":50051", "must be HOST:PORT"),
    ("::1:50051", "in brackets"),
    ("[::1:50051", "not an IPv6 address"),
    ("[nope]:50051", "not an IPv6 address"),
    ("cp 1:50051", "has host"),
    ("cp1:1,CP1:1", "twice"),
    (",".join(f"10.0.0.{i}:1" for i in range(MAX_TARGETS + 1)), "17 addresses; at most 16"),
])
def test_a_bad_list_is_a_configuration_error_naming_its_source(
        tmp_path: Path, raw: str, words: str) -> None:
    with pytest.raises(ConfigError) as env_error:
        config(tmp_path, FLOE_CONTROL_PLANE=raw)
    assert str(env_error.value).startswith("FLOE_CONTROL_PLANE=") and words in str(env_error.value)
    assert "\n" not in str(env_error.value)
    with pytest.raises(ConfigError) as flag_error:
        config(tmp_path, raw)
    assert str(flag_error.value).startswith("--control-plane=")


def test_the_command_stops_with_exit_2_and_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "GRPC"))}
    env.update(FLOE_DATA_DIR=str(tmp_path), FLOE_CONTROL_PLANE="cp1:50051,,cp2:50051",
               PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([str(PYTHON), "-m", "app.cli", "dataplane", "--mode", "pcap",
                             "--pcap", str(tmp_path / "none.pcap")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["floe dataplane: configuration error: "
                     "FLOE_CONTROL_PLANE='cp1:50051,,cp2:50051' has an empty address "
                     "(number 2); give HOST:PORT[,HOST:PORT…]"], lines


# -- TLS per address --------------------------------------------------------------------------
def test_tls_trusts_the_local_certificate_only_for_loopback_addresses(tmp_path: Path) -> None:
    cert, _ = ensure_dev_certificate(tmp_path)
    c = config(tmp_path, GRPC_TLS="true", FLOE_CONTROL_PLANE="cp.example.com:1,127.0.0.1:2")
    assert c.tls and c.tls_ca_file == cert  # one address is this machine
    assert tls_material(c, "127.0.0.1:2")[1] == ""  # the dev certificate names 127.0.0.1
    assert tls_material(c, "cp.example.com:1")[1] == ""  # system roots, its own name
    named = config(tmp_path, GRPC_TLS="true", FLOE_CONTROL_PLANE="cp1:1,cp2:2",
                   FLOE_CONTROL_PLANE_NAME="cp.example.com")
    assert [tls_material(named, t)[1] for t in named.targets] == ["cp.example.com"] * 2
