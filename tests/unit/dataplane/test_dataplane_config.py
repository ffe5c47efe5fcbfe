"""The dataplane's settings: target, key, tick, and TLS to the control plane."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, load_settings
from app.serving.tls import ensure_dev_certificate
from dataplane.config import load_dataplane_config


def config(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    return load_dataplane_config(load_settings({"FLOE_DATA_DIR": str(tmp_path), **env}))


def test_defaults_plaintext_to_the_local_grpc_port(tmp_path: Path) -> None:
    c = config(tmp_path, GRPC_PORT="50999")
    assert (c.target, c.tls, c.tls_ca) == ("127.0.0.1:50999", False, None)
    assert config(tmp_path, FLOE_CONTROL_PLANE="cp.example:443").target == "cp.example:443"


def test_tls_follows_grpc_tls_and_trusts_the_local_certificate(tmp_path: Path) -> None:
    cert, _ = ensure_dev_certificate(tmp_path)
    c = config(tmp_path, GRPC_TLS="true")
    assert c.tls and c.tls_ca == cert.read_bytes()
    assert not config(tmp_path, GRPC_TLS="true", FLOE_CONTROL_PLANE_TLS="false").tls


def test_tls_to_a_remote_control_plane(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    c = config(tmp_path, FLOE_CONTROL_PLANE_TLS="true", FLOE_CONTROL_PLANE_CA=str(ca),
               FLOE_CONTROL_PLANE_NAME="cp.internal")
    assert (c.tls, c.tls_ca, c.tls_server_name) == (True, ca.read_bytes(), "cp.internal")
    system = config(tmp_path / "empty", FLOE_CONTROL_PLANE_TLS="yes")
    assert system.tls and system.tls_ca is None  # no local certificate: the system roots


@pytest.mark.parametrize("env", [
    {"FLOE_CONTROL_PLANE_TLS": "maybe"},
    {"FLOE_CONTROL_PLANE_TLS": "true", "FLOE_CONTROL_PLANE_CA": "/nonexistent/ca.pem"},
    {"FLOE_CONTROL_PLANE": "no-port"},
    {"FLOE_TICK_SECONDS": "0"},
    {"FLOE_TICK_SECONDS": "abc"},
])
def test_bad_values_are_configuration_errors(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        config(tmp_path, **env)
