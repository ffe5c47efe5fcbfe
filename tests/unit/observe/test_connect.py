"""Where `floe observe` connects: the local control plane by default, TLS as the dataplane."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, load_settings
from app.observe_client import ObserveError
from app.observe_client._connect import load_endpoint
from app.serving.tls import ensure_dev_certificate


def endpoint(tmp_path: Path, env: dict[str, str] | None = None, **flags: object):  # type: ignore[no-untyped-def]
    settings = load_settings({"FLOE_DATA_DIR": str(tmp_path), **(env or {})})
    values: dict[str, object] = {"server": None, "token": None, "tls": None, "ca": None,
                                 "server_name": None}
    values.update(flags)
    return load_endpoint(settings, **values)  # type: ignore[arg-type]


def test_default_is_the_local_grpc_port_with_the_token_from_floe_token(tmp_path: Path) -> None:
    e = endpoint(tmp_path, {"GRPC_PORT": "50999", "FLOE_TOKEN": " floe_abc \n"})
    assert (e.target, e.tls, e.token) == ("127.0.0.1:50999", False, "floe_abc")
    assert e.metadata == (("authorization", "Bearer floe_abc"),)
    assert "floe_abc" not in repr(e)


def test_the_token_flag_wins(tmp_path: Path) -> None:
    assert endpoint(tmp_path, {"FLOE_TOKEN": "env"}, token="flag").token == "flag"


def test_no_token_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ObserveError, match="no token"):
        endpoint(tmp_path)


@pytest.mark.parametrize("token", ["two words", "line\nbreak", "é"])
def test_a_token_that_cannot_be_a_header_is_refused_without_echoing_it(
        tmp_path: Path, token: str) -> None:
    with pytest.raises(ObserveError) as refused:
        endpoint(tmp_path, token=token)
    assert token not in refused.value.message
    settings = load_settings({"FLOE_DATA_DIR": str(tmp_path), "FLOE_TOKEN": token})
    from app.config import extra_credential

    with pytest.raises(ConfigError, match="FLOE_TOKEN") as bad:
        extra_credential(settings, "FLOE_TOKEN")
    assert token not in str(bad.value)


def test_local_tls_trusts_the_control_planes_own_certificate(tmp_path: Path) -> None:
    cert, _ = ensure_dev_certificate(tmp_path)
    e = endpoint(tmp_path, {"GRPC_TLS": "true", "FLOE_TOKEN": "t"})
    assert e.tls and e.tls_ca_file == cert and not e.tls_ca_required
    assert not endpoint(tmp_path, {"GRPC_TLS": "true"}, token="t", tls=False).tls


def test_a_ca_or_server_name_turns_tls_on(tmp_path: Path) -> None:
    cert, _ = ensure_dev_certificate(tmp_path)
    e = endpoint(tmp_path, token="t", server="cp.example.com:50051", ca=str(cert))
    assert e.tls and e.tls_ca_file == cert and e.tls_ca_required
    named = endpoint(tmp_path, token="t", server_name="cp.example.com")
    assert named.tls and named.tls_server_name == "cp.example.com"
    remote = endpoint(tmp_path, token="t", server="cp.example.com:50051", tls=True)
    assert remote.tls_ca_file is None  # the system roots, never the local certificate


@pytest.mark.parametrize("flags", [
    {"server": "no-port"}, {"server": "host:"}, {"server": ":50051"},
    {"server": "host:70000"}, {"ca": "/nonexistent/ca.pem"},
])
def test_bad_connection_flags_are_one_line_errors(tmp_path: Path,
                                                  flags: dict[str, str]) -> None:
    with pytest.raises(ObserveError) as refused:
        endpoint(tmp_path, token="t", **flags)
    assert "\n" not in refused.value.message
    assert ("--server" in refused.value.message or "--tls-ca-cert" in refused.value.message)
