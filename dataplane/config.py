"""Dataplane-side settings: where the control plane is, which key, which node, which state dir.

Read from the same environment (`app.config.Settings`) as `floe serve`, so a dataplane beside
a control plane that shares `FLOE_DATA_DIR` finds the key the control plane provisioned
into `$FLOE_DATA_DIR/dataplane.key`. `FLOE_API_KEY` wins when set.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from app.config import ConfigError, Settings, extra_float

__all__ = ["KEY_FILE", "DataplaneConfig", "boot_id", "load_dataplane_config"]

KEY_FILE = "dataplane.key"


def boot_id() -> str:
    """The kernel's boot id: kernel counters (and pinned maps) do not survive a reboot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(slots=True, frozen=True)
class DataplaneConfig:
    target: str  # HOST:PORT of the control plane's gRPC port
    api_key: str
    node_id: str
    instance_id: str
    state_dir: Path
    tick_seconds: float = 0.1
    max_buffered_batches: int = 600  # one minute of 100 ms ticks while disconnected
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    tls: bool = False  # TLS to the control plane's gRPC port
    tls_ca: bytes | None = field(default=None, repr=False)  # PEM to trust; None: system roots
    tls_server_name: str = ""  # certificate name to expect, when not the target's host

    @property
    def key_path(self) -> Path:
        return self.state_dir / KEY_FILE


def _tls(settings: Settings) -> tuple[bool, bytes | None, str]:
    """FLOE_CONTROL_PLANE_TLS (default: GRPC_TLS, as for a control plane sharing this
    environment) and the PEM to trust: FLOE_CONTROL_PLANE_CA, else that control plane's own
    certificate when it is on this machine (TLS_CERT_FILE, or the development one in
    FLOE_DATA_DIR), else the system roots."""
    raw = settings.extra.get("FLOE_CONTROL_PLANE_TLS", "").strip().lower()
    if raw and raw not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ConfigError(f"FLOE_CONTROL_PLANE_TLS={raw!r} is not a boolean (use true/false)")
    tls = raw in ("1", "true", "yes", "on") if raw else settings.grpc_tls
    name = settings.extra.get("FLOE_CONTROL_PLANE_NAME", "").strip()
    if not tls:
        return False, None, name
    ca = settings.extra.get("FLOE_CONTROL_PLANE_CA", "").strip()
    if ca:
        try:
            return True, Path(ca).read_bytes(), name
        except OSError as error:
            raise ConfigError(f"FLOE_CONTROL_PLANE_CA={ca!r}: {error.strerror}") from error
    local = settings.tls_cert_file or settings.data_dir / "tls" / "dev-cert.pem"
    try:
        return True, local.read_bytes(), name
    except OSError:
        return True, None, name


def _target(settings: Settings, override: str | None) -> str:
    if override:
        host, sep, port = override.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"--control-plane={override!r} must be HOST:PORT")
        return override
    env = settings.extra.get("FLOE_CONTROL_PLANE")
    if env:
        return _target(settings, env)
    return f"127.0.0.1:{settings.grpc_port}"


def _key(settings: Settings) -> str:
    key = settings.extra.get("FLOE_API_KEY", "").strip()
    if key:
        return key
    path = settings.data_dir / KEY_FILE
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def load_dataplane_config(
    settings: Settings,
    control_plane: str | None = None,
    node_id: str | None = None,
    tick_seconds: float | None = None,
) -> DataplaneConfig:
    """Build the dataplane's settings; the key may be empty (the uplink then retries it)."""
    tick = (
        tick_seconds
        if tick_seconds is not None
        else extra_float(settings, "FLOE_TICK_SECONDS", 0.1, low=0.01, high=60)
    )
    if not 0.01 <= tick <= 60:
        raise ConfigError(f"FLOE_TICK_SECONDS={tick!r} is out of range [0.01, 60]")
    tls, tls_ca, tls_server_name = _tls(settings)
    return DataplaneConfig(
        target=_target(settings, control_plane),
        tls=tls,
        tls_ca=tls_ca,
        tls_server_name=tls_server_name,
        api_key=_key(settings),
        node_id=node_id or settings.extra.get("FLOE_NODE_ID") or socket.gethostname(),
        instance_id=uuid.uuid4().hex,
        state_dir=settings.data_dir,
        tick_seconds=tick,
    )
