"""`floe observe` against a real `floe serve`: every format, filters with --not, counts,
--server-status, --nodes, and the one-line errors. Flows come in through a real uplink stream
from a dataplane key bound to node n1; each test uses its own source network so the ring's
other events never match its filters."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from datetime import UTC, datetime

import pytest
from google.protobuf import json_format

from floe.observer.v1 import observer_pb2 as pb
from tests.integration.observe.conftest import NODE, Cluster, flow
from tests.support.server import PYTHON, REPO_ROOT

pytestmark = pytest.mark.asyncio(loop_scope="module")


def flows_of(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    return [line for line in lines if line["type"] == "flow"]


async def test_every_format_shows_the_same_flows(cluster: Cluster) -> None:
    async with cluster.uplink() as uplink:
        await uplink.send([flow("10.1.0.1", 41001, dport=443, packets=3),
                           flow("10.1.0.2", 41002, dst="10.200.0.9", dport=53, proto=17,
                                flags=0),
                           flow("fd00:1::1", 41003, dst="fd00:1::2", dport=22)])
        await uplink.send([flow("10.1.0.1", 41001, dport=443, packets=5, end=3,
                                flags=0x13)])
    select = ("--all", "--ip-src", "10.1.0.0/16", "--ip-src", "fd00:1::/32")

    result = await cluster.observe(*select, "-o", "json")
    assert result.code == 0, result.err
    lines = flows_of(result.json_lines())  # node events pass every filter: the server's rule
    assert all(line["node_id"] == NODE for line in lines)
    assert [(f["source_ip"], f["source_port"], f["kind"]) for f in lines] == [
        ("10.1.0.1", 41001, "new"), ("10.1.0.2", 41002, "new"), ("fd00:1::1", 41003, "new"),
        ("10.1.0.1", 41001, "end")]
    end = lines[3]
    assert (end["packets"], end["bytes"], end["delta_packets"], end["end_reason"],
            end["tcp_flags"], end["protocol"]) == (5, 300, 2, "tcp_fin",
                                                   ["FIN", "SYN", "ACK"], "tcp")
    assert lines[1]["protocol"] == "udp" and lines[2]["ip_version"] == 6
    cursors = [line["cursor"] for line in lines]
    assert cursors == sorted(cursors) and len(set(cursors)) == 4
    when = datetime.fromisoformat(str(lines[0]["time"]).replace("Z", "+00:00"))
    assert abs(when.timestamp() - time.time()) < 60

    jsonpb = await cluster.observe(*select, "-o", "jsonpb")
    assert jsonpb.code == 0, jsonpb.err
    events = [json_format.Parse(line, pb.Event()) for line in jsonpb.out.splitlines()]
    events = [e for e in events if e.HasField("flow")]
    assert [e.cursor for e in events] == cursors
    assert events[3].flow.flow.end_reason == pb.END_REASON_TCP_FIN
    assert json_format.MessageToDict(events[0])["flow"]["kind"] == "EVENT_KIND_NEW"

    table = await cluster.observe(*select, "-o", "table")
    assert table.code == 0, table.err
    header, *rows = table.out.splitlines()
    assert header.split()[:5] == ["TIMESTAMP", "NODE", "INTERFACE", "SOURCE", "DESTINATION"]
    assert len(rows) == 4
    stamp = datetime.fromisoformat(str(lines[0]["time"])[:26])  # TZ=UTC for the observer
    assert rows[0].startswith(f"{stamp:%b} {stamp.day:2d} {stamp:%H:%M:%S}.")
    assert "10.1.0.1:41001" in rows[0] and "[fd00:1::1]:41003" in rows[2]
    assert "end: tcp-fin" in rows[3]

    compact = await cluster.observe(*select, "-o", "compact")
    assert compact.code == 0, compact.err
    assert len(compact.out.splitlines()) == 4
    assert (f"[{NODE}/eth0]: 10.1.0.2:41002 -> 10.200.0.9:53 udp new UNKNOWN"
            in compact.out.splitlines()[1])
    assert f"NODE {NODE} CONNECTED" in compact.err  # node events: stderr in human formats

    as_csv = await cluster.observe(*select, "-o", "csv", "--fields",
                                   "source_ip,destination_port,bytes")
    assert as_csv.code == 0, as_csv.err
    rows_csv = list(csv.DictReader(io.StringIO(as_csv.out)))
    assert list(rows_csv[0]) == ["time", "cursor", "node_id", "kind", "source_ip",
                                 "destination_port", "bytes"]
    assert [(r["source_ip"], r["destination_port"], r["bytes"]) for r in rows_csv] == [
        ("10.1.0.1", "443", "180"), ("10.1.0.2", "53", "60"), ("fd00:1::1", "22", "60"),
        ("10.1.0.1", "443", "300")]


async def test_field_mask_reaches_the_server(cluster: Cluster) -> None:
    async with cluster.uplink() as uplink:
        await uplink.send([flow("10.2.0.1", 42001, packets=9)])
    result = await cluster.observe("--all", "--ip-src", "10.2.0.0/16", "-o", "jsonpb",
                                   "--field-mask", "source_ip,packets")
    assert result.code == 0, result.err
    (event,) = [json.loads(line) for line in result.out.splitlines() if '"flow":' in line]
    assert event["flow"]["flow"] == {"sourceIp": "10.2.0.1", "packets": "9"}


async def test_filters_and_not(cluster: Cluster) -> None:
    async with cluster.uplink() as uplink:
        await uplink.send([
            flow("10.3.0.1", 43001, dport=80), flow("10.3.0.1", 43002, dport=443),
            flow("10.3.0.1", 43003, dport=53, proto=17, flags=0),
            flow("10.3.0.2", 43004, dport=80), flow("10.3.0.2", 43005, dport=53, proto=17,
                                                     flags=0, end=1),
        ])

    async def ports(*args: str) -> list[int]:
        result = await cluster.observe("--all", "--ip-src", "10.3.0.0/16", "-o", "json", *args)
        assert result.code == 0, result.err
        return [int(f["source_port"]) for f in flows_of(result.json_lines())]  # type: ignore[call-overload]

    assert await ports() == [43001, 43002, 43003, 43004, 43005]
    assert await ports("--ip", "10.3.0.2") == [43004, 43005]  # AND with --ip-src's /16
    assert await ports("--ip-src", "10.9.9.9") == [43001, 43002, 43003, 43004, 43005]  # OR
    assert await ports("--port", "53") == [43003, 43005]
    assert await ports("--not", "--port", "53") == [43001, 43002, 43004]
    assert await ports("--not", "--port", "53", "--not", "--port", "80") == [43002]
    assert await ports("--protocol", "udp", "--not", "--ip-src", "10.3.0.2") == [43003]
    # hubble's rule: negated criteria of different flags form one deny filter (AND)
    assert await ports("--not", "--ip-src", "10.3.0.1", "--not", "--port-dst", "80") == [
        43002, 43003, 43004, 43005]
    assert await ports("--type", "end") == [43005]
    assert await ports("--end-reason", "idle-timeout") == [43005]
    assert await ports("--tcp-flags", "SYN,ACK", "--port-dst", "443") == [43002]
    assert await ports("--node", NODE, "--interface", "eth0", "--port-src", "43001") == [43001]
    assert await ports("--node", "elsewhere") == []
    assert await ports("--ipv6") == []


async def test_last_and_first_count_like_hubble(cluster: Cluster) -> None:
    async with cluster.uplink() as uplink:
        after_hello = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for i in range(10):  # ten batches, one flow each
            await uplink.send([flow("10.4.0.1", 44000 + i)])
        # Node events pass every filter (the server's rule) and count: keep this uplink open
        # (no disconnect event after the flows) and start --first after its connect event.
        select = ("--ip-src", "10.4.0.0/16", "-o", "json")
        last = await cluster.observe("--last", "3", *select)
        assert [f["source_port"] for f in last.json_lines()] == [44007, 44008, 44009]
        first = await cluster.observe("--first", "3", "--since", after_hello, *select)
        assert [f["source_port"] for f in first.json_lines()] == [44000, 44001, 44002]
        default = await cluster.observe(*select)
        assert len(flows_of(default.json_lines())) == 10  # the last 20 (ten flows match)
        assert len(default.json_lines()) <= 20


async def test_since_and_until(cluster: Cluster) -> None:
    async with cluster.uplink() as uplink:
        await uplink.send([flow("10.5.0.1", 45001)])
        middle = datetime.now(UTC)
        time.sleep(0.01)  # a distinct clock reading, not a wait for an event
        await uplink.send([flow("10.5.0.1", 45002)])
    select = ("--ip-src", "10.5.0.0/16", "-o", "json")
    stamp = middle.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    after = await cluster.observe("--since", stamp, *select)
    assert [f["source_port"] for f in flows_of(after.json_lines())] == [45002]
    before = await cluster.observe("--until", stamp, *select)
    assert [f["source_port"] for f in flows_of(before.json_lines())] == [45001]
    recent = await cluster.observe("--since", "10m", *select)
    assert [f["source_port"] for f in flows_of(recent.json_lines())] == [45001, 45002]


async def test_server_status_and_nodes(cluster: Cluster) -> None:
    async with cluster.uplink() as uplink:
        await uplink.send([flow("10.6.0.1", 46001)])
        status = await cluster.observe("--server-status", "-o", "json")
        assert status.code == 0, status.err
        (values,) = status.json_lines()
        assert values["ring_capacity"] == 65536 and values["num_flows_seen"] >= 1
        assert values["nodes_connected"] == 1 and values["newest_cursor"] > 0

        human = await cluster.observe("--server-status")
        assert "Nodes:              1/1 connected" in human.out

        nodes = await cluster.observe("--nodes", "-o", "json")
        (node,) = nodes.json_lines()
        assert (node["node_id"], node["connected"], node["version"]) == (NODE, True,
                                                                         "0.1.0-test")
        assert node["interfaces"] == [{"name": "eth0", "mode": "tap", "attach_mode": "native"}]
        table = await cluster.observe("--nodes")
        assert table.out.splitlines()[1].split()[:3] == [NODE, "connected", "0.1.0-test"]


async def test_refusals_are_one_line_errors_with_the_servers_message(cluster: Cluster) -> None:
    unauthenticated = await cluster.observe(env=cluster.env(FLOE_TOKEN="floe_nope_nope"))
    assert unauthenticated.code == 1
    assert unauthenticated.err.splitlines() == [
        "floe observe: not authenticated: the credential is invalid, expired or revoked "
        "(give an access token or API key with --token or FLOE_TOKEN)"]

    rules_only = await cluster.key(["rules:read"])
    denied = await cluster.observe("--token", rules_only)
    assert denied.code == 1 and len(denied.err.splitlines()) == 1
    assert denied.err.startswith("floe observe: permission denied: ") and "flows:read" in denied.err
    status_denied = await cluster.observe("--server-status", "--token", rules_only)
    assert status_denied.code == 1 and "permission denied" in status_denied.err

    invalid = await cluster.observe("--protocol", "nonsense")
    assert invalid.code == 1
    assert invalid.err == ("floe observe: invalid argument: allow[0].protocol: 'nonsense' is "
                           "not a protocol (a name: esp, gre, icmp, icmpv6, sctp, tcp, udp; "
                           "or a number 0-255)\n")
    unknown_field = await cluster.observe("--fields", "nope")
    assert unknown_field.code == 1 and "field_mask: unknown Flow fields: nope" in unknown_field.err

    no_token = await cluster.observe(env=cluster.env(FLOE_TOKEN=""))
    assert (no_token.code, no_token.err.count("\n")) == (1, 1) and "no token" in no_token.err
    bad_env = await cluster.observe(env=cluster.env(FLOE_TOKEN="two words"))
    assert bad_env.code == 2 and "FLOE_TOKEN" in bad_env.err and "two words" not in bad_env.err

    nobody = await cluster.observe("--server", "127.0.0.1:1", "--timeout", "1")
    assert nobody.code == 1
    assert nobody.err == ("floe observe: cannot connect to 127.0.0.1:1 within 1 s "
                          "(is floe serve running there?)\n")
    usage = await cluster.observe("--port", "80", "--not")
    assert usage.code == 2 and "--not must be followed by a filter" in usage.err


async def test_a_closed_pipe_ends_quietly(cluster: Cluster) -> None:
    """`floe observe | head -1`: exit 0, no traceback."""
    async with cluster.uplink() as uplink:
        await uplink.send([flow("10.7.0.1", 47000 + i) for i in range(2000)])
    process = subprocess.Popen(  # a plain pipe whose reader goes away
        [str(PYTHON), "-m", "app.cli", "observe", "--all", "-o", "json"], cwd=REPO_ROOT,
        env=cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    try:
        code = process.wait(20)
    finally:
        process.kill()
    err = process.stderr.read().decode()
    assert code == 0 and "Traceback" not in err, err
