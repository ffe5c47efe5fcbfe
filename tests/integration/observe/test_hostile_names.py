"""A compromised dataplane (a key bound to its node) names its interface, version and losses
with terminal escape sequences; `floe observe` must not replay them into the operator's
terminal. Driven as the attacker would: a real uplink stream with the node's own key."""

from __future__ import annotations

import uuid

import pytest

from floe.dataplane.v1 import uplink_pb2 as up
from tests.integration.observe.conftest import NODE, Cluster, Uplink, flow

pytestmark = pytest.mark.asyncio(loop_scope="module")

# OSC 52 (write the clipboard), a cursor-up + erase-line (hide earlier lines), a C1 CSI,
# a right-to-left override, a bell.
HOSTILE = "eth0\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[1A\x1b[2K\x9b31m\u202ex"
CONTROLS = {"\x1b", "\x07", "\x9b", "\u202e"}


async def test_hostile_names_are_escaped_in_every_format(cluster: Cluster) -> None:
    link = Uplink(cluster.target, cluster.writer_key)
    try:
        await link.call.write(up.UplinkMessage(hello=up.Hello(
            node_id=NODE, instance_id=uuid.uuid4().hex, version=f"1.0{HOSTILE}",
            interfaces=[up.InterfaceInfo(name=HOSTILE, ifindex=2, mode=up.MODE_TAP)])))
        assert (await link.call.read()).HasField("welcome")
        await link.send([flow("10.30.0.1", 56001, iface=HOSTILE)])
        link.seq += 1
        await link.call.write(up.UplinkMessage(batch=up.Batch(seq=link.seq, losses=[
            up.LossReport(source=up.LOSS_SOURCE_OTHER, interface=HOSTILE, count=3,
                          detail=HOSTILE)])))
        while not (await link.call.read()).HasField("ack"):
            pass

        for args in (("-o", "compact"), ("-o", "table"), ("-o", "csv"), ("-o", "json"),
                     ("-o", "jsonpb"), ("--nodes",), ("--nodes", "-o", "csv"),
                     ("--server-status",)):
            result = await cluster.observe("--all", "--ip-src", "10.30.0.0/16", *args)
            assert result.code == 0, (args, result.err)
            shown = result.out + result.err
            assert not CONTROLS & set(shown), (args, shown)
            if args[0] != "--server-status":
                assert "eth0" in shown, (args, shown)
        compact = await cluster.observe("--all", "--ip-src", "10.30.0.0/16")
        assert "eth0\\x1b]52;c;" in compact.out  # escaped, still readable
        assert "EVENTS LOST: DATAPLANE 3" in compact.err and "\\x1b" in compact.err
    finally:
        await link.close()
