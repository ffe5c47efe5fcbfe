"""Observer fan-out benchmark: 100 GetFlows followers while a dataplane feeds ≥ 20k events/s.

    python bench/observer/observer_bench.py [--rate 20000] [--seconds 10] [--followers 100]

Starts `floe serve` pinned to CPU 1 (clients, feeder and wrk on CPU 0), then measures, in one
run and side by side:

* phase "alone": the feeder sends RATE flow events/s over a real uplink stream (batches every
  50 ms, `last_seen` stamped at send); FOLLOWERS consumers follow with FOLLOWERS different
  filters (one destination port each: 1 % of the events each), plus one consumer that never
  reads (stalled). Reported: events fed and delivered per second, lag from the event's
  `last_seen` to its arrival (p50/p99), events the keeping-up consumers lost (goal 0), the
  control plane's CPU per 1,000 events delivered.
* phase "REST load": the same while wrk drives GET /api/v2/stats/summary at saturation; the
  ratio of delivered events/s to the first phase (goal ≥ 0.90).
* the stalled consumer: events it then receives + events it is told it lost == what its
  filter matched (exact accounting), and the other consumers' rate and lag compared with a
  first phase run without it.

Prints a table and one JSON line (appended to bench/results/observer.jsonl).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import httpx  # noqa: E402

from floe.dataplane.v1 import uplink_pb2 as up  # noqa: E402
from floe.dataplane.v1 import uplink_pb2_grpc as up_grpc  # noqa: E402
from floe.observer.v1 import observer_pb2 as pb  # noqa: E402
from floe.observer.v1 import observer_pb2_grpc as pb_grpc  # noqa: E402
from tests.support.ports import free_port, free_udp_port  # noqa: E402

PORT_BASE = 10_000
A = ipaddress.IPv6Address("::ffff:10.0.0.1").packed
B = ipaddress.IPv6Address("::ffff:10.0.0.2").packed


def pin(cpu: int) -> None:
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        pass


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- feeder ---------------------------------------------------------------------------------

def feeder(target: str, key: str, rate: int, seconds: float, flows: int, followers: int,
           out: Any) -> None:
    pin(0)

    async def run() -> None:
        per_batch = max(1, rate // 20)
        async with grpc.aio.insecure_channel(target) as channel:
            call = up_grpc.UplinkStub(channel).Connect(
                metadata=(("authorization", f"Bearer {key}"),))
            await call.write(up.UplinkMessage(hello=up.Hello(node_id="bench-1",
                                                             instance_id=uuid.uuid4().hex)))
            acked = asyncio.Event()
            state = {"acked": 0}

            async def reader() -> None:
                while True:
                    message = await call.read()
                    if message is grpc.aio.EOF:
                        return
                    if message.WhichOneof("body") == "ack":
                        state["acked"] = message.ack.seq
                        acked.set()

            reading = asyncio.create_task(reader())
            sent = seq = n = 0
            packets = [0] * flows
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                seq += 1
                now = time.time_ns()
                records = []
                for _ in range(per_batch):
                    f = n % flows
                    packets[f] += 1
                    records.append(up.FlowRecord(
                        addr_a=A, addr_b=B, port_a=20_000 + f, port_b=PORT_BASE + f % followers,
                        proto=6, interface="veth0", ifindex=2, packets_ab=packets[f],
                        bytes_ab=packets[f] * 100, first_seen_unix_ns=1_000 + f,
                        last_seen_unix_ns=now))
                    n += 1
                await call.write(up.UplinkMessage(batch=up.Batch(seq=seq, flows=records)))
                sent += per_batch
                # like the dataplane: send on time, up to a bounded backlog of unacked batches
                while state["acked"] < seq - 64:
                    acked.clear()
                    await acked.wait()
                pause = start + seq * (per_batch / rate) - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
            while state["acked"] < seq:
                acked.clear()
                await asyncio.wait_for(acked.wait(), 10)
            out.put({"sent": sent, "seconds": time.monotonic() - start})
            call.cancel()
            reading.cancel()

    asyncio.run(run())


# --- consumers ------------------------------------------------------------------------------

def consumers(target: str, token: str, ports: list[int], seconds: float, stalled: bool,
              ready: Any, out: Any) -> None:
    pin(0)

    async def follow(stub: Any, port: int, stats: dict[str, Any], deadline: float) -> None:
        request = pb.GetFlowsRequest(follow=True, allow=[pb.FlowFilter(
            node=["bench-1"], destination_port=[port])])
        call = stub.GetFlows(request, metadata=(("authorization", f"Bearer {token}"),))
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    message = await asyncio.wait_for(call.read(), remaining)
                except TimeoutError:
                    return
                if message is grpc.aio.EOF:
                    return
                now = time.time_ns()
                for event in message.events:
                    kind = event.WhichOneof("event")
                    if kind == "flow":
                        stats["events"] += 1
                        if stats["events"] % 7 == 0:
                            stats["lags"].append((now - event.flow.flow.last_seen.ToNanoseconds())
                                                 / 1e6)
                    elif kind == "lost_events":
                        stats["lost"] += event.lost_events.num_events_lost
        finally:
            call.cancel()

    async def run() -> None:
        options = [("grpc.http2.bdp_probe", 0)] if stalled else []
        async with grpc.aio.insecure_channel(target, options=options) as channel:
            stub = pb_grpc.ObserverStub(channel)
            if stalled:
                call = stub.GetFlows(pb.GetFlowsRequest(follow=True, allow=[pb.FlowFilter(
                    node=["bench-1"])]), metadata=(("authorization", f"Bearer {token}"),))
                await call.initial_metadata()
                ready.put(1)
                await asyncio.sleep(seconds)  # never read while the feed runs…
                events = lost = 0
                while True:  # …then take what is left
                    try:
                        message = await asyncio.wait_for(call.read(), 3)
                    except TimeoutError:
                        break
                    for event in message.events:
                        if event.WhichOneof("event") == "flow":
                            events += 1
                        elif event.WhichOneof("event") == "lost_events":
                            lost += event.lost_events.num_events_lost
                call.cancel()
                out.put({"stalled": {"events": events, "lost": lost}})
                return
            stats = {"events": 0, "lost": 0, "lags": []}
            deadline = time.monotonic() + seconds
            tasks = [asyncio.create_task(follow(stub, port, stats, deadline)) for port in ports]
            await asyncio.sleep(0.5)
            ready.put(len(ports))
            await asyncio.gather(*tasks)
            out.put(stats)

    asyncio.run(run())


# --- orchestration --------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def phase(name: str, target: str, key: str, token: str, args: argparse.Namespace, pid: int,
          rest_url: str | None, stalled: bool = True) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    ports = [PORT_BASE + i for i in range(args.followers)]
    halves = [ports[: len(ports) // 2], ports[len(ports) // 2:]]
    watch = args.seconds + 10
    procs = [ctx.Process(target=consumers, args=(target, token, part, watch, False, ready, out))
             for part in halves]
    if stalled:
        procs.append(ctx.Process(target=consumers, args=(target, token, [], args.seconds + 6,
                                                         True, ready, out)))
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=30)
    wrk = None
    if rest_url:
        wrk = subprocess.Popen(
            ["taskset", "-c", "0", "wrk", "-t1", "-c64", f"-d{int(args.seconds) + 2}s",
             "-H", f"Authorization: Bearer {token}", rest_url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.5)
    cpu0 = cpu_seconds(pid)
    feed = ctx.Process(target=feeder, args=(target, key, args.rate, args.seconds, args.flows,
                                            args.followers, out))
    feed.start()
    results = [out.get(timeout=args.seconds + 60) for _ in range(len(procs) + 1)]
    cpu = cpu_seconds(pid) - cpu0
    for proc in [*procs, feed]:
        proc.join(10)
    rest_rps = None
    if wrk is not None:
        text, _ = wrk.communicate(timeout=30)
        for line in text.splitlines():
            if line.startswith("Requests/sec"):
                rest_rps = float(line.split()[1])
    fed = next(r for r in results if "sent" in r)
    stuck = next((r["stalled"] for r in results if "stalled" in r),
                 {"events": 0, "lost": 0})
    followers = [r for r in results if "lags" in r]
    delivered = sum(r["events"] for r in followers)
    lags = [lag for r in followers for lag in r["lags"]]
    return {
        "phase": name,
        "fed_per_s": fed["sent"] / fed["seconds"],
        "delivered_per_s": delivered / fed["seconds"],
        "delivered": delivered,
        "sent": fed["sent"],
        "lost_by_followers": sum(r["lost"] for r in followers),
        "lag_p50_ms": percentile(lags, 0.5),
        "lag_p99_ms": percentile(lags, 0.99),
        "cpu_ms_per_1000_delivered": 1000 * cpu / max(1, delivered) * 1000,
        "server_cpu_share": cpu / fed["seconds"],
        "stalled_received": stuck["events"],
        "stalled_lost": stuck["lost"],
        "stalled_expected": fed["sent"] if stalled else 0,
        "rest_rps": rest_rps,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--flows", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="floe-bench-observer-"))
    http, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "DB_", "HTTP"))}
    env.update({"FLOE_DATA_DIR": str(work / "data"), "BIND_HOST": "127.0.0.1",
                "HTTP_PORT": str(http), "HTTPS_PORT": str(free_udp_port()),
                "GRPC_PORT": str(grpc_port), "METRICS_PORT": str(free_port()),
                "HTTP3_ENABLED": "false", "FLOE_ENV": "development", "LOG_JSON": "true",
                # every follower here uses the admin's token: lift the per-credential cap
                "FLOE_OBSERVER_STREAMS_PER_CREDENTIAL": "1024",
                "PYTHONPATH": str(ROOT)})
    server = subprocess.Popen(["taskset", "-c", "1", str(ROOT / ".venv/bin/python"), "-m",
                               "app.cli", "-v", "serve"], env=env, cwd=work,
                              stdout=(work / "floe.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{http}/api/v2"
        for _ in range(200):
            try:
                httpx.get(base + "/ping", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = httpx.post(base + "/auth/login", json={
            "email": "admin@localhost.local", "password": "admin123"}).json()["data"][
            "access_token"]
        key = httpx.post(base + "/clients", headers={"Authorization": f"Bearer {token}"},
                         json={"name": "bench", "scopes": ["dataplane:write"],
                               "node_id": "bench-1"}).json()["data"]["api_key"]
        target = f"127.0.0.1:{grpc_port}"
        calm = phase("alone, no stalled consumer", target, key, token, args, server.pid, None,
                      stalled=False)
        alone = phase("alone", target, key, token, args, server.pid, None)
        loaded = phase("REST load", target, key, token, args, server.pid,
                       base + "/stats/summary")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)
        shutil.rmtree(work, ignore_errors=True)
    print(f"# observer benchmark {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} — "
          f"Python {sys.version.split()[0]}, {args.followers} followers, {args.rate} events/s "
          f"for {args.seconds:.0f} s, server on CPU 1")
    header = ("phase", "fed/s", "delivered/s", "lost", "lag p50", "lag p99", "cpu ms/1k",
              "cpu share", "stalled got+lost/sent", "REST rps")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in (calm, alone, loaded):
        stalled = f"{row['stalled_received']}+{row['stalled_lost']}/{row['stalled_expected']}"
        rest = "" if row["rest_rps"] is None else f"{row['rest_rps']:.0f}"
        print(f"| {row['phase']} | {row['fed_per_s']:.0f} | {row['delivered_per_s']:.0f} | "
              f"{row['lost_by_followers']} | {row['lag_p50_ms']:.1f} ms | "
              f"{row['lag_p99_ms']:.1f} ms | {row['cpu_ms_per_1000_delivered']:.1f} | "
              f"{row['server_cpu_share']:.2f} | {stalled} | {rest} |")
    ratio = loaded["delivered_per_s"] / alone["delivered_per_s"]
    print(f"event rate under REST load / alone: {ratio:.2f}x (goal >= 0.90)")
    steady = alone["delivered_per_s"] / calm["delivered_per_s"]
    print(f"with a stalled consumer / without: rate {steady:.2f}x, "
          f"p99 lag {alone['lag_p99_ms']:.0f} vs {calm['lag_p99_ms']:.0f} ms")
    line = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": sys.version.split()[0], "calm": calm, "alone": alone, "rest_load": loaded,
            "rest_ratio": ratio}
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    with (results / "observer.jsonl").open("a") as handle:
        handle.write(json.dumps(line) + "\n")
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
