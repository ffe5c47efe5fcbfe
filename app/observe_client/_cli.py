"""`floe observe`: the sub-command's flags (as `hubble observe` names them) and its run.

Exit codes: 0 done, 1 an error (one line on stderr: the server's message for a refusal),
2 a usage error (argparse), 130 interrupted (Ctrl-C; SIGTERM gives 143). On any exit the
resume file holds the last cursor printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import grpc

from app.config import Settings
from app.observe_client._connect import Endpoint, load_endpoint, open_channel
from app.observe_client._errors import EXIT_OK, EXIT_USAGE, ObserveError, status_error
from app.observe_client._filters import add_filter_flags
from app.observe_client._formats import FORMATS, make_printer, printable
from app.observe_client._request import FlowQuery, parse_fields, parse_time
from app.observe_client._resume import ResumeFile
from app.observe_client._status import print_nodes, print_server_status
from app.observe_client._stream import FlowStream
from floe.observer.v1 import observer_pb2 as pb
from floe.observer.v1 import observer_pb2_grpc

__all__ = ["add_observe_parser", "run_observe"]

_EPILOG = """examples:
  floe observe                                the last 20 flow events
  floe observe -f --ip 10.0.0.1               follow one host's flows
  floe observe --since 5m --not --port 53     the last five minutes but DNS
  floe observe -f -o json --resume-file cur   a collector that survives restarts
  floe observe --nodes                        the dataplanes the control plane knows
"""


def _positive(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value:g} is out of range [0.1, 3600]")
    return value


def _time(text: str) -> int:
    try:
        return parse_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_observe_parser(sub: Any) -> argparse.ArgumentParser:
    """The `observe` sub-command, into `floe`'s sub-parsers."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "observe", help="follow flow events from the control plane (like hubble observe)",
        description="Print flow events from the control plane's observer ring "
        "(floe.observer.v1 GetFlows), optionally following new ones.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False)
    which = parser.add_argument_group("what to show")
    which.add_argument("-f", "--follow", action="store_true",
                       help="keep printing new events as they arrive")
    which.add_argument("--last", type=_positive, default=0, metavar="N",
                       help="the newest N events (default 20 without --follow/--since/--until)")
    which.add_argument("--first", type=_positive, default=0, metavar="N",
                       help="the oldest N events held")
    which.add_argument("--all", action="store_true", help="every event held")
    which.add_argument("--since", type=_time, default=0, metavar="TIME",
                       help="events from TIME on: RFC 3339 (2026-12-07T10:41:02Z) or a "
                       "duration ago (5m, 1h30m)")
    which.add_argument("--until", type=_time, default=0, metavar="TIME",
                       help="events up to TIME (same forms); ends a --follow then")
    which.add_argument("--field-mask", "--fields", dest="fields", action="append", default=[],
                       metavar="F1,F2", help="only these Flow fields, e.g. "
                       "source_ip,destination_ip,bytes (json, jsonpb, csv)")
    which.add_argument("--server-status", action="store_true",
                       help="print the observer's status (ServerStatus) and exit")
    which.add_argument("--nodes", action="store_true",
                       help="print the dataplanes the control plane knows (GetNodes) and exit")
    add_filter_flags(parser)
    shown = parser.add_argument_group("output")
    shown.add_argument("-o", "--output", choices=FORMATS, default="compact",
                       help="output format (default compact)")
    shown.add_argument("--print-lost", action=argparse.BooleanOptionalAction, default=True,
                       help="print lost events to stderr with their source and count "
                       "(default on)")
    shown.add_argument("--resume-file", type=Path, metavar="FILE",
                       help="start after the cursor saved in FILE, and keep saving the last "
                       "cursor printed there")
    conn = parser.add_argument_group("connection")
    conn.add_argument("--server", metavar="HOST:PORT",
                      help="control plane gRPC address (default 127.0.0.1:$GRPC_PORT)")
    conn.add_argument("--token", help="access token or API key with flows:read "
                      "(default $FLOE_TOKEN; a flag is visible to other local users)")
    conn.add_argument("--tls", action=argparse.BooleanOptionalAction, default=None,
                      help="TLS to the server (default: on when GRPC_TLS is, or a CA or "
                      "server name is given)")
    conn.add_argument("--tls-ca-cert", metavar="PEM",
                      help="CA (or certificate) to trust (default: the local control "
                      "plane's certificate for a local server, else the system roots)")
    conn.add_argument("--tls-server-name", metavar="NAME",
                      help="name the server's certificate must carry, when not the host")
    conn.add_argument("--timeout", type=_seconds, default=5.0, metavar="SECONDS",
                      help="how long to wait for the first connection (default 5)")
    return parser


