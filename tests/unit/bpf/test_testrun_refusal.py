"""A machine whose policy refuses BPF_PROG_RUN with live frames (seen on one VM: EPERM while a
plain run worked) gets an error that says so and names what this process lacks and which
security modules run. The refusing policy cannot be set up here (the kernel's test_run checks
no capability, and BPF LSM programs do not load on this VM), so the syscall's answer is
stubbed; everything around it is real."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from dataplane.bpf import BpfPermissionError, TestRunError
from dataplane.bpf import libbpf as lb
from dataplane.bpf.testrun import privilege_report, prog_test_run
from dataplane.trafficgen import FrameSpec, build_frame

FRAME = build_frame(FrameSpec())


def test_the_report_names_missing_capabilities_and_the_security_modules(
        tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nCapEff:\t000001fffeffffff\n")
    lsm = tmp_path / "lsm"
    lsm.write_text("lockdown,capability,landlock,bpf")
    assert privilege_report(status, lsm) == (
        "capabilities missing: cap_sys_resource (CapEff 000001fffeffffff); "
        "security modules: lockdown,capability,landlock,bpf")
    status.write_text("CapEff:\t0000000000003000\n")  # net_admin and net_raw only
    report = privilege_report(status, tmp_path / "absent")
    assert "cap_sys_admin, cap_sys_resource, cap_perfmon, cap_bpf" in report
    assert "security modules: unknown (securityfs not mounted)" in report


@pytest.mark.parametrize("err", [errno.EPERM, errno.EACCES])
def test_a_refused_live_run_says_where_to_look(monkeypatch: pytest.MonkeyPatch,
                                               err: int) -> None:
    def refuse(fd: int, opts: Any) -> int:
        return -err

    monkeypatch.setattr(lb.lib, "bpf_prog_test_run_opts", refuse)
    with pytest.raises(BpfPermissionError) as caught:
        prog_test_run(3, FRAME, live=True, batch_size=64)
    message = str(caught.value)
    assert message.startswith("BPF_PROG_RUN with live frames refused")
    assert "capabilities missing:" in message and "security modules:" in message
    assert caught.value.errno == err


def test_other_failures_keep_their_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lb.lib, "bpf_prog_test_run_opts", lambda fd, opts: -errno.EINVAL)
    with pytest.raises(TestRunError):
        prog_test_run(3, FRAME, live=True)
    monkeypatch.setattr(lb.lib, "bpf_prog_test_run_opts", lambda fd, opts: -errno.EPERM)
    with pytest.raises(BpfPermissionError) as caught:  # a plain run: the generic message
        prog_test_run(3, FRAME)
    assert "live frames" not in str(caught.value)
