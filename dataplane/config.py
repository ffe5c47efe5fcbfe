"""Dataplane-side settings: where the control plane is, which key, which node, which state dir.

Read from the same environment (`app.config.Settings`) as `floe serve`, so a dataplane beside
a control plane that shares `FLOE_DATA_DIR` finds the key the control plane provisioned
into `$FLOE_DATA_DIR/dataplane.key`. `FLOE_API_KEY` wins when set.
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from app.config import ConfigError, Settings, extra_bool, extra_float, extra_int
from app.nodeid import MAX_NODE_ID, default_node_id, valid_node_id

__all__ = [
    "DEFAULT_TICK_SECONDS", "KEY_FILE", "MAX_TARGETS", "ZERO_COPY", "CaptureConfig",
    "DataplaneConfig", "boot_id", "channel_tls", "client_tls_fields", "is_loopback",
    "load_capture_config", "load_dataplane_config", "parse_targets", "tls_material",
]

KEY_FILE = "dataplane.key"
DEFAULT_TICK_SECONDS = 0.1  # one uplink batch per tick
MAX_TARGETS = 16  # control-plane addresses in FLOE_CONTROL_PLANE / --control-plane
_SCHEMES = ("dns:///", "dns:", "ipv4:", "ipv6:")  # gRPC's target forms with HOST:PORT after


def boot_id() -> str:
    """The kernel's boot id: kernel counters (and pinned maps) do not survive a reboot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(slots=True, frozen=True)
class DataplaneConfig:
    target: str  # HOST:PORT of the control plane's gRPC port; several: comma-separated
    api_key: str
    node_id: str
    instance_id: str
    state_dir: Path
    tick_seconds: float = DEFAULT_TICK_SECONDS
    max_buffered_batches: int = 600  # one minute of 100 ms ticks while disconnected
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    tls: bool = False  # TLS to the control plane's gRPC port
    tls_ca_file: Path | None = None  # PEM to trust; None: the system roots
    tls_ca_required: bool = False  # FLOE_CONTROL_PLANE_CA given: unreadable is an error
    tls_server_name: str = ""  # certificate name to expect, when not the target's host
    health_address: str = "127.0.0.1"  # FLOE_DATAPLANE_HEALTH_ADDRESS (dataplane.health)
    health_port: int = 0  # FLOE_DATAPLANE_HEALTH_PORT; 0: no /healthz listener

    @property
    def key_path(self) -> Path:
        return self.state_dir / KEY_FILE

    @property
    def targets(self) -> tuple[str, ...]:
        """The control-plane addresses in the order the uplink tries them."""
        return tuple(self.target.split(","))


def _host(target: str) -> str:
    """The host of HOST:PORT, also of gRPC's `dns:///`, `ipv4:` and `ipv6:` forms."""
    for scheme in _SCHEMES:
        if target.startswith(scheme):
            target = target[len(scheme):]
            break
    return target.rpartition(":")[0].strip("[]").rstrip(".").lower()


def is_loopback(target: str) -> bool:
    host = _host(target)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls(settings: Settings, target: str) -> dict[str, Any]:
    """FLOE_CONTROL_PLANE_TLS (default: GRPC_TLS, as for a control plane sharing this
    environment), the PEM to trust (FLOE_CONTROL_PLANE_CA; for a control plane on this
    machine its own certificate — TLS_CERT_FILE or the development one; else the system
    roots) and FLOE_CONTROL_PLANE_NAME, as DataplaneConfig's tls_* fields."""
    return client_tls_fields(
        settings, target, tls=extra_bool(settings, "FLOE_CONTROL_PLANE_TLS", settings.grpc_tls),
        ca=settings.extra.get("FLOE_CONTROL_PLANE_CA", "").strip(),
        server_name=settings.extra.get("FLOE_CONTROL_PLANE_NAME", "").strip(),
        ca_source="FLOE_CONTROL_PLANE_CA")


def client_tls_fields(settings: Settings, target: str, *, tls: bool, ca: str, server_name: str,
                      ca_source: str) -> dict[str, Any]:
    """`_tls` for any client of the control plane's gRPC port (`floe observe` too): explicit
    values in, the tls_* fields out; `ca_source` names where `ca` came from in errors."""
    fields: dict[str, Any] = {"tls": tls, "tls_server_name": server_name}
    if not tls:
        pass
    elif ca:
        if not Path(ca).is_file() or not os.access(ca, os.R_OK):
            raise ConfigError(f"{ca_source}={ca!r} is not a readable file")
        fields.update(tls_ca_file=Path(ca), tls_ca_required=True)
    elif is_loopback(target):
        from app.serving.tls import dev_certificate_paths  # the serving layer: only when needed

        fields["tls_ca_file"] = (settings.tls_cert_file
                                 or dev_certificate_paths(settings.data_dir)[0])
    return fields


