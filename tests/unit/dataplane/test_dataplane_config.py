"""The dataplane's settings: target, key, tick, and TLS to the control plane."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.config import ConfigError, load_settings
from app.serving.tls import ensure_dev_certificate
from dataplane.config import load_dataplane_config, tls_material


def config(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    return load_dataplane_config(load_settings({"FLOE_DATA_DIR": str(tmp_path), **env}))


def real_certificate(path: Path, name: str) -> Path:
    """A certificate naming only `name` (no loopback address), like a production one."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_defaults_plaintext_to_the_local_grpc_port(tmp_path: Path) -> None:
    c = config(tmp_path, GRPC_PORT="50999")
    assert (c.target, c.tls, c.tls_ca_file) == ("127.0.0.1:50999", False, None)
    assert config(tmp_path, FLOE_CONTROL_PLANE="cp.example:443").target == "cp.example:443"


def test_tls_follows_grpc_tls_and_trusts_the_local_certificate(tmp_path: Path) -> None:
    cert, _ = ensure_dev_certificate(tmp_path)
    c = config(tmp_path, GRPC_TLS="true")
    assert c.tls and c.tls_ca_file == cert
    assert tls_material(c)[1] == ""  # the development certificate names 127.0.0.1
    assert not config(tmp_path, GRPC_TLS="true", FLOE_CONTROL_PLANE_TLS="false").tls


def test_a_local_real_certificate_is_expected_under_its_name(tmp_path: Path) -> None:
    cert = real_certificate(tmp_path / "cp.pem", "cp.example.com")
    key = tmp_path / "cp.key"
    key.write_text("unused")
    c = config(tmp_path, TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(key))
    assert c.tls and c.tls_ca_file == cert  # GRPC_TLS follows TLS_CERT_FILE
    assert tls_material(c)[1] == "cp.example.com"
    named = config(tmp_path, TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(key),
                   FLOE_CONTROL_PLANE_NAME="other.example.com")
    assert tls_material(named)[1] == "other.example.com"


def test_a_remote_control_plane_is_not_checked_against_a_local_certificate(
        tmp_path: Path) -> None:
    ensure_dev_certificate(tmp_path)  # left by an earlier `floe serve` on this host
    remote = config(tmp_path, GRPC_TLS="true", FLOE_CONTROL_PLANE="cp.example.com:50051")
    assert remote.tls and remote.tls_ca_file is None  # the system roots
    ca = real_certificate(tmp_path / "ca.pem", "cp.example.com")
    pinned = config(tmp_path, FLOE_CONTROL_PLANE_TLS="true", FLOE_CONTROL_PLANE_CA=str(ca),
                    FLOE_CONTROL_PLANE="cp.example.com:50051")
    assert pinned.tls_ca_file == ca and tls_material(pinned)[1] == ""


@pytest.mark.parametrize("env", [
    {"FLOE_CONTROL_PLANE_TLS": "maybe"},
    {"FLOE_CONTROL_PLANE_TLS": "true", "FLOE_CONTROL_PLANE_CA": "/nonexistent/ca.pem"},
    {"FLOE_CONTROL_PLANE": "no-port"},
    {"FLOE_TICK_SECONDS": "0"},
    {"FLOE_TICK_SECONDS": "abc"},
    {"FLOE_NODE_ID": "tab\there"},
    {"FLOE_NODE_ID": "n" * 129},
])
def test_bad_values_are_configuration_errors(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        config(tmp_path, **env)


@pytest.mark.parametrize(("target", "loopback"), [
    ("127.0.0.1:50051", True), ("[::1]:50051", True), ("LOCALHOST:50051", True),
    ("localhost.:50051", True), ("dns:///localhost:50051", True), ("ipv6:[::1]:50051", True),
    ("127.9.9.9:1", True), ("10.0.0.1:50051", False), ("cp.example.com:50051", False),
])
def test_what_counts_as_this_machine(target: str, loopback: bool) -> None:
    from dataplane.config import is_loopback

    assert is_loopback(target) is loopback


def test_a_certificate_without_san_is_expected_under_its_common_name(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "legacy.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    path = tmp_path / "legacy.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile = tmp_path / "legacy.key"
    keyfile.write_text("unused")
    c = config(tmp_path, TLS_CERT_FILE=str(path), TLS_KEY_FILE=str(keyfile))
    assert tls_material(c)[1] == "legacy.example.com"


def test_an_explicit_ca_that_goes_away_fails_the_session_by_name(tmp_path: Path) -> None:
    ca = real_certificate(tmp_path / "ca.pem", "cp.example.com")
    c = config(tmp_path, FLOE_CONTROL_PLANE_TLS="true", FLOE_CONTROL_PLANE_CA=str(ca))
    ca.unlink()
    with pytest.raises(OSError, match="FLOE_CONTROL_PLANE_CA"):
        tls_material(c)


def test_a_node_id_of_128_printable_characters_is_fine(tmp_path: Path) -> None:
    assert config(tmp_path, FLOE_NODE_ID="edge-1 (rack 4)" + "x" * 113).node_id.startswith("edge")
