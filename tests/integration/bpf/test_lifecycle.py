"""Pinned state outlives the loader: restart reattaches with counters intact, no gap; detach."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dataplane.bpf import PIN_ROOT, AttachError, PinError, Rule, RuleSet, XdpProgram
from dataplane.bpf import libbpf as lb
from dataplane.bpf.loader import _locked, _query, pin_dir_for
from dataplane.netns import NETNS_DIR, Topology, call_in
from dataplane.trafficgen import AfPacketSender, FrameSpec, LiveFrameGenerator, build_frame
from tests.support.topology import VethNs, wait_until

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[3]
LOADER = """
import json, sys
from dataplane.bpf import Rule, RuleSet, XdpProgram
prog = XdpProgram.attach(sys.argv[1], mode="inline")
if sys.argv[2] == "rules":
    prog.rules.apply(RuleSet([Rule(7, "deny", src="192.0.2.0/24")]))
c = prog.counters()
hits = sum(h.packets for h in prog.rule_hits().values())
print(json.dumps({"mode": prog.attach_mode, "prog_id": prog.prog_id, "packets": c.packets,
                  "dropped_rule": c.dropped_rule, "hits": hits}))
"""


def _loader(ifname: str, what: str) -> dict[str, int | str]:
    proc = subprocess.run([sys.executable, "-c", LOADER, ifname, what], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


BAD = build_frame(FrameSpec(src="192.0.2.1", dst="10.3.0.1", proto="udp"))
GOOD = build_frame(FrameSpec(src="10.3.0.9", dst="10.3.0.1", proto="udp"))


def test_restart_keeps_counters_and_filtering(veth_ns: VethNs,
                                              make_xdp: Callable[..., XdpProgram]) -> None:
    ifname = veth_ns.pair.host
    first = _loader(ifname, "rules")  # attaches, applies a deny rule, exits
    assert first["mode"] == "native" and first["packets"] == 0
    reader = make_xdp(ifname)  # registers teardown; this attach is itself a reattach
    assert reader.counters().packets == 0

    with AfPacketSender(veth_ns.pair.peer, veth_ns.namespace) as sender:
        assert sender.send([BAD] * 40 + [GOOD] * 10) == 50  # no loader process running
        assert wait_until(lambda: reader.counters().packets == 50)
        assert reader.counters().dropped_rule == 40

        # keep sending while a new loader process reattaches: every frame still filtered
        sent: list[int] = []
        stop = threading.Event()

        def pump() -> None:
            while not stop.is_set() and sum(sent) < 20_000:
                sent.append(sender.send([BAD] * 50))

        thread = threading.Thread(target=pump)
        thread.start()
        try:
            second = _loader(ifname, "keep")
        finally:
            stop.set()
            thread.join(30)
    assert second["mode"] == "native"
    assert second["prog_id"] != first["prog_id"]  # new program replaced the old in place
    assert int(second["packets"]) >= 50 and int(second["hits"]) >= 40
    total_bad = 40 + sum(sent)
    assert wait_until(lambda: reader.counters().packets == 50 + sum(sent), timeout=5)
    c = reader.counters()
    assert c.dropped_rule == total_bad and c.passed == 10
    assert reader.rule_hits()[7].packets == total_bad


def test_detach_removes_program_and_pins(veth_ns: VethNs,
                                         make_xdp: Callable[..., XdpProgram]) -> None:
    ifname = veth_ns.pair.host
    prog = make_xdp(ifname)
    assert (pin_dir_for(ifname) / "floe_counters").exists()
    assert _query(prog.ifindex).attach_mode == lb.XDP_ATTACHED_DRV
    XdpProgram.open(ifname).detach()
    assert _query(prog.ifindex).attach_mode == lb.XDP_ATTACHED_NONE
    assert not pin_dir_for(ifname).exists()
    with pytest.raises(PinError):
        XdpProgram.open(ifname)
    prog.close()


def test_generic_mode_when_asked(veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, prefer="generic")
    assert prog.attach_mode == "generic"
    assert _query(prog.ifindex).attach_mode == lb.XDP_ATTACHED_SKB
    prog.rules.apply(RuleSet([Rule(1, "deny", proto="udp")]))
    with AfPacketSender(veth_ns.pair.peer, veth_ns.namespace) as sender:
        assert sender.send([GOOD] * 5) == 5
    assert wait_until(lambda: prog.counters().dropped_rule == 5)


def test_falls_back_to_generic_where_native_is_unsupported(
        make_topology: Callable[[str], Topology]) -> None:
    """A bridge device has no native XDP: attach reports generic. Loader runs in a namespace."""
    topo = make_topology("t")
    namespace = topo.add_namespace()
    dummy = f"{topo.prefix}br"
    topo.run(namespace, ["ip", "link", "add", dummy, "type", "bridge"])
    topo.run(namespace, ["ip", "link", "set", dummy, "up"])

    def attach_and_detach() -> tuple[str | None, int]:
        prog = XdpProgram.attach(dummy, mode="inline")
        try:
            return prog.attach_mode, _query(prog.ifindex).attach_mode
        finally:
            prog.detach()

    mode, kernel_mode = call_in(namespace, attach_and_detach)
    assert mode == "generic" and kernel_mode == lb.XDP_ATTACHED_SKB
    assert not call_in(namespace, lambda: pin_dir_for(dummy)).exists()


def test_foreign_program_is_not_replaced_unless_asked(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    ifname = veth_ns.pair.host
    gen = LiveFrameGenerator("floe_gen_drop")  # any XDP program that is not floe_xdp
    try:
        lb.check(lb.lib.bpf_xdp_attach(veth_ns.pair.host_ifindex, gen.prog_fd,
                                       lb.XDP_FLAGS_DRV_MODE, None), AttachError, "attach")
        with pytest.raises(AttachError, match="floe_gen_drop"):
            XdpProgram.attach(ifname)
        assert not pin_dir_for(ifname).exists()
        prog = XdpProgram.attach(ifname, replace_foreign=True)
        assert prog.attach_mode == "native"
        assert _query(prog.ifindex).prog_id == prog.prog_id
        prog.close()
        make_xdp(ifname)  # floe_xdp now: plain attach reattaches; teardown detaches
    finally:
        gen.close()


HOLDER = """
import sys, time
from dataplane.bpf import Rule, RuleSet, XdpProgram
prog = XdpProgram.attach(sys.argv[1], mode="inline")
prog.rules.apply(RuleSet([Rule(9, "deny", src="192.0.2.0/24")]))
print("ready", flush=True)
time.sleep(60)
"""


def test_sigkill_mid_traffic_loses_nothing(veth_ns: VethNs,
                                           make_xdp: Callable[..., XdpProgram]) -> None:
    """SIGKILL the loader while frames flow, restart it: every frame counted and filtered."""
    ifname = veth_ns.pair.host
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, ifname], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        sent: list[int] = []
        stop = threading.Event()
        with AfPacketSender(veth_ns.pair.peer, veth_ns.namespace) as sender:
            def pump() -> None:
                while not stop.is_set() and sum(sent) < 50_000:
                    sent.append(sender.send([BAD] * 25 + [GOOD] * 25))

            thread = threading.Thread(target=pump)
            thread.start()
            try:
                time.sleep(0.2)
                holder.kill()  # SIGKILL: no cleanup code runs
                holder.wait(10)
                time.sleep(0.2)
                restarted = _loader(ifname, "keep")
                time.sleep(0.2)
            finally:
                stop.set()
                thread.join(30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
    assert holder.returncode == -9
    total = sum(sent)
    assert total > 0 and int(restarted["packets"]) > 0
    reader = make_xdp(ifname)
    assert wait_until(lambda: reader.counters().packets == total, timeout=5)
    c = reader.counters()
    assert c.dropped_rule == total // 2 and c.passed == total // 2
    assert reader.rule_hits()[9].packets == total // 2


def test_concurrent_loaders_serialise(veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    """Four processes attach and apply rule sets at once: one consistent state results."""
    ifname = veth_ns.pair.host
    procs = [subprocess.Popen([sys.executable, "-c", LOADER, ifname, "rules"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for proc in procs:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    prog = make_xdp(ifname)
    assert prog.rules.count() == 1 and prog.rules.slots() == {7: 0}
    with AfPacketSender(veth_ns.pair.peer, veth_ns.namespace) as sender:
        assert sender.send([BAD] * 3) == 3
    assert wait_until(lambda: prog.counters().dropped_rule == 3)


def test_loader_waits_for_the_interface_lock(veth_ns: VethNs,
                                             make_xdp: Callable[..., XdpProgram]) -> None:
    ifname = veth_ns.pair.host
    make_xdp(ifname).close()
    with _locked(pin_dir_for(ifname)):
        proc = subprocess.Popen([sys.executable, "-c", LOADER, ifname, "rules"], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(1.5)  # blocked on the flock, not done
        except BaseException:
            proc.kill()
            raise
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and json.loads(out)["mode"] == "native"


def test_ensure_bpffs_mounts_where_none_is_mounted(tmp_path: Path) -> None:
    """A fresh boot has no bpffs at /sys/fs/bpf: the loader mounts one (here at a temp path)."""
    from dataplane.bpf.loader import _is_bpffs, ensure_bpffs

    target = tmp_path / "bpf"
    assert not _is_bpffs(target)
    ensure_bpffs(target)
    try:
        assert _is_bpffs(target)
        ensure_bpffs(target)  # already mounted: nothing to do
    finally:
        subprocess.run(["umount", str(target)], check=True, timeout=10)
    assert not _is_bpffs(target)


def test_an_interface_created_again_under_its_name_starts_fresh(
        make_topology: Callable[[str], Topology],
        make_xdp: Callable[..., XdpProgram]) -> None:
    topo = make_topology("re")
    namespace = topo.add_namespace()
    pair = topo.add_veth(namespace=namespace)
    prog = make_xdp(pair.host)
    AfPacketSender(pair.peer, namespace).send([GOOD] * 5, timeout=10)
    assert wait_until(lambda: prog.counters().packets == 5)
    old_maps = os.stat(pin_dir_for(pair.host) / "floe_counters").st_ino  # the counter epoch
    prog.close()
    # the interface goes (its program with it) and an interface of the same name comes back
    topo.run(None, ["ip", "link", "del", pair.host])
    topo.veths.remove(pair)
    again = topo.add_veth(namespace=namespace)
    assert again.host == pair.host and again.host_ifindex != pair.host_ifindex
    fresh = make_xdp(again.host)
    # new maps (a new counter epoch for the control plane), not the old interface's
    assert os.stat(pin_dir_for(again.host) / "floe_counters").st_ino != old_maps
    assert fresh.counters().packets == 0
    AfPacketSender(again.peer, namespace).send([GOOD] * 3, timeout=10)
    assert wait_until(lambda: fresh.counters().packets == 3)


def test_the_same_name_in_two_namespaces_has_pins_of_its_own(
        make_topology: Callable[[str], Topology],
        make_xdp: Callable[..., XdpProgram]) -> None:
    """Pins are keyed by network namespace: an interface of the same name elsewhere attaches,
    counts and detaches on its own, and leaves this one's counters and program alone."""
    topo = make_topology("nn")
    namespace = topo.add_namespace("a")
    pair = topo.add_veth(namespace=namespace)
    owner = make_xdp(pair.host)
    other = topo.add_namespace("b")
    topo.run(other, ["ip", "link", "add", pair.host, "type", "veth", "peer", "name", "peer0"])
    for name in (pair.host, "peer0"):  # IPv6 off first: no DAD/MLD frames to spoil the count
        topo.run(other, ["sysctl", "-qw", f"net/ipv6/conf/{name}/disable_ipv6=1"])
        topo.run(other, ["ip", "link", "set", name, "up"])

    def attach_there() -> tuple[int, Path]:
        prog = XdpProgram.attach(pair.host, mode="inline", prefer="generic")
        try:
            return prog.prog_id, prog.pin_dir
        finally:
            prog.close()

    there_id, there_pins = call_in(other, attach_there)
    assert there_pins != owner.pin_dir and there_pins.name == owner.pin_dir.name == pair.host
    assert there_pins.parent.name == f"netns-{os.stat(NETNS_DIR / other).st_ino:010d}"
    AfPacketSender(pair.peer, namespace).send([GOOD] * 3, timeout=10)
    AfPacketSender("peer0", other).send([GOOD] * 5, timeout=10)
    assert wait_until(lambda: owner.counters().packets == 3)

    def packets_there() -> int:
        with XdpProgram.open(pair.host) as there:
            return there.counters().packets

    def detach_there() -> None:
        with XdpProgram.open(pair.host) as there:
            there.detach()

    assert wait_until(lambda: call_in(other, packets_there) == 5)
    call_in(other, detach_there)
    assert not there_pins.exists() and not there_pins.parent.exists()
    assert _query(owner.ifindex).prog_id == owner.prog_id != there_id
    assert (owner.pin_dir / "floe_counters").exists() and owner.counters().packets == 3


