"""Every failure surfaces as a BpfError subclass — never a bare OSError/ctypes error."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dataplane.bpf import (
    AttachError,
    BpfError,
    BpfPermissionError,
    InterfaceNotFoundError,
    MapError,
    ObjectFileError,
    PinError,
    ProgramLoadError,
    Rule,
    RuleError,
    RuleSet,
    TestRunError,
    XdpProgram,
)
from dataplane.bpf.layout import BPF_DIR
from dataplane.bpf.maps import BpfMap
from dataplane.bpf.rules import rule_entries
from dataplane.bpf.testrun import prog_test_run
from dataplane.trafficgen import LiveFrameGenerator

ROOT = Path(__file__).resolve().parents[3]
IS_ROOT = os.geteuid() == 0

BAD_RULES = [
    Rule(1, "deny", src="10.0.0.300/8"),
    Rule(1, "deny", src="10.0.0.0/8", dst="10.0.0.0/8"),
    Rule(1, "deny", src="10.0.0.0/8", port=80),
    Rule(1, "deny", src="10.0.0.0/8", proto="tcp"),
    Rule(0, "deny", proto="tcp"),
    Rule(1, "drop", proto="tcp"),  # type: ignore[arg-type]
    Rule(1, "deny", proto="tcpp"),
    Rule(1, "deny", proto=300),
    Rule(1, "deny", port=70000),
    Rule(1, "deny", port=53, proto="icmp"),
    Rule(1, "deny", port=53, direction="up"),  # type: ignore[arg-type]
    Rule(1, "deny"),
]


@pytest.mark.parametrize("rule", BAD_RULES, ids=repr)
def test_bad_rule(rule: Rule) -> None:
    with pytest.raises(RuleError):
        rule_entries(RuleSet([rule]))


def test_duplicate_rules() -> None:
    with pytest.raises(RuleError, match="duplicate rule id"):
        rule_entries(RuleSet([Rule(1, "deny", proto="tcp"), Rule(1, "deny", proto="udp")]))
    with pytest.raises(RuleError, match="overlaps rule 1"):
        rule_entries(RuleSet([Rule(1, "deny", src="10.0.0.1/8"),
                              Rule(2, "allow", src="10.0.0.0/8")]))
    with pytest.raises(RuleError, match="overlaps rule 1"):  # port rule without proto = tcp+udp
        rule_entries(RuleSet([Rule(1, "deny", port=53), Rule(2, "allow", port=53, proto="udp")]))
    with pytest.raises(RuleError, match="not a Rule"):
        rule_entries(RuleSet(["deny all"]))  # type: ignore[list-item]


SCENARIOS: dict[str, tuple[Callable[[], object], type[BpfError]]] = {
    "nonexistent interface": (lambda: XdpProgram.attach("h3nosuchif0"), InterfaceNotFoundError),
    "invalid interface name": (lambda: XdpProgram.attach("../etc"), InterfaceNotFoundError),
    "bad mode": (lambda: XdpProgram.attach("lo", mode="mirror"), AttachError),  # type: ignore[arg-type]
    "bad prefer": (lambda: XdpProgram.attach("lo", prefer="hw"), AttachError),  # type: ignore[arg-type]
    "missing object": (lambda: XdpProgram.attach("lo", object_path=Path("/nonexistent.o")),
                       ObjectFileError),
    "not an ELF object": (lambda: XdpProgram.attach("lo", object_path=Path(__file__)),
                          ObjectFileError),
    "missing generator object": (lambda: LiveFrameGenerator(object_path=Path("/nonexistent.o")),
                                 ObjectFileError),
    "no pinned maps": (lambda: XdpProgram.open("h3nosuchif0"), PinError),
    "closed map": (lambda: BpfMap("m", -1, 4, 4).lookup(b"\0\0\0\0"), MapError),
    "wrong key size": (lambda: BpfMap("m", 0, 4, 4).lookup(b"\0"), MapError),
    "bad fd lookup": (lambda: BpfMap("m", 999_999, 4, 4).lookup(b"\0\0\0\0"), MapError),
    "short test frame": (lambda: prog_test_run(0, b"\0" * 10), TestRunError),
    "bad prog fd": (lambda: prog_test_run(999_999, b"\0" * 60), TestRunError),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_failure_is_mapped(name: str) -> None:
    call, expected = SCENARIOS[name]
    with pytest.raises(BpfError) as info:
        call()
    if not IS_ROOT and isinstance(info.value, BpfPermissionError):
        return  # unprivileged: the kernel refuses the bpf() call before looking at the fd
    assert isinstance(info.value, expected), f"{type(info.value).__name__}: {info.value}"


@pytest.mark.root
def test_verifier_rejection_carries_log(tmp_path: Path) -> None:
    """An object whose program the verifier rejects -> ProgramLoadError with the log."""
    source = tmp_path / "bad.c"
    source.write_text(
        '#include "floe_xdp.c"\n'
        'SEC("xdp") int bad(struct xdp_md *ctx)\n'
        '{ return *(unsigned char *)(long)ctx->data; }\n'  # no bounds check
    )
    obj = tmp_path / "bad.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-D__TARGET_ARCH_x86",
                    f"-I{BPF_DIR}", f"-I{BPF_DIR / 'build'}", "-c", str(source), "-o", str(obj)],
                   check=True, timeout=60)
    pins = Path("/sys/fs/bpf") / f"h3test{secrets.token_hex(3)}"
    try:
        with pytest.raises(ProgramLoadError) as info:
            XdpProgram.attach("lo", object_path=obj, pin_root=pins)
        assert "invalid access to packet" in info.value.log
        assert not any((pins / "lo").glob("floe_*"))
    finally:
        shutil.rmtree(pins, ignore_errors=True)


@pytest.mark.root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")
def test_unprivileged_is_permission_error(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from dataplane.bpf import XdpProgram, BpfPermissionError, BpfError\n"
        "try:\n    XdpProgram.attach('lo')\n"
        "except BpfPermissionError:\n    sys.exit(0)\n"
        "except BpfError as e:\n    print(type(e).__name__, e); sys.exit(3)\n"
        "sys.exit(4)\n"
    )
    proc = subprocess.run(
        # still uid 0 (to read the interpreter) but with no capabilities at all
        ["setpriv", "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-c", code],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"],
                                                                   "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert BpfPermissionError.__mro__[1].__name__ == "BpfUnavailableError"
