"""A real IPFIX collector for tests and the benchmark: Debian's nfdump (`nfcapd` receives,
`nfdump` reads back).

    with Nfcapd.start(port) as collector:
        ...send...
    records = collector.records()      # after the context: nfcapd stopped and flushed

`nfcapd -w DIR` writes `nfcapd.current.*` and renames it to `nfcapd.YYYYMMDDhhmm` when it
ends (SIGTERM). Records are read with `nfdump -o raw` (the only output that carries every
field we export, end reason included); exporters with `nfdump -E` (observation domain,
sequence failures, messages, flows).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = ["RECEIVE_BUFFER", "Exporter", "FlowRow", "Nfcapd", "nfdump_available"]

_ENV = {**os.environ, "TZ": "UTC"}
RECEIVE_BUFFER = 4 << 20


def nfdump_available() -> bool:
    return shutil.which("nfcapd") is not None and shutil.which("nfdump") is not None


@dataclass(slots=True, frozen=True)
class FlowRow:
    """What nfdump read back of one record (the fields Floe exports)."""

    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    packets: int
    octets: int
    reply_packets: int
    reply_octets: int
    first_ms: int
    last_ms: int
    ingress: int
    vlan: int
    tcp_flags: int
    end_reason: int


@dataclass(slots=True, frozen=True)
class Exporter:
    ip: str
    domain: int
    sequence_failures: int
    packets: int
    flows: int


_RAW_FIELDS = {
    "src addr": "src", "dst addr": "dst", "src port": "sport", "dst port": "dport",
    "proto": "proto", "in packets": "packets", "in bytes": "octets",
    "out packets": "reply_packets", "out bytes": "reply_octets", "first": "first_ms",
    "last": "last_ms", "input": "ingress", "src vlan": "vlan", "tcp flags": "tcp_flags",
    "end reason": "end_reason",
}
_EXPORTER = re.compile(r"SysID: *\d+, IP: *(\S+), version: *10, ID: *(\d+), "
                       r"Sequence failures: *(\d+), packets: *(\d+), flows: *(\d+)")


def _parse_raw(text: str) -> list[FlowRow]:
    rows = []
    for block in text.split("Flow Record:")[1:]:
        values: dict[str, object] = {}
        for line in block.splitlines():
            key, sep, value = line.partition("=")
            if key.strip() == "ICMP":  # ICMP records show "type.code" instead of ports
                kind, _, code = value.split()[0].partition(".")
                values["sport"], values["dport"] = 0, int(kind) * 256 + int(code)
                continue
            name = _RAW_FIELDS.get(key.strip())
            if not sep or name is None:
                continue
            token = value.split()[0]
            if name in ("src", "dst"):
                values[name] = token
            else:
                values[name] = int(token, 16) if token.startswith("0x") else int(token)
        rows.append(FlowRow(**values))  # type: ignore[arg-type]
    return rows


@dataclass(slots=True)
class Nfcapd:
    port: int
    process: subprocess.Popen[bytes]
    directory: Path
    log_path: Path
    _tmp: tempfile.TemporaryDirectory[str] = field(repr=False)

    @classmethod
    def start(cls, port: int, *, timeout: float = 10.0,
              buffer_bytes: int = RECEIVE_BUFFER) -> Nfcapd:
        """nfcapd on 127.0.0.1:`port` writing into a fresh temporary directory; waits until
        it has bound its socket. `buffer_bytes` is its socket receive buffer (`-B`; 0: the
        system default, ~90 datagrams, which a busy shared machine can overrun)."""
        tmp = tempfile.TemporaryDirectory(prefix="floe-nfcapd-")
        directory = Path(tmp.name) / "flows"
        directory.mkdir()
        log_path = Path(tmp.name) / "nfcapd.log"
        args = ["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", str(directory),
                "-t", "3600"]
        if buffer_bytes:
            args += ["-B", str(buffer_bytes)]
        with log_path.open("wb") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=_ENV)
        collector = cls(port, process, directory, log_path, tmp)
        deadline = time.monotonic() + timeout
        while "Startup" not in collector.log():
            if process.poll() is not None or time.monotonic() > deadline:
                collector.stop()
                raise RuntimeError(f"nfcapd did not start:\n{collector.log()}")
            time.sleep(0.02)
        return collector

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: nfcapd flushes and closes its file."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def __enter__(self) -> Nfcapd:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def cleanup(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def file(self) -> Path:
        files = sorted(p for p in self.directory.iterdir() if ".current." not in p.name)
        if len(files) != 1:
            raise RuntimeError(f"expected one closed nfcapd file, found {files}")
        return files[0]

    def _nfdump(self, *args: str) -> str:
        result = subprocess.run(["nfdump", *args], capture_output=True, text=True, env=_ENV,
                                timeout=120, check=True)
        return result.stdout

    def records(self) -> list[FlowRow]:
        return _parse_raw(self._nfdump("-r", str(self.file()), "-q", "-o", "raw"))

    def exporters(self) -> list[Exporter]:
        text = self._nfdump("-E", str(self.file()))
        return [Exporter(m[1], int(m[2]), int(m[3]), int(m[4]), int(m[5]))
                for m in _EXPORTER.finditer(text)]

    def summary(self) -> dict[str, int]:
        """`nfdump -I`: totals of the file (Flows, Packets, Bytes, Sequence failures, …)."""
        out = {}
        for line in self._nfdump("-I", "-r", str(self.file())).splitlines():
            key, sep, value = line.partition(":")
            if sep and value.strip().isdigit():
                out[key.strip()] = int(value.strip())
        return out
