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
from app.serving.quic import TableH3Connection
from app.serving.tls import ensure_dev_certificate


def _connection(table: int, cert_dir: Path) -> TableH3Connection:
    """A server-side TableH3Connection over a real (unconnected) aioquic connection."""
    configuration = QuicConfiguration(is_client=False)
    configuration.load_cert_chain(*map(str, ensure_dev_certificate(cert_dir)))
    quic = QuicConnection(configuration=configuration, original_destination_connection_id=bytes(8))
    previous = TableH3Connection.table
    TableH3Connection.table = table
    try:
        return TableH3Connection(quic)
    finally:
        TableH3Connection.table = previous


@pytest.mark.parametrize(("table", "blocked"), [(0, 0), (4096, 16)])
def test_settings_and_decoder_offer_the_configured_table(
        table: int, blocked: int, tmp_path: Path) -> None:
    h3 = _connection(table, tmp_path)
    assert h3._sent_settings is not None
    assert h3._sent_settings[Setting.QPACK_MAX_TABLE_CAPACITY] == table
    assert h3._sent_settings[Setting.QPACK_BLOCKED_STREAMS] == blocked
    # the decoder agrees with the SETTINGS: a peer setting a 4 KiB table is refused at 0
    peer = pylsqpack.Encoder()
    set_capacity = peer.apply_settings(max_table_capacity=4096, blocked_streams=16)
    if table:
        h3._decoder.feed_encoder(set_capacity)
    else:
        with pytest.raises(pylsqpack.EncoderStreamError):
            h3._decoder.feed_encoder(set_capacity)


HEADERS = [(b":status", b"200"), (b"content-type", b"application/json"),
           (b"x-request-id", b"0123456789abcdef")]


@pytest.mark.parametrize(("table", "offer"), [(0, 4096), (4096, 4096), (4096, 65536)])
def test_the_connections_encoder_uses_no_table_at_0_and_the_offered_one_otherwise(
        table: int, offer: int, tmp_path: Path) -> None:
    """The encoder a connection answers with, given the client's SETTINGS. At 0: nothing goes
    into the dynamic table whatever the client offers, and a decoder with no table at all reads
    every block. Otherwise: the client's own offer — hundreds of header blocks (enough for the
    insert count to wrap) decode in step with a decoder of that size, which a capacity other
    than the offer would break."""
    encoder = _connection(table, tmp_path)._encoder
    encoder.apply_settings(max_table_capacity=offer, blocked_streams=16)
    decoder = pylsqpack.Decoder(offer, 16)
    inserted = b""
    for n in range(400):
        stream_id = 4 * n
        # each value sent twice, so the encoder inserts it: the insert count wraps many times
        headers = [*HEADERS, (b"authorization", b"Bearer token-%05d" % (n // 2))]
        instructions, block = encoder.encode(stream_id, headers)
        inserted += instructions
        decoder.feed_encoder(instructions)
        acknowledgement, decoded = decoder.feed_header(stream_id, block)
        assert decoded == headers
        encoder.feed_decoder(acknowledgement)  # section acknowledgements, as over the wire
    assert (inserted == b"") == (table == 0)
    if table == 0:
        lone = pylsqpack.Decoder(0, 0)
        assert lone.feed_header(0, encoder.encode(0, HEADERS)[1])[1] == HEADERS


def test_the_setting_is_bounded() -> None:
    assert load_settings({}).quic_qpack_table == 0
    assert load_settings({"QUIC_QPACK_TABLE": "4096"}).quic_qpack_table == 4096
    with pytest.raises(ValueError):
        load_settings({"QUIC_QPACK_TABLE": str(1 << 17)})
