"""Cross-instance freshness and load through the relay (ADR 0008).

Two real `floe serve` (A and B) on one PostgreSQL database and a private redis-server.
Dataplanes connected to A stream batches; measured:

1. freshness: a batch acknowledged by A → its counters in B's /stats/summary (polled), over
   `--samples` single batches;
2. load: `--nodes` dataplanes x `--rate` batches/s for `--seconds`, each batch carrying
   `--flows` flow records; then how long B takes to converge on exact totals, what the relay
   counted as lost, and B's stream lag (Redis stored → B read) p50/p99.

Bounded in count and time; loopback only. Prints one block of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from floe.dataplane.v1 import uplink_pb2 as pb
from tests.integration.uplink.real import ADMIN, mint_key, open_stream
from tests.support.databases import fresh_database
from tests.support.redis_server import RedisServer
from tests.support.server import FloeServer

_FLOWS: dict[int, bytes] = {}  # flow count -> a Batch holding only those flows, encoded


def batch(seq: int, packets: int, flows: int) -> Any:
    """A batch; its flow records are built once per size (the client is not the bench)."""
    if flows not in _FLOWS:
        dst = ipaddress.IPv6Address("::ffff:10.8.0.2").packed
        _FLOWS[flows] = pb.Batch(flows=[
            pb.FlowRecord(addr_a=ipaddress.IPv6Address(f"::ffff:10.7.{n // 256 % 256}."
                                                       f"{n % 256}").packed,
                          addr_b=dst, port_a=1024 + n % 60000, port_b=443, proto=6,
                          interface="veth0", packets_ab=1, bytes_ab=60, first_seen_unix_ns=1 + n)
            for n in range(flows)]).SerializeToString()
    message = pb.Batch.FromString(_FLOWS[flows])
    message.seq = seq
    message.counters.add(interface="veth0", counter_epoch="e",
                         values={"packets": packets, "bytes": packets * 100})
    return message


class Dataplane:
    def __init__(self, call: Any) -> None:
        self.call = call

    async def send(self, message: Any) -> None:
        await self.call.write(pb.UplinkMessage(batch=message))
        while (await self.call.read()).WhichOneof("body") != "ack":
            pass


async def packets(client: httpx.AsyncClient) -> dict[str, int]:
    data = (await client.get("/api/v2/stats/summary")).json()["data"]
    return {i["node_id"]: i["packets"] for i in data["interfaces"]}


async def run(args: argparse.Namespace, a: FloeServer, b: FloeServer) -> None:
    token = httpx.post(a.url("/api/v2/auth/login"), json=ADMIN,
                       timeout=30).json()["data"]["access_token"]
    key = mint_key(a, ["dataplane:write"])
    headers = {"Authorization": f"Bearer {token}"}
    async with (httpx.AsyncClient(base_url=b.url(""), headers=headers, timeout=30) as on_b,
                grpc.aio.insecure_channel(f"127.0.0.1:{a.grpc_port}") as channel):
        tag = uuid.uuid4().hex[:6]
        nodes = []
        for n in range(args.nodes):
            hello = pb.Hello(node_id=f"bench-{tag}-{n}", instance_id=uuid.uuid4().hex,
                             interfaces=[pb.InterfaceInfo(name="veth0", mode=pb.MODE_TAP)])
            nodes.append((hello.node_id, Dataplane(await open_stream(channel, key, hello))))
        first_id, first = nodes[0]
        await first.send(batch(1, 1, 0))
        while (await packets(on_b)).get(first_id) != 1:
            await asyncio.sleep(0.01)
        delays = []
        for seq in range(2, args.samples + 2):
            await first.send(batch(seq, seq, 0))
            start = time.perf_counter()
            while (await packets(on_b)).get(first_id) != seq:
                pass
            delays.append((time.perf_counter() - start) * 1000)
        delays.sort()
        print(f"freshness, A ack -> B /stats/summary, {len(delays)} batches: "
              f"p50 {statistics.median(delays):.1f} ms, "
              f"p99 {delays[int(0.99 * len(delays))]:.1f} ms, max {delays[-1]:.1f} ms")

        base = args.samples + 2
        rounds = int(args.seconds * args.rate)
        started = time.perf_counter()
        for r in range(rounds):
            tick = started + r / args.rate
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
            seq = base + r
            await asyncio.gather(*(dp.send(batch(seq, seq * 10, args.flows))
                                   for _, dp in nodes))
        sent_for = time.perf_counter() - started
        last = (base + rounds - 1) * 10
        done = time.perf_counter()
        while True:
            seen = await packets(on_b)
            if all(seen.get(node) == last for node, _ in nodes):
                break
            assert time.perf_counter() - done < 120, "B did not converge in 120 s"
            await asyncio.sleep(0.05)
        converge = time.perf_counter() - done
        relay = (await on_b.get("/api/v2/stats/summary")).json()["data"]["relay"]
        print(f"load: {args.nodes} nodes x {rounds} batches of {args.flows} flows in "
              f"{sent_for:.1f} s (asked {args.seconds:.0f} s at {args.rate:g}/s); B exact "
              f"{converge * 1000:.0f} ms after the last ack; B relay lost {relay['lost']}, "
              f"stream lag ms {relay['lag_ms']}, A->B batches applied "
              f"{relay['batches_applied']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flows", type=int, default=100)
    args = parser.parse_args()
    redis = RedisServer().start()
    database = fresh_database("postgresql", Path("/tmp"))
    env = {**next(database), "REDIS_URL": redis.url, "HTTP3_ENABLED": "false"}
    a = FloeServer.start(env=env, timeout=60)
    b = FloeServer.start(env=env, timeout=60)
    try:
        print(f"relay bench {time.strftime('%Y-%m-%d %H:%M')} ({sys.executable})")
        asyncio.run(run(args, a, b))
    finally:
        for server in (a, b):
            server.stop()
            server.cleanup()
        redis.stop()
        database.close()


if __name__ == "__main__":
    main()
