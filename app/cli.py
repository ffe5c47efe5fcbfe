"""`floe` command line: serve | dataplane | demo | observe | db init | users, with -v/-vv/-vvv."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from app.config import ConfigError, Settings, load_settings
from app.logging import setup_logging
from app.observe_client import add_observe_parser
from app.users_args import add_users_parser

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="floe", description="Floe network telemetry and filtering"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v warnings only, -vv info (default), -vvv debug",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the control plane (REST H1/H2/H3, gRPC, WebSocket)")
    serve.add_argument(
        "--instances", type=_instances, default=1, metavar="N",
        help="run N processes (1-64, e.g. one per core) sharing every port (SO_REUSEPORT; "
        "HTTP/3 steered by connection ID); METRICS_PORT becomes METRICS_PORT+0..N-1. "
        "Default 1: one process, no supervisor",
    )

    dp = sub.add_parser(
        "dataplane", help="run the dataplane sidecar on one interface",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="What each --mode does to the interface's traffic:\n"
        "  passthrough  every packet still reaches the host (XDP_PASS; rules can drop);\n"
        "               XDP copies each packet's headers into a ring buffer for the flows.\n"
        "               The mode for a host's own interface.\n"
        "  inline       every packet still reaches the host (rules can drop); flows from a\n"
        "               kernel flow map, no packets in user space.\n"
        "  tap          packets are TAKEN from the host: XDP redirects them to Floe (AF_XDP).\n"
        "               Only for a mirror/SPAN port or an interface Floe alone consumes.\n"
        "  afpacket     a copy of every packet (no XDP, no rules); pcap replays a file.\n"
        "In every XDP mode dropped packets are sampled into flows with their rule.",
    )
    dp.add_argument(
        "--interface", "-i", required=False, help="network interface (not needed for pcap)"
    )
    dp.add_argument(
        "--mode", choices=("passthrough", "tap", "inline", "afpacket", "pcap"),
        default="passthrough",
        help="passthrough (default): the host keeps every frame; XDP drops what the rules deny "
        "and copies each frame's headers for flows; tap: XDP takes every frame into Floe "
        "(AF_XDP), none reaches the host's stack: for mirror/SPAN ports, refused on an "
        "interface with the host's addresses or default route unless --mirror; inline: XDP "
        "drops what the rules deny, passes the rest and counts flows in the kernel; afpacket: "
        "copies of frames, traffic untouched, no rules; pcap: replays --pcap FILE",
    )
    dp.add_argument(
        "--mirror", action="store_true",
        help="tap mode: this interface is a mirror/SPAN port whose frames only Floe consumes "
        "(starts even where the host's own addresses or routes are)",
    )
    dp.add_argument("--snaplen", type=int, default=None,
                    help="bytes of each packet copied to the ring buffer, 14-256 (default 128, "
                    "FLOE_SNAPLEN)")
    dp.add_argument("--drop-sample", type=int, default=None, metavar="N",
                    help="record 1 in N dropped packets as flows (0: none; default 1, "
                    "FLOE_DROP_SAMPLE_N)")
    dp.add_argument("--drop-rate-cap", type=int, default=None, metavar="RECORDS",
                    help="at most RECORDS dropped-packet records a second per CPU, the rest "
                    "counted by weight (0: no cap; default 20000, FLOE_DROP_RATE_CAP)")
    dp.add_argument("--zero-copy", choices=("off", "try", "require"), default=None,
                    help="tap mode AF_XDP zero-copy: try falls back to copy mode and says so "
                    "(default off, FLOE_XSK_ZEROCOPY)")
    dp.add_argument("--pcap", help="capture file to replay (pcap mode)")
    dp.add_argument("--speed", choices=("recorded", "max"), default="max", help="pcap replay speed")
    dp.add_argument(
        "--control-plane", default=None,
        help="HOST:PORT of the control plane's gRPC port; up to 16 comma-separated for "
        "failover (FLOE_CONTROL_PLANE)")
    dp.add_argument("--node-id", default=None, help="node id (default: hostname)")
    dp.add_argument(
        "--detach", action="store_true", help="detach the XDP program and remove pins, then exit"
    )
    dp.add_argument(
        "--status", action="store_true",
        help="print what floe_xdp on --interface is doing (counters, rules, hits), then exit",
    )
    dp.add_argument("--json", action="store_true", help="--status as JSON")
    dp.add_argument(
        "--force", action="store_true",
        help="with --detach: remove the pins even when a program elsewhere (another network "
        "namespace) runs with them; that program keeps running",
    )

    demo = sub.add_parser(
        "demo", help="namespace + veth + generated traffic so the dashboard shows live data"
    )
    demo.add_argument(
        "--duration", type=float, default=0.0, help="seconds to run (0 = until interrupted)"
    )
    demo.add_argument("--pps", type=int, default=2000, help="offered packets per second")

    add_observe_parser(sub)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("init", help="create the schema (SQLAlchemy) and the first admin")

    add_users_parser(sub)
    return parser


def _instances(text: str) -> int:
    from app.serving.instances import parse_instances

    try:
        return parse_instances(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _worker_index(args: argparse.Namespace) -> int | None:
    """The instance index of a `floe serve --instances N` worker (for its log lines)."""
    if args.command != "serve":
        return None
    from app.serving.instances import WorkerSpec

    worker = WorkerSpec.from_env()
    return worker.index if worker else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo" and not os.environ.get("FLOE_ENV"):
        # The demo is a throw-away showcase: development defaults (admin123), also for the
        # `floe serve` it starts. Set FLOE_ENV=production to demo the real first start.
        os.environ["FLOE_ENV"] = "development"
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"floe: configuration error: {error}", file=sys.stderr)
        return 2
    # `floe users` prints its answer; its logs stay at warnings unless asked for.
    verbosity = args.verbose or (1 if args.command == "users" else 0)
    setup_logging(verbosity, settings.log_json, _worker_index(args))
    try:
        return _run(args, settings, parser)
    except ConfigError as error:  # a layer's FLOE_* knob, found bad when that layer starts
        print(f"floe: configuration error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings, parser: argparse.ArgumentParser) -> int:

    if args.command == "serve":
        from app.serving.instances import WorkerSpec
        from app.serving.run import serve

        worker = WorkerSpec.from_env()  # set by the supervisor for its workers only
        if worker is None and args.instances > 1:
            from app.serving.supervisor import supervise

            return supervise(settings, args.instances, args.verbose)
        return serve(settings, worker)
    if args.command == "dataplane":
        from dataplane.cli import run_dataplane

        return int(run_dataplane(args, settings))
    if args.command == "demo":
        from dataplane.demo import run_demo

        return int(run_demo(args, settings))
    if args.command == "observe":
        from app.observe_client import run_observe

        return run_observe(args, settings)
    if args.command == "db":
        return _db_init(settings)
    if args.command == "users":
        from app.users_cli import run_users

        return run_users(args, settings)
    parser.error(f"unknown command {args.command}")


def _db_init(settings: Settings) -> int:
    """Schema first (storage layer), then built-in roles and the first admin (identity)."""
    from app.db.cli import db_init
    from app.db.database import Database
    from app.identity import ensure_defaults

    created: list[bool] = []

    async def defaults(db: Database) -> None:
        created.append(await ensure_defaults(db, settings))

    status = db_init(settings, after=defaults)
    if status == 0:
        print(f"floe: first admin {'created' if created[0] else 'already present'}",
              file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
