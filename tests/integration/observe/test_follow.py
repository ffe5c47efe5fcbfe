"""`floe observe --follow` for real: Ctrl-C, the resume file across runs, reconnecting after
the control plane restarts (same ports, same data dir), a resume the ring overran, TLS."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
import pytest_asyncio

from tests.integration.observe.conftest import (
    Cluster,
    Observer,
    flow,
    restart,
    running_cluster,
    since_now,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


# One control plane per test: these tests restart it.
cluster = pytest_asyncio.fixture(loop_scope="module", name="cluster")(running_cluster)


def flow_ports(observer: Observer) -> list[int]:
    return [int(line["source_port"]) for line in observer.json_lines()
            if line["type"] == "flow"]


def has_ports(*ports: int) -> object:
    return lambda observer: set(ports) <= set(flow_ports(observer))


async def test_follow_prints_live_events_and_ctrl_c_exits_130_cleanly(
        cluster: Cluster) -> None:
    follower = await cluster.spawn("-f", "--since", since_now(), "--ip-src", "10.20.0.0/16",
                                   "-o", "json")
    async with cluster.uplink() as uplink:
        await uplink.send([flow("10.20.0.1", 50001)])
        await follower.wait_for(has_ports(50001), what="the first flow")
        for i in range(2, 6):  # live, one batch at a time
            await uplink.send([flow("10.20.0.1", 50000 + i)])
        await follower.wait_for(has_ports(50002, 50003, 50004, 50005), what="live flows")
        code = await follower.stop(signal.SIGINT)
    assert code == 130
    assert flow_ports(follower) == [50001, 50002, 50003, 50004, 50005]  # in order, once each
    assert all(line.endswith("\n") for line in follower.lines)  # no half-written line
    err = "".join(follower.err)
    assert "Traceback" not in err and "Error" not in err, err


async def test_sigterm_exits_143(cluster: Cluster) -> None:
    follower = await cluster.spawn("-f", "--since", since_now(), "-o", "json", "--ip-src",
                                   "10.21.0.0/16")
    async with cluster.uplink() as uplink:
        await uplink.send([flow("10.21.0.1", 51001)])
        await follower.wait_for(has_ports(51001), what="a flow")
    assert await follower.stop(signal.SIGTERM) == 143


async def test_resume_file_across_runs_has_no_duplicate_and_no_gap(cluster: Cluster,
                                                                   tmp_path: Path) -> None:
    cursor_file = tmp_path / "cursor"
    select = ("--ip-src", "10.22.0.0/16", "-o", "json", "--resume-file", str(cursor_file))
    async with cluster.uplink() as uplink:
        await uplink.send([flow("10.22.0.1", 52000 + i) for i in range(3)])

        first = await cluster.observe("--all", *select)
        assert first.code == 0, first.err
        printed = first.json_lines()
        assert [f["source_port"] for f in printed if f["type"] == "flow"] == [52000, 52001,
                                                                              52002]
        assert cursor_file.read_text() == f"{printed[-1]['cursor']}\n"

        await uplink.send([flow("10.22.0.1", 52003), flow("10.22.0.1", 52004)])
        second = await cluster.observe(*select)  # after the saved cursor, not "the last 20"
        assert second.code == 0, second.err
        again = second.json_lines()
        assert [f["source_port"] for f in again if f["type"] == "flow"] == [52003, 52004]
        assert not {e["cursor"] for e in printed} & {e["cursor"] for e in again}

        # From a saved cursor the counts do not apply, but --first N means "the next N".
        await uplink.send([flow("10.22.0.1", 52010), flow("10.22.0.1", 52011)])
        next_one = await cluster.observe("--first", "1", *select)
        assert [f["source_port"] for f in next_one.json_lines()] == [52010]
        rest = await cluster.observe("--last", "5", *select)
        assert [f["source_port"] for f in rest.json_lines()] == [52011]

        # A follower with the file: starts after the cursor, saves the last one at Ctrl-C.
        follower = await cluster.spawn("-f", *select)
        await uplink.send([flow("10.22.0.1", 52005)])
        await follower.wait_for(has_ports(52005), what="the flow after the cursor")
        assert await follower.stop(signal.SIGINT) == 130
        followed = follower.json_lines()
        assert [f["source_port"] for f in followed if f["type"] == "flow"] == [52005]
        assert cursor_file.read_text() == f"{followed[-1]['cursor']}\n"

        nothing_new = await cluster.observe(*select)
        assert nothing_new.code == 0 and nothing_new.out == ""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "killed"])
async def test_reconnects_after_the_server_restarts_and_resumes_with_the_cursor(
        cluster: Cluster, stop: int) -> None:
    follower = await cluster.spawn("-f", "--since", since_now(), "--ip-src", "10.23.0.0/16",
                                   "-o", "json")
    async with cluster.uplink() as uplink:
        await uplink.send([flow("10.23.0.1", 53001), flow("10.23.0.1", 53002)])
        await follower.wait_for(has_ports(53001, 53002), what="flows before the restart")

    old = cluster.server
    assert await asyncio.to_thread(old.stop, 10.0, stop) == (0 if stop == signal.SIGTERM
                                                             else -signal.SIGKILL)
    await follower.wait_for(lambda o: any("lost" in line for line in o.err), what="the notice")
    before = [line["cursor"] for line in follower.json_lines()]  # all the old run gave
    cluster.server = await asyncio.to_thread(restart, old)  # same ports, same data dir
    try:
        async with cluster.uplink() as uplink:  # the keys live in the database: still valid
            await follower.wait_for(lambda o: any("reconnected" in line for line in o.err),
                                    timeout=30, what="the reconnect")
            await uplink.send([flow("10.23.0.1", 53003)])
            await follower.wait_for(has_ports(53003), what="a flow after the restart")
    finally:
        old.cleanup()
    assert await follower.stop() == 130

    err = "".join(follower.err)
    assert (f"floe observe: connection to {cluster.target} lost (UNAVAILABLE: "
            in err), err
    assert f"reconnecting to resume after cursor {before[-1]}" in err
    assert f"floe observe: reconnected to {cluster.target} after " in err
    cursors = [line["cursor"] for line in follower.json_lines()]
    assert len(cursors) == len(set(cursors))  # nothing twice
    assert flow_ports(follower) == [53001, 53002, 53003]
    after = cursors[len(before):]
    assert after and min(after) > max(before)  # a new run's cursors are above the old ones
    # The follower had every event of the old run when it went down; the new run cannot know
    # what the old one held after the cursor, so it says the cursor is from an earlier run
    # (counting this run's events already gone: none).
    assert "EVENTS LOST: RING_OVERFLOW 0 (the cursor is from an earlier run" in err


async def test_a_resume_the_ring_overran_prints_the_loss(tmp_path: Path) -> None:
    cluster = await Cluster.start({"FLOE_OBSERVER_RING_SIZE": "1024"})
    try:
        cursor_file = tmp_path / "cursor"
        select = ("-o", "json", "--ip-src", "10.24.0.0/16", "--resume-file", str(cursor_file))
        async with cluster.uplink() as uplink:
            await uplink.send([flow("10.24.0.1", 54000)])
            first = await cluster.observe("--all", *select)
            assert first.code == 0, first.err
            saved = int(cursor_file.read_text())
            for batch in range(10):  # 2000 events through a ring of 1024
                await uplink.send([flow("10.24.1.1", 1000 + batch * 200 + i)
                                   for i in range(200)])
            status = (await cluster.observe("--server-status", "-o", "json")).json_lines()[0]
            second = await cluster.observe(*select)
    finally:
        await cluster.close()
    assert second.code == 0, second.err
    gap = status["oldest_cursor"] - (saved + 1)
    assert gap > 0
    assert f"EVENTS LOST: RING_OVERFLOW {gap}\n" in second.err
    lines = second.json_lines()
    assert (lines[0]["type"], lines[0]["source"], lines[0]["num_events_lost"]) == (
        "lost", "ring_overflow", gap)
    flows = [line for line in lines if line["type"] == "flow"]
    assert flows[0]["cursor"] >= status["oldest_cursor"] and len(flows) >= 1024 - 1
    assert int(cursor_file.read_text()) == lines[-1]["cursor"]


async def test_tls_to_the_local_control_plane_uses_its_own_certificate() -> None:
    cluster = await Cluster.start({"GRPC_TLS": "true"})
    try:
        async with cluster.uplink_tls() as uplink:
            await uplink.send([flow("10.25.0.1", 55001)])
        local = await cluster.observe("--all", "--ip-src", "10.25.0.0/16", "-o", "json")
        assert local.code == 0, local.err
        assert [f["source_port"] for f in local.json_lines() if f["type"] == "flow"] == [55001]

        explicit = await cluster.observe(
            "--all", "--ip-src", "10.25.0.0/16", "-o", "json", "--server",
            f"localhost:{cluster.server.grpc_port}", "--tls-ca-cert",
            str(cluster.server.cert_file), env=cluster.env(GRPC_TLS="false"))
        assert explicit.code == 0, explicit.err
        assert explicit.out == local.out

        plaintext = await cluster.observe("--no-tls", "--timeout", "1")
        assert plaintext.code == 1 and "cannot connect" in plaintext.err
    finally:
        await cluster.close()
