"""Where `floe observe` connects and as whom: target, token, TLS, and the channel.

The default server is the local control plane (127.0.0.1:GRPC_PORT), spoken to the way the
dataplane does it: TLS when GRPC_TLS is on, trusting the control plane's own certificate
(TLS_CERT_FILE or the development one in FLOE_DATA_DIR) — the same functions as
`dataplane/config.py`, not a copy. The token comes from `--token`, else FLOE_TOKEN.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from app.config import ConfigError, Settings, extra_credential
from app.observe_client._errors import EXIT_USAGE, ObserveError

__all__ = ["CHANNEL_OPTIONS", "Endpoint", "load_endpoint", "open_channel"]

# gRPC's own reconnect backoff capped like ours (its default grows to 120 s), and keepalive
# pings so a silent, half-dead connection is noticed within ~30 s on a quiet --follow.
CHANNEL_OPTIONS: tuple[tuple[str, int | str], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5000),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.max_receive_message_length", 64 << 20),
)


@dataclass(slots=True, frozen=True)
class Endpoint:
    target: str  # HOST:PORT
    token: str = field(repr=False)
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_ca_required: bool = False
    tls_server_name: str = ""

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


def _target(server: str | None, settings: Settings) -> str:
    if not server:
        return f"127.0.0.1:{settings.grpc_port}"
    host, sep, port = server.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ObserveError(f"--server {server!r} must be HOST:PORT")
    return server.strip()


def load_endpoint(settings: Settings, *, server: str | None, token: str | None,
                  tls: bool | None, ca: str | None, server_name: str | None) -> Endpoint:
    """The endpoint from flags, then the environment. TLS is on with `--tls`, with a CA or
    server name given, else when GRPC_TLS is (the setting of a control plane sharing this
    environment)."""
    from dataplane.config import client_tls_fields  # imports the serving layer: only now

    target = _target(server, settings)
    try:
        credential = (token or "").strip() or extra_credential(settings, "FLOE_TOKEN")
        if tls is None:
            tls = bool(ca or server_name) or settings.grpc_tls
        fields = client_tls_fields(settings, target, tls=tls, ca=(ca or "").strip(),
                                   server_name=(server_name or "").strip(),
                                   ca_source="--tls-ca-cert")
    except ConfigError as error:  # a bad FLOE_TOKEN or --tls-ca-cert: a usage error
        raise ObserveError(str(error), EXIT_USAGE) from error
    if not credential:
        raise ObserveError("no token: give an access token or API key with --token or "
                           "FLOE_TOKEN")
    if any(not 33 <= ord(ch) <= 126 for ch in credential):
        raise ObserveError("--token is not a token (printable ASCII without spaces)")
    return Endpoint(target=target, token=credential, **fields)


def open_channel(endpoint: Endpoint) -> grpc.aio.Channel:
    """A channel to the endpoint (TLS material is read now: a local certificate may have
    been renewed since the last run)."""
    from dataplane.config import channel_tls, is_loopback

    if not endpoint.tls:
        if not is_loopback(endpoint.target):
            print(f"floe observe: warning: the token goes to {endpoint.target} without TLS "
                  "(--tls)", file=sys.stderr)
        return grpc.aio.insecure_channel(endpoint.target, options=CHANNEL_OPTIONS)
    try:
        credentials, name = channel_tls(endpoint.target, endpoint.tls_ca_file,
                                        endpoint.tls_ca_required, endpoint.tls_server_name,
                                        "--tls-ca-cert")
    except OSError as error:
        raise ObserveError(str(error)) from error
    options = CHANNEL_OPTIONS
    if name:
        options = (*options, ("grpc.ssl_target_name_override", name))
    return grpc.aio.secure_channel(endpoint.target, credentials, options=options)
