"""The HTTP/3 SETTINGS Floe sends: a QPACK dynamic table of QUIC_QPACK_TABLE bytes (default 0).

With aioquic's 4 KiB default every request whose headers a client's encoder put in the table
costs the server a decoder-stream acknowledgement in a datagram of its own (and the client an
ACK of it); `docs/benchmarks.md` has the side-by-side figures. The served default is checked
over a real connection in tests/integration/serving/test_protocols.py.
"""

from __future__ import annotations

from pathlib import Path

import pylsqpack
import pytest
from aioquic.h3.connection import Setting
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from app.config import load_settings
from app.serving.quic import CappedEncoder, TableH3Connection
from app.serving.tls import ensure_dev_certificate


@pytest.mark.parametrize(("table", "blocked"), [(0, 0), (4096, 16)])
def test_settings_and_decoder_offer_the_configured_table(
        table: int, blocked: int, tmp_path: Path) -> None:
    configuration = QuicConfiguration(is_client=False)
    configuration.load_cert_chain(*map(str, ensure_dev_certificate(tmp_path)))
    quic = QuicConnection(configuration=configuration, original_destination_connection_id=bytes(8))
    previous = TableH3Connection.table
    TableH3Connection.table = table
    try:
        h3 = TableH3Connection(quic)
    finally:
        TableH3Connection.table = previous
    assert h3._sent_settings is not None
    assert h3._sent_settings[Setting.QPACK_MAX_TABLE_CAPACITY] == table
    assert h3._sent_settings[Setting.QPACK_BLOCKED_STREAMS] == blocked


HEADERS = [(b":status", b"200"), (b"content-type", b"application/json"),
           (b"x-request-id", b"0123456789abcdef")]


@pytest.mark.parametrize("cap", [0, 4096])
def test_the_encoder_uses_at_most_its_cap_of_what_the_peer_offers(cap: int) -> None:
    """With cap 0 nothing goes into the dynamic table (no encoder-stream bytes, every block
    decodes with no table), whatever the peer offers; with 4096 the table is used."""
    encoder = CappedEncoder(cap)
    encoder.apply_settings(max_table_capacity=4096, blocked_streams=16)
    decoder = pylsqpack.Decoder(4096, 16)
    inserted = b""
    for stream_id in range(0, 40, 4):
        instructions, block = encoder.encode(stream_id, HEADERS)
        inserted += instructions
        decoder.feed_encoder(instructions)
        assert decoder.feed_header(stream_id, block)[1] == HEADERS
    assert (inserted == b"") == (cap == 0)
    lone = pylsqpack.Decoder(0, 0)  # a peer with no table at all reads a capped block
    if cap == 0:
        assert lone.feed_header(12, encoder.encode(12, HEADERS)[1])[1] == HEADERS


def test_the_setting_is_bounded() -> None:
    assert load_settings({}).quic_qpack_table == 0
    assert load_settings({"QUIC_QPACK_TABLE": "4096"}).quic_qpack_table == 4096
    with pytest.raises(ValueError):
        load_settings({"QUIC_QPACK_TABLE": str(1 << 17)})