def tls_material(config: DataplaneConfig,
                 target: str | None = None) -> tuple[grpc.ChannelCredentials, str]:
    """Credentials and the certificate name to expect for `target` (default: the first
    address), read now (the uplink calls this for every session: a local control plane may
    create or renew its certificate later). A local certificate that does not name the
    loopback address the dataplane dials (a real one, say) is expected under its first DNS
    name; the local certificate is trusted only for loopback addresses of a list, the others
    get the system roots unless FLOE_CONTROL_PLANE_CA names a file for all."""
    target = target or config.targets[0]
    ca_file = config.tls_ca_file
    if not config.tls_ca_required and not is_loopback(target):
        ca_file = None
    return channel_tls(target, ca_file, config.tls_ca_required, config.tls_server_name,
                       "FLOE_CONTROL_PLANE_CA")


def channel_tls(target: str, ca_file: Path | None, ca_required: bool, server_name: str,
                ca_source: str) -> tuple[grpc.ChannelCredentials, str]:
    """`tls_material` for any client: the tls_* fields `client_tls_fields` made."""
    pem: bytes | None = None
    if ca_file is not None:
        try:
            pem = ca_file.read_bytes()
        except OSError as error:
            if ca_required:  # the session fails and says which file
                raise OSError(error.errno, f"{ca_source}: {error.strerror}",
                              str(ca_file)) from error
            pem = None  # the local certificate is not there (yet): the system roots
    name = server_name
    if pem and not name and is_loopback(target):
        name = _name_for_loopback(pem, target)
    return grpc.ssl_channel_credentials(root_certificates=pem), name


def _name_for_loopback(pem: bytes, target: str) -> str:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return ""
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:  # no SAN: the subject's common name
        common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(common[0].value) if common else ""
    host = _host(target)
    if host == "localhost" and "localhost" in names.get_values_for_type(x509.DNSName):
        return ""
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    if host in ips:
        return ""
    dns = names.get_values_for_type(x509.DNSName)
    return str(dns[0]) if dns else ""


def parse_targets(raw: str, source: str) -> tuple[str, ...]:
    """HOST:PORT[,HOST:PORT…] (at most MAX_TARGETS, no repeats; IPv6 literals in brackets;
    gRPC's `dns:///`, `ipv4:`, `ipv6:` prefixes allowed) as a tuple; anything else is a
    ConfigError naming `source` (the variable or flag), so a typo stops start-up instead of
    becoming an address the uplink retries forever."""
    shown = raw if len(raw) <= 200 else raw[:200] + "…"
    where = f"{source}={shown!r}"
    elements = [element.strip() for element in raw.split(",")]
    if len(elements) > MAX_TARGETS:
        raise ConfigError(f"{where} lists {len(elements)} addresses; at most {MAX_TARGETS}")
    seen: set[str] = set()
    for number, element in enumerate(elements, 1):
        if not element:
            raise ConfigError(f"{where} has an empty address (number {number}); "
                              "give HOST:PORT[,HOST:PORT…]")
        _check_target(element, where)
        if element.lower() in seen:
            raise ConfigError(f"{where} lists {element!r} twice")
        seen.add(element.lower())
    return tuple(elements)


def _check_target(element: str, where: str) -> None:
    rest = element
    for scheme in _SCHEMES:
        if rest.startswith(scheme):
            rest = rest[len(scheme):]
            break
    host, sep, port = rest.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{where}: {element!r} must be HOST:PORT")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"{where}: {element!r} has port {port!r}; it must be 1-65535")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1] if host.endswith("]") else "")
        except ValueError:
            raise ConfigError(f"{where}: {element!r} has {host!r}, not an IPv6 address "
                              "in brackets") from None
    elif ":" in host or any(c.isspace() or c in "/[]@" for c in host):
        raise ConfigError(f"{where}: {element!r} has host {host!r}; write IPv6 addresses "
                          "in brackets ([::1]:50051)")


def _target(settings: Settings, override: str | None) -> str:
    if override is not None:
        return ",".join(parse_targets(override, "--control-plane"))
    env = settings.extra.get("FLOE_CONTROL_PLANE", "").strip()
    if env:
        return ",".join(parse_targets(env, "FLOE_CONTROL_PLANE"))
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
        else extra_float(settings, "FLOE_TICK_SECONDS", DEFAULT_TICK_SECONDS, low=0.01, high=60)
    )
    if not 0.01 <= tick <= 60:
        raise ConfigError(f"FLOE_TICK_SECONDS={tick!r} is out of range [0.01, 60]")
    node = node_id or default_node_id(settings.extra)
    if not valid_node_id(node):
        raise ConfigError(f"FLOE_NODE_ID={node!r} must be 1-{MAX_NODE_ID} printable characters "
                          "without , or * (grants name the node as node/<id>)")
    target = _target(settings, control_plane)
    targets = target.split(",")  # a local control plane's certificate, if any dials locally
    return DataplaneConfig(
        target=target,
        **_tls(settings, next((t for t in targets if is_loopback(t)), targets[0])),
        api_key=_key(settings),
        node_id=node,
        instance_id=uuid.uuid4().hex,
        state_dir=settings.data_dir,
        tick_seconds=tick,
        **_health(settings),
    )


