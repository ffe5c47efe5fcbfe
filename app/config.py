"""Settings read once from the environment.

Every variable the product owner named in the brief is read here and nowhere else, so
`docs/configuration.md` can list them from one place. A bad value stops start-up with a
one-line `ConfigError` that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.origins import normalize_origin

__all__ = [
    "ADMIN_PASSWORD_MIN",
    "ConfigError",
    "Settings",
    "extra_bool",
    "extra_credential",
    "extra_endpoints",
    "extra_float",
    "extra_int",
    "load_settings",
]


class ConfigError(ValueError):
    """An environment variable holds a value Floe cannot use."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def _int(
    env: Mapping[str, str], name: str, default: int, *, low: int = 0, high: int = 2**31
) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} is out of range [{low}, {high}]")
    return value


def _float(
    env: Mapping[str, str], name: str, default: float, *, low: float = 0.0, high: float = 1e9
) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} is out of range [{low}, {high}]")
    return value


def extra_float(settings: Settings, name: str, default: float, *, low: float,
                high: float) -> float:
    """A numeric FLOE_* knob from Settings.extra; ConfigError naming it when it is bad."""
    return _float(settings.extra, name, default, low=low, high=high)


def extra_int(settings: Settings, name: str, default: int, *, low: int, high: int) -> int:
    """An integer FLOE_* knob from Settings.extra; ConfigError naming it when it is bad."""
    return _int(settings.extra, name, default, low=low, high=high)


def extra_bool(settings: Settings, name: str, default: bool) -> bool:
    """A boolean FLOE_* knob from Settings.extra; ConfigError naming it when it is bad."""
    return _bool(settings.extra, name, default)


