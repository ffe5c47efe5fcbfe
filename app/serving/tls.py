"""TLS material: the configured files, or a self-signed development certificate.

The development certificate is generated once into FLOE_DATA_DIR (`tls/dev-cert.pem`,
`tls/dev-key.pem`, key mode 0600) and reused on every later start, so browsers and
clients that pinned it keep working. It covers localhost, 127.0.0.1 and ::1.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.config import Settings

__all__ = ["dev_certificate_paths", "ensure_dev_certificate", "tls_files", "tls_problem"]


def dev_certificate_paths(data_dir: Path) -> tuple[Path, Path]:
    """Where the development (cert, key) live, made or not."""
    return data_dir / "tls" / "dev-cert.pem", data_dir / "tls" / "dev-key.pem"


def ensure_dev_certificate(data_dir: Path) -> tuple[Path, Path]:
    """Return (cert, key) under `data_dir/tls`, creating them on first use only."""
    cert_path, key_path = dev_certificate_paths(data_dir)
    folder = cert_path.parent
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "floe development")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def tls_files(settings: Settings) -> tuple[Path, Path]:
    """The configured TLS_CERT_FILE/TLS_KEY_FILE, else the development pair."""
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        return settings.tls_cert_file, settings.tls_key_file
    return ensure_dev_certificate(settings.data_dir)


def tls_problem(settings: Settings) -> str | None:
    """Why the TLS files cannot be used, in one line naming their variables; None if they can.

    Checked before anything starts: otherwise a bad file surfaced as grpc core errors and a
    traceback from deep inside start-up (the gRPC port uses the same files with GRPC_TLS).
    """
    certfile, keyfile = tls_files(settings)
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as error:
        reason = getattr(error, "reason", None) or error.strerror or str(error)
        if settings.tls_cert_file is None:
            return f"the development certificate in {certfile.parent} is unusable ({reason})"
        return (
            f"TLS_CERT_FILE={certfile} and TLS_KEY_FILE={keyfile} are not a PEM certificate "
            f"chain and its private key ({reason})"
        )
    return None
