"""The development certificate: created once, reused, key private."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from app.serving.tls import ensure_dev_certificate, tls_files


def test_dev_certificate_created_once_and_loadable(tmp_path: Path) -> None:
    cert, key = ensure_dev_certificate(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = cert.read_bytes()
    again_cert, _ = ensure_dev_certificate(tmp_path)
    assert again_cert.read_bytes() == first  # not regenerated
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)


def test_configured_files_win(make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert, key = ensure_dev_certificate(tmp_path / "elsewhere")
    settings = make_settings(TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(key))
    assert tls_files(settings) == (cert, key)
    assert not (Path(settings.data_dir) / "tls").exists()