def extra_endpoints(settings: Settings, name: str, *, limit: int) -> list[tuple[str, int]]:
    """A FLOE_* list of `host:port` (`[v6]:port` for IPv6 literals), comma-separated, at
    most `limit`, no repeats; empty or unset: []. ConfigError naming it when it is bad."""
    raw = settings.extra.get(name, "")
    out: list[tuple[str, int]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise ConfigError(f"{name}: {item!r}: write an IPv6 address as [addr]:port")
        if not sep or not host or any(c.isspace() or c in "[]/" for c in host):
            raise ConfigError(f"{name}: {item!r} is not host:port")
        if not port.isdigit() or not 0 < int(port) <= 65535:
            raise ConfigError(f"{name}: {item!r}: the port must be 1-65535")
        if (host, int(port)) in out:
            raise ConfigError(f"{name}: {item!r} is listed twice")
        out.append((host, int(port)))
    if len(out) > limit:
        raise ConfigError(f"{name}: at most {limit} entries, not {len(out)}")
    return out


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    return _int(env, name, default, low=0, high=65535)


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of http(s) origins, each in normal form."""
    raw = env.get(name) or ""
    out: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        origin = normalize_origin(item)
        if origin is None:
            raise ConfigError(f"{name}={raw!r}: {item!r} is not an origin (scheme://host[:port])")
        out.append(origin)
    return tuple(out)


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}={raw!r} must be one of {', '.join(choices)}")
    return value


@dataclass(slots=True, frozen=True)
class Settings:
    """Immutable process configuration; build it with `load_settings()`."""

    data_dir: Path = Path("./var")
    bind_host: str = "0.0.0.0"
    http_port: int = 8080
    https_port: int = 8443
    grpc_port: int = 50051
    metrics_port: int = 9090
    http1_enabled: bool = True
    http2_enabled: bool = True
    http3_enabled: bool = True
    grpc_enabled: bool = True
    grpc_tls: bool = False  # the gRPC port speaks TLS (the HTTPS certificate)
    metrics_enabled: bool = True
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Serving limits (see docs/adr/0001-serving.md).
    max_body_bytes: int = 1 << 20
    max_inflight_requests: int = 2048
    max_inflight_body_bytes: int = 256 << 20
    keep_alive_max_requests: int = 100_000
    keep_alive_timeout: float = 20.0
    max_connections: int = 16384
    graceful_timeout: float = 2.0
    quic_queue_size: int = 1024
    quic_receive_buffer: int = 4 << 20
    quic_qpack_table: int = 0
    ws_queue_size: int = 64
    ws_heartbeat_interval: float = 1.0
    ws_max_connections: int = 1000
    ws_max_per_principal: int = 32
    allowed_origins: tuple[str, ...] = ()  # besides the server's own, for cookie streams
    # Ingest bounds (app/ingest/limits.py).
    ingest_max_nodes: int = 4096
    ingest_max_interfaces: int = 64
    ingest_max_epochs: int = 4
    ingest_max_loss_keys: int = 64
    ingest_takeover_grace: float = 30.0  # s a node's stream is silent before another may replace it
    body_idle_timeout: float = 5.0
    body_timeout: float = 30.0
    max_uploading_requests: int = 512
    hsts_max_age: int = 31_536_000
    # Database (standard's DB_* variables).
    db_type: str = "sqlite"
    db_host: str = "127.0.0.1"
    db_port: int = 0
    db_name: str = "floe"
    db_user: str = ""
    db_pass: str = field(default="", repr=False)
    db_pool_size: int = 10
    db_max_retries: int = 5
    db_retry_delay: float = 5.0
    # Identity.
    secret_key: str = field(default="", repr=False)
    registration_enabled: bool = False
    access_token_ttl: int = 900
    refresh_token_ttl: int = 14 * 24 * 3600
    redis_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "floe@localhost.local"
    # Deployment kind (FLOE_ENV): "production" (the default) or "development", which keeps
    # the documented admin123 default admin and logs account-mail links when SMTP is unset.
    environment: str = "production"
    admin_password: str = field(default="", repr=False)  # FLOE_ADMIN_PASSWORD, first start
    smtp_tls: str = "none"  # none | starttls | tls
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    log_json: bool | None = None
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def tls_enabled(self) -> bool:
        return self.https_port > 0 and (
            self.http1_enabled or self.http2_enabled or self.http3_enabled
        )

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def effective_db_port(self) -> int:
        if self.db_port:
            return self.db_port
        return {"postgresql": 5432, "mysql": 3306}.get(self.db_type, 0)


_SMTP_PORTS = {"none": 25, "starttls": 587, "tls": 465}
ADMIN_PASSWORD_MIN = 12


def _admin_password(env: Mapping[str, str]) -> str:
    """FLOE_ADMIN_PASSWORD: the first admin's password in production (never echoed back)."""
    value = env.get("FLOE_ADMIN_PASSWORD") or ""
    if value and not ADMIN_PASSWORD_MIN <= len(value) <= 256:
        raise ConfigError(
            f"FLOE_ADMIN_PASSWORD must be {ADMIN_PASSWORD_MIN} to 256 characters long"
        )
    if value and (value.strip() != value or "\x00" in value):
        raise ConfigError("FLOE_ADMIN_PASSWORD must not start or end with spaces or hold NUL")
    return value


def _smtp(env: Mapping[str, str]) -> tuple[str, int, str, str]:
    """(SMTP_TLS, SMTP_PORT, SMTP_USER, SMTP_PASSWORD), checked together: credentials only
    travel over TLS, and come in pairs."""
    tls = _choice(env, "SMTP_TLS", "none", ("none", "starttls", "tls"))
    port = _int(env, "SMTP_PORT", _SMTP_PORTS[tls], low=1, high=65535)
    user = env.get("SMTP_USER") or ""
    password = env.get("SMTP_PASSWORD") or ""
    if bool(user) != bool(password):
        missing = "SMTP_PASSWORD" if user else "SMTP_USER"
        raise ConfigError(f"{missing} must be set together with the other SMTP_* credential")
    if user and tls == "none":
        raise ConfigError("SMTP_USER needs SMTP_TLS=starttls or tls (no password in clear text)")
    return tls, port, user, password


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Parse the environment into `Settings`, raising `ConfigError` on the first bad value."""
    env = os.environ if env is None else env
    tls_cert = env.get("TLS_CERT_FILE") or None
    tls_key = env.get("TLS_KEY_FILE") or None
    if bool(tls_cert) != bool(tls_key):
        missing = "TLS_KEY_FILE" if tls_cert else "TLS_CERT_FILE"
        raise ConfigError(f"{missing} must be set together with the other TLS_* file")
    for name, value in (("TLS_CERT_FILE", tls_cert), ("TLS_KEY_FILE", tls_key)):
        if value and not Path(value).is_file():
            raise ConfigError(f"{name}={value!r} is not a readable file")
    smtp_tls, smtp_port, smtp_user, smtp_password = _smtp(env)
    settings = Settings(
        data_dir=Path(env.get("FLOE_DATA_DIR") or "./var"),
        bind_host=env.get("BIND_HOST") or "0.0.0.0",
        http_port=_port(env, "HTTP_PORT", 8080),
        https_port=_port(env, "HTTPS_PORT", 8443),
        grpc_port=_port(env, "GRPC_PORT", 50051),
        metrics_port=_port(env, "METRICS_PORT", 9090),
        http1_enabled=_bool(env, "HTTP1_ENABLED", True),
        http2_enabled=_bool(env, "HTTP2_ENABLED", True),
        http3_enabled=_bool(env, "HTTP3_ENABLED", True),
        grpc_enabled=_bool(env, "GRPC_ENABLED", True),
        grpc_tls=_bool(env, "GRPC_TLS", bool(tls_cert)),
        metrics_enabled=_bool(env, "METRICS_ENABLED", True),
        tls_cert_file=Path(tls_cert) if tls_cert else None,
        tls_key_file=Path(tls_key) if tls_key else None,
        max_body_bytes=_int(env, "MAX_BODY_BYTES", 1 << 20, low=1024, high=1 << 30),
        max_inflight_requests=_int(env, "MAX_INFLIGHT_REQUESTS", 2048, low=1, high=1_000_000),
        max_inflight_body_bytes=_int(env, "MAX_INFLIGHT_BODY_BYTES", 256 << 20, low=1 << 20,
                                     high=1 << 40),
        keep_alive_max_requests=_int(
            env, "KEEP_ALIVE_MAX_REQUESTS", 100_000, low=1, high=2**31 - 1
        ),
        keep_alive_timeout=_float(env, "KEEP_ALIVE_TIMEOUT", 20.0, low=1.0, high=3600.0),
        max_connections=_int(env, "MAX_CONNECTIONS", 16384, low=1, high=1_000_000),
        graceful_timeout=_float(env, "GRACEFUL_TIMEOUT", 2.0, low=0.0, high=60.0),
        quic_queue_size=_int(env, "QUIC_QUEUE_SIZE", 1024, low=10, high=1_000_000),
        quic_receive_buffer=_int(env, "QUIC_RECEIVE_BUFFER", 4 << 20, low=0, high=1 << 30),
        quic_qpack_table=_int(env, "QUIC_QPACK_TABLE", 0, low=0, high=1 << 16),
        ws_queue_size=_int(env, "WS_QUEUE_SIZE", 64, low=1, high=100_000),
        ws_heartbeat_interval=_float(env, "WS_HEARTBEAT_INTERVAL", 1.0, low=0.01, high=3600.0),
        ws_max_connections=_int(env, "WS_MAX_CONNECTIONS", 1000, low=1, high=1_000_000),
        ws_max_per_principal=_int(env, "WS_MAX_PER_PRINCIPAL", 32, low=1, high=1_000_000),
        allowed_origins=_origins(env, "FLOE_ALLOWED_ORIGINS"),
        ingest_max_nodes=_int(env, "INGEST_MAX_NODES", 4096, low=1, high=1_000_000),
        ingest_max_interfaces=_int(env, "INGEST_MAX_INTERFACES", 64, low=1, high=4096),
        ingest_max_epochs=_int(env, "INGEST_MAX_EPOCHS", 4, low=1, high=64),
        ingest_max_loss_keys=_int(env, "INGEST_MAX_LOSS_KEYS", 64, low=1, high=4096),
        ingest_takeover_grace=_float(env, "INGEST_TAKEOVER_GRACE", 30.0, low=1.0, high=3600.0),
        body_idle_timeout=_float(env, "BODY_IDLE_TIMEOUT", 5.0, low=0.1, high=300.0),
        body_timeout=_float(env, "BODY_TIMEOUT", 30.0, low=1.0, high=3600.0),
        max_uploading_requests=_int(env, "MAX_UPLOADING_REQUESTS", 512, low=1, high=1_000_000),
        hsts_max_age=_int(env, "HSTS_MAX_AGE", 31_536_000, low=0, high=2**31 - 1),
        db_type=_choice(env, "DB_TYPE", "sqlite", ("postgresql", "mysql", "sqlite")),
        db_host=env.get("DB_HOST") or "127.0.0.1",
        db_port=_port(env, "DB_PORT", 0),
        db_name=env.get("DB_NAME") or "floe",
        db_user=env.get("DB_USER") or "",
        db_pass=env.get("DB_PASS") or "",
        db_pool_size=_int(env, "DB_POOL_SIZE", 10, low=1, high=1000),
        db_max_retries=_int(env, "DB_MAX_RETRIES", 5, low=0, high=1000),
        db_retry_delay=_float(env, "DB_RETRY_DELAY", 5.0, low=0.0, high=3600.0),
        secret_key=env.get("SECRET_KEY") or "",
        registration_enabled=_bool(env, "REGISTRATION_ENABLED", False),
        access_token_ttl=_int(env, "ACCESS_TOKEN_TTL", 900, low=10, high=86400),
        refresh_token_ttl=_int(env, "REFRESH_TOKEN_TTL", 14 * 24 * 3600, low=60, high=10**8),
        redis_url=env.get("REDIS_URL") or "",
        smtp_host=env.get("SMTP_HOST") or "",
        smtp_port=smtp_port,
        smtp_from=env.get("SMTP_FROM") or "floe@localhost.local",
        environment=_choice(env, "FLOE_ENV", "production", ("production", "development")),
        admin_password=_admin_password(env),
        smtp_tls=smtp_tls,
        smtp_user=smtp_user,
        smtp_password=smtp_password,
        log_json=None if not env.get("LOG_JSON") else _bool(env, "LOG_JSON", False),
        extra={k: v for k, v in env.items() if k.startswith("FLOE_")},
    )
    if not (
        settings.http1_enabled
        or settings.http2_enabled
        or settings.http3_enabled
        or settings.grpc_enabled
    ):
        raise ConfigError(
            "HTTP1_ENABLED, HTTP2_ENABLED, HTTP3_ENABLED and GRPC_ENABLED are all false"
        )
    return settings


def extra_credential(settings: Settings, name: str) -> str:
    """A FLOE_* token or API key from Settings.extra ("" when unset); ConfigError naming it
    when it could not travel as an `authorization` header (spaces, control or non-ASCII
    characters — a pasted line break, say)."""
    raw = settings.extra.get(name, "")
    value = raw.strip()
    if value and not all(33 <= ord(ch) <= 126 for ch in value):
        raise ConfigError(f"{name} is not a token (printable ASCII without spaces)")
    return value
