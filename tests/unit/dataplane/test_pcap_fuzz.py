"""Damaged and hostile pcap/pcapng files: the reader never crashes and never hands out a
frame outside its batch buffer; what it cannot read is counted in `loss()`."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import pytest

from dataplane.packets import FrameBatch
from dataplane.parse import parse_batch
from dataplane.sources import SourceError
from dataplane.sources.pcap import PcapSource, PcapWriter
from tests.unit.dataplane.frames import frame

FRAME = frame("10.0.0.1", "10.0.0.2", "udp", 1, 53)


def _block(btype: int, body: bytes, blen: int | None = None) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = 12 + len(body) if blen is None else blen
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


SHB = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
IDB = _block(1, struct.pack("<HHI", 1, 0, 65535))


def _epb(ts: int = 5, iface: int = 0) -> bytes:
    fields = struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(FRAME), len(FRAME))
    return _block(6, fields + FRAME)


def _drain(path: Path, max_frames: int = 1024) -> tuple[FrameBatch, dict[str, int]]:
    src = PcapSource(path, progress=False)
    try:
        parts = []
        for _ in range(10_000):  # bounded: a reader that never ends fails the test
            batch = src.read_batch(max_frames, 0.0)
            if batch is None:
                break
            ends = batch.offsets + batch.lengths.astype(np.int64)
            assert (batch.offsets >= 0).all() and (ends <= batch.data.shape[0]).all()
            parse_batch(batch)  # parsing whatever came out must not crash either
            parts.append(batch)
        else:
            pytest.fail("reader did not reach end of file")
        return FrameBatch.concat(parts), src.loss()
    finally:
        src.close()


@pytest.mark.parametrize("btype", [1, 3, 6])
def test_pcapng_block_too_short_for_its_fields_is_skipped_and_counted(
    tmp_path: Path, btype: int
) -> None:
    """A 12-byte IDB/SPB/EPB used to be read past its end (negative caplen -> crash)."""
    path = tmp_path / "short.pcapng"
    path.write_bytes(SHB + IDB + _block(btype, b"") + _epb())
    got, loss = _drain(path)
    assert [got.frame(i) for i in range(len(got))] == [FRAME]
    assert loss["malformed_records"] == 1 and loss["truncated_records"] == 0


def test_pcapng_timestamp_beyond_int64_is_clamped(tmp_path: Path) -> None:
    """if_tsresol 0 (seconds) with 2^64-1 ticks overflowed the int64 timestamp column."""
    tsresol = struct.pack("<HH", 9, 1) + b"\x00\x00\x00\x00" + struct.pack("<HH", 0, 0)
    idb = _block(1, struct.pack("<HHI", 1, 0, 65535) + tsresol)
    path = tmp_path / "ts.pcapng"
    path.write_bytes(SHB + idb + _epb(ts=(1 << 64) - 1) + _epb(ts=7))
    got, loss = _drain(path)
    assert got.ts_ns.tolist() == [(1 << 63) - 1, 7_000_000_000]
    assert loss == {"truncated_records": 0, "unsupported_link": 0, "malformed_records": 0}


def test_seeded_random_damage_never_crashes(tmp_path: Path) -> None:
    classic = tmp_path / "base.pcap"
    with PcapWriter(classic) as w:
        for i in range(6):
            w.write(frame("10.0.0.1", "10.0.0.2", "udp", i, 53), i)
    seeds = [classic.read_bytes(), SHB + IDB + _epb() * 4]
    rng = random.Random(20261125)
    path = tmp_path / "fuzz.pcap"
    outcomes = {"read": 0, "rejected": 0}
    for _ in range(1500):
        data = bytearray(rng.choice(seeds))
        op = rng.randrange(4)
        if op == 0:
            data = data[: rng.randrange(len(data) + 1)]
        elif op == 1:
            for _ in range(rng.randrange(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 2:
            at = rng.randrange(len(data) - 4)
            word = rng.choice([0, 1, 11, 12, 16, 20, 28, 31, 32, 0xFFFFFFFF, rng.getrandbits(32)])
            data[at : at + 4] = struct.pack("<I", word)
        else:
            magic = rng.choice([b"\x0a\x0d\x0d\x0a", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4"])
            data = bytearray(magic + rng.randbytes(rng.randrange(64)))
        path.write_bytes(bytes(data))
        try:
            _drain(path, max_frames=rng.choice([1, 3, 1024]))
        except SourceError:
            outcomes["rejected"] += 1  # bad magic / too short: the one documented failure
        else:
            outcomes["read"] += 1
    assert outcomes["read"] > 1000 and outcomes["rejected"] > 0