def _health(settings: Settings) -> dict[str, Any]:
    """FLOE_DATAPLANE_HEALTH_PORT (0, the default: off) and FLOE_DATAPLANE_HEALTH_ADDRESS
    (an IP address; default loopback), as DataplaneConfig's health_* fields."""
    port = extra_int(settings, "FLOE_DATAPLANE_HEALTH_PORT", 0, low=0, high=65535)
    raw = settings.extra.get("FLOE_DATAPLANE_HEALTH_ADDRESS", "").strip() or "127.0.0.1"
    try:
        address = str(ipaddress.ip_address(raw))
    except ValueError:
        raise ConfigError(f"FLOE_DATAPLANE_HEALTH_ADDRESS={raw!r} is not an IP address "
                          "(e.g. 127.0.0.1, ::1, 0.0.0.0)") from None
    return {"health_address": address, "health_port": port}


ZERO_COPY = ("off", "try", "require")


@dataclass(slots=True, frozen=True)
class CaptureConfig:
    """How the XDP modes hand frames to user space (`floe dataplane` flags, FLOE_* env).

    `snaplen`: frame bytes per ring record (pass-through, dropped-frame records).
    `drop_sample_n`: dropped frames recorded 1 in N (0: none); `drop_rate_cap`: at most that
    many drop records a second per CPU (0: no cap) — the rest ride on the next record's weight.
    `zero_copy`: AF_XDP (tap) zero-copy: off, try (fall back to copy mode and say so), require.
    `ring_bytes`: the ring buffer's size when the pins are made (they keep it).
    """

    snaplen: int = 128
    drop_sample_n: int = 1
    drop_rate_cap: int = 20_000
    zero_copy: str = "off"
    ring_bytes: int = 1 << 24


_CAPTURE = CaptureConfig()  # the defaults (a slots class holds no class-level values)


def _capture_int(settings: Settings, name: str, flag: str, value: int | None, default: int,
                 low: int, high: int) -> int:
    if value is None:
        return extra_int(settings, name, default, low=low, high=high)
    if not low <= value <= high:
        raise ConfigError(f"{flag}={value} is out of range [{low}, {high}]")
    return value


def load_capture_config(
    settings: Settings,
    *,
    snaplen: int | None = None,
    drop_sample_n: int | None = None,
    drop_rate_cap: int | None = None,
    zero_copy: str | None = None,
) -> CaptureConfig:
    """CaptureConfig from the flags given (not None), else FLOE_SNAPLEN, FLOE_DROP_SAMPLE_N,
    FLOE_DROP_RATE_CAP, FLOE_XSK_ZEROCOPY and FLOE_RING_BYTES; a bad value is a ConfigError
    naming the flag or variable."""
    from dataplane.bpf.layout import FLOE_SNAP_MAX

    ring = extra_int(settings, "FLOE_RING_BYTES", _CAPTURE.ring_bytes, low=1 << 16,
                     high=1 << 30)
    if ring & (ring - 1):
        raise ConfigError(f"FLOE_RING_BYTES={ring} is not a power of two")
    mode = zero_copy if zero_copy is not None else (
        settings.extra.get("FLOE_XSK_ZEROCOPY", "").strip().lower() or "off")
    if mode not in ZERO_COPY:
        where = "--zero-copy" if zero_copy is not None else "FLOE_XSK_ZEROCOPY"
        raise ConfigError(f"{where}={mode!r} must be one of {', '.join(ZERO_COPY)}")
    return CaptureConfig(
        snaplen=_capture_int(settings, "FLOE_SNAPLEN", "--snaplen", snaplen,
                             _CAPTURE.snaplen, 14, FLOE_SNAP_MAX),
        drop_sample_n=_capture_int(settings, "FLOE_DROP_SAMPLE_N", "--drop-sample",
                                   drop_sample_n, _CAPTURE.drop_sample_n, 0, 1 << 20),
        drop_rate_cap=_capture_int(settings, "FLOE_DROP_RATE_CAP", "--drop-rate-cap",
                                   drop_rate_cap, _CAPTURE.drop_rate_cap, 0, 10_000_000),
        zero_copy=mode,
        ring_bytes=ring,
    )
