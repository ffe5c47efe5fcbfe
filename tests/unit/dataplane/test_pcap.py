"""pcap writer/reader round trips, pacing, progress and damaged files."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from dataplane.packets import FrameBatch
from dataplane.parse import parse_batch
from dataplane.sources import Source, SourceError
from dataplane.sources.pcap import PcapSource, PcapWriter, read_pcap
from tests.unit.dataplane.frames import frame

FRAMES = [frame("10.0.0.1", "10.0.0.2", "udp", i, 53) for i in range(5)] + [
    frame("2001:db8::1", "2001:db8::2", "tcp", 9, 80)
]
TS = [1_700_000_000_123_456_789 + i * 1_000_000 for i in range(len(FRAMES))]


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_round_trip(tmp_path: Path, big_endian: bool, nanosecond: bool) -> None:
    path = tmp_path / "cap.pcap"
    with PcapWriter(path, nanosecond=nanosecond, big_endian=big_endian) as w:
        w.write_batch(FrameBatch.from_frames(FRAMES, ts_ns=TS))
    raw = path.read_bytes()
    assert len(raw) == 24 + sum(16 + len(f) for f in FRAMES)
    got = read_pcap(path, ifindex=4)
    assert [got.frame(i) for i in range(len(got))] == FRAMES
    expected = TS if nanosecond else [t // 1000 * 1000 for t in TS]
    assert got.ts_ns.tolist() == expected
    assert got.ifindex.tolist() == [4] * len(FRAMES)
    assert got.wire_lengths.tolist() == [len(f) for f in FRAMES]
    p = parse_batch(got)
    assert p.sport.tolist() == [0, 1, 2, 3, 4, 9]


def test_magic_bytes(tmp_path: Path) -> None:
    for ns, be, magic in [(False, False, b"\xd4\xc3\xb2\xa1"), (True, True, b"\xa1\xb2\x3c\x4d")]:
        path = tmp_path / f"m{ns}{be}.pcap"
        PcapWriter(path, nanosecond=ns, big_endian=be).close()
        assert path.read_bytes()[:4] == magic
        assert len(read_pcap(path)) == 0


def test_snapped_frames_keep_wire_length(tmp_path: Path) -> None:
    path = tmp_path / "snap.pcap"
    with PcapWriter(path) as w:
        w.write(FRAMES[0][:40], 5, wire_length=len(FRAMES[0]))
    got = read_pcap(path)
    assert got.lengths.tolist() == [40] and got.wire_lengths.tolist() == [len(FRAMES[0])]


def test_batches_and_truncated_tail(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    with PcapWriter(path) as w:
        w.write_batch(FrameBatch.from_frames(FRAMES, ts_ns=TS))
    path.write_bytes(path.read_bytes()[:-10])
    src = PcapSource(path, progress=False)
    assert isinstance(src, Source)
    sizes = []
    while (b := src.read_batch(2, 0.0)) is not None:
        sizes.append(len(b))
    assert sizes == [2, 2, 1]
    assert src.loss() == {"truncated_records": 1, "unsupported_link": 0, "malformed_records": 0}
    src.close()


def test_not_a_pcap(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x0b\x0d\x0d\x0a" + b"\x00" * 40)
    with pytest.raises(SourceError):
        PcapSource(bad)
    with pytest.raises(SourceError):
        PcapSource(tmp_path / "missing.pcap")
    other = tmp_path / "raw.pcap"
    other.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
    with pytest.raises(SourceError, match="link type"):
        PcapSource(other)


def test_recorded_speed_paces_replay(tmp_path: Path) -> None:
    path = tmp_path / "paced.pcap"
    base = 1_000_000_000_000
    with PcapWriter(path) as w:
        for i in range(4):
            w.write(FRAMES[0], base + i * 100_000_000)  # 100 ms apart: 300 ms recorded
    src = PcapSource(path, speed=1.0, progress=False)
    t0 = time.monotonic()
    n = 0
    while (b := src.read_batch(64, 0.05)) is not None:
        n += len(b)
    elapsed = time.monotonic() - t0
    assert n == 4
    assert elapsed >= 0.28  # a lower bound: load can only make replay slower, never faster
    fast = PcapSource(path, speed=10.0, progress=False)
    t0 = time.monotonic()
    m = 0
    while (b := fast.read_batch(64, 0.05)) is not None:
        m += len(b)
    fast_elapsed = time.monotonic() - t0
    assert m == 4
    assert fast_elapsed >= 0.028  # still paced, at a tenth of the recorded gaps
    assert fast_elapsed < elapsed  # and faster than recorded speed (no absolute bound: load)


def test_progress_only_when_asked_or_tty(tmp_path: Path) -> None:
    path = tmp_path / "p.pcap"
    with PcapWriter(path) as w:
        w.write_batch(FrameBatch.from_frames(FRAMES, ts_ns=TS))
    quiet = io.StringIO()  # not a TTY: no bar
    src = PcapSource(path, progress_stream=quiet)
    while src.read_batch(100, 0) is not None:
        pass
    assert quiet.getvalue() == ""
    loud = io.StringIO()
    src = PcapSource(path, progress=True, progress_stream=loud)
    while src.read_batch(100, 0) is not None:
        pass
    assert "100.0%" in loud.getvalue() and "6 frames" in loud.getvalue()


def test_concat_batches() -> None:
    a = FrameBatch.from_frames(FRAMES[:2], ts_ns=1, ifindex=1)
    b = FrameBatch.from_frames(FRAMES[2:], ts_ns=2, ifindex=2)
    c = FrameBatch.concat([a, FrameBatch.empty(), b])
    assert [c.frame(i) for i in range(len(c))] == FRAMES
    assert np.array_equal(c.ifindex, [1, 1, 2, 2, 2, 2])


def test_open_source_by_mode(tmp_path: Path) -> None:
    from dataplane.sources import open_source

    path = tmp_path / "m.pcap"
    with PcapWriter(path) as w:
        w.write_batch(FrameBatch.from_frames(FRAMES, ts_ns=TS))
    src = open_source("pcap", pcap_path=path, ifindex=3)
    batch = src.read_batch(100, 0)
    assert batch is not None and len(batch) == len(FRAMES) and batch.ifindex[0] == 3
    src.close()
    with pytest.raises(SourceError):
        open_source("pcap")
    with pytest.raises(SourceError):
        open_source("tap", interface="lo")
    with pytest.raises(SourceError):
        open_source("inline")  # type: ignore[arg-type]


def _ng_block(btype: int, body: bytes, e: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    return (
        struct.pack(e + "II", btype, 12 + len(body)) + body + struct.pack(e + "I", 12 + len(body))
    )


@pytest.mark.parametrize("e", ["<", ">"])
def test_pcapng(tmp_path: Path, e: str) -> None:
    """Section header, two interfaces (Ethernet with ns resolution, then a non-Ethernet one),
    enhanced and simple packet blocks, and an unknown block skipped."""
    shb = _ng_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)
    tsresol = struct.pack(e + "HH", 9, 1) + b"\x09\x00\x00\x00" + struct.pack(e + "HH", 0, 0)
    idb0 = _ng_block(1, struct.pack(e + "HHI", 1, 0, 65535) + tsresol, e)
    idb1 = _ng_block(1, struct.pack(e + "HHI", 101, 0, 65535), e)
    blocks = [shb, idb0, idb1, _ng_block(0xBAD, b"junk", e)]
    for i, f in enumerate(FRAMES[:3]):
        ts = TS[i]
        blocks.append(
            _ng_block(
                6, struct.pack(e + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f, e
            )
        )
    blocks.append(_ng_block(6, struct.pack(e + "IIIII", 1, 0, 0, 4, 4) + b"abcd", e))  # raw IP
    blocks.append(_ng_block(3, struct.pack(e + "I", len(FRAMES[3])) + FRAMES[3], e))
    path = tmp_path / "cap.pcapng"
    path.write_bytes(b"".join(blocks))
    src = PcapSource(path, progress=False)
    parts = []
    while (b := src.read_batch(2, 0)) is not None:
        parts.append(b)
    got = FrameBatch.concat(parts)
    assert [got.frame(i) for i in range(len(got))] == FRAMES[:4]
    assert got.ts_ns.tolist()[:3] == TS[:3]
    assert src.loss() == {"truncated_records": 0, "unsupported_link": 1, "malformed_records": 0}