def test_pins_of_the_layout_before_namespaces_are_adopted(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    """An upgrade while the program keeps filtering: the pins at floe/<ifname>/ move to the
    namespace's directory with their counters, rules and counter epoch."""
    ifname = veth_ns.pair.host
    prog = make_xdp(ifname)
    prog.rules.apply(RuleSet([Rule(7, "deny", src="192.0.2.0/24")]))
    AfPacketSender(veth_ns.pair.peer, veth_ns.namespace).send([BAD] * 2 + [GOOD], timeout=10)
    assert wait_until(lambda: prog.counters().packets == 3)
    prog.close()
    legacy = PIN_ROOT / ifname
    epoch = os.stat(prog.pin_dir / "floe_counters").st_ino
    os.rename(prog.pin_dir, legacy)  # where the previous release pinned them
    with contextlib.suppress(OSError):
        prog.pin_dir.parent.rmdir()
    try:
        status = XdpProgram.open(ifname)  # --status right after the upgrade finds them
        assert status.pin_dir == pin_dir_for(ifname) and not legacy.exists()
        assert status.counters().dropped_rule == 2
        status.close()
        again = XdpProgram.attach(ifname, mode="inline")
        assert os.stat(again.pin_dir / "floe_counters").st_ino == epoch
        assert again.counters().packets == 3 and 7 in again.rule_hits()
        again.close()
    finally:
        if legacy.exists():  # the test failed before the move: put them back for teardown
            pin_dir_for(ifname).parent.mkdir(exist_ok=True)
            os.rename(legacy, pin_dir_for(ifname))


def test_without_cap_sys_admin_pins_are_kept_and_detach_needs_force(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    """Walking loaded programs by id needs CAP_SYS_ADMIN; a loader without it cannot tell who
    uses the pins, so it must keep them (not start fresh), and detach only when forced."""
    ifname = veth_ns.pair.host
    prog = make_xdp(ifname)
    AfPacketSender(veth_ns.pair.peer, veth_ns.namespace).send([GOOD] * 4, timeout=10)
    assert wait_until(lambda: prog.counters().packets == 4)
    no_admin = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"]
    again = subprocess.run([*no_admin, sys.executable, "-c", LOADER, ifname, "keep"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(again.stdout)["packets"] == 4  # the same maps, not fresh ones
    assert "CAP_SYS_ADMIN" in again.stderr
    detach = [*no_admin, sys.executable, "-m", "app.cli", "dataplane", "--detach",
              "--interface", ifname]
    refused = subprocess.run(detach, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "CAP_SYS_ADMIN" in refused.stderr  # cannot verify
    assert _query(prog.ifindex).attach_mode == lb.XDP_ATTACHED_DRV
    assert (pin_dir_for(ifname) / "floe_counters").exists()
    subprocess.run([*detach, "--force"], cwd=ROOT, capture_output=True, timeout=60, check=True)
    assert _query(prog.ifindex).attach_mode == lb.XDP_ATTACHED_NONE
    assert not pin_dir_for(ifname).exists()