def _query(args: argparse.Namespace) -> FlowQuery:
    if getattr(args, "negate_next", False):
        raise ObserveError("--not must be followed by a filter flag (e.g. --not --port 53)",
                           EXIT_USAGE)
    query = FlowQuery(criteria=args.criteria, follow=args.follow, last=args.last,
                      first=args.first, all=args.all, since_ns=args.since,
                      until_ns=args.until, fields=parse_fields(args.fields))
    try:
        query.check()
    except ValueError as error:
        raise ObserveError(str(error), EXIT_USAGE) from None
    return query


async def _unary(endpoint: Endpoint, args: argparse.Namespace) -> None:
    channel = open_channel(endpoint)
    try:
        stub = observer_pb2_grpc.ObserverStub(channel)
        try:
            if args.server_status:
                status = await stub.ServerStatus(pb.ServerStatusRequest(),
                                                 metadata=endpoint.metadata,
                                                 timeout=args.timeout)
                print_server_status(status, args.output, sys.stdout)
            else:
                nodes = await stub.GetNodes(pb.GetNodesRequest(), metadata=endpoint.metadata,
                                            timeout=args.timeout)
                print_nodes(nodes, args.output, sys.stdout)
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE,
                                grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ObserveError(f"cannot reach {endpoint.target}: "
                                   f"{(error.details() or error.code().name).strip()}"
                                   ) from None
            raise status_error(error.code(), error.details()) from None
    finally:
        await channel.close()


async def _flows(endpoint: Endpoint, query: FlowQuery, args: argparse.Namespace) -> None:
    resume = ResumeFile(args.resume_file) if args.resume_file else None
    after = resume.load() if resume else None
    printer = make_printer(args.output, sys.stdout, sys.stderr, print_lost=args.print_lost,
                           fields=query.fields)
    channel = open_channel(endpoint)
    stream = FlowStream(channel, endpoint, query, printer, resume=resume, after=after,
                        connect_timeout=args.timeout, notice=_notice)
    try:
        await stream.run()
    finally:
        await channel.close(grace=None)


def _notice(text: str) -> None:
    print(f"floe observe: {printable(text)}", file=sys.stderr, flush=True)


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    """Runs until done, an error, or a signal; returns the exit code."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    caught: list[int] = []

    def interrupt(signum: int) -> None:
        if not caught:
            caught.append(signum)
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt, signum)
    try:
        endpoint = load_endpoint(settings, server=args.server, token=args.token, tls=args.tls,
                                 ca=args.tls_ca_cert, server_name=args.tls_server_name)
        if args.server_status or args.nodes:
            await _unary(endpoint, args)
        else:
            await _flows(endpoint, _query(args), args)
        return EXIT_OK
    except asyncio.CancelledError:
        if not caught:
            raise
        return 128 + caught[0]
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def run_observe(args: argparse.Namespace, settings: Settings) -> int:
    """`floe observe`; exit codes in the module docstring."""
    from app.grpc.lifetime import pin_grpc_aio

    pin_grpc_aio()
    try:
        return asyncio.run(_main(args, settings))
    except ObserveError as error:  # may quote the server: printable, like everything shown
        print(f"floe observe: {printable(error.message)}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # `floe observe | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return EXIT_OK
