"""`floe dataplane`: run the pipeline on one interface (or a capture) until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import signal
import sys

from app.config import ConfigError, Settings
from app.grpc.lifetime import pin_grpc_aio
from dataplane.config import load_capture_config, load_dataplane_config

__all__ = ["run_dataplane"]

log = logging.getLogger(__name__)


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    from dataplane.runner import Runner

    config = load_dataplane_config(settings, args.control_plane, args.node_id)
    capture = load_capture_config(
        settings, snaplen=getattr(args, "snaplen", None),
        drop_sample_n=getattr(args, "drop_sample", None),
        drop_rate_cap=getattr(args, "drop_rate_cap", None),
        zero_copy=getattr(args, "zero_copy", None))
    runner = Runner(config, args.mode, args.interface, pcap_path=args.pcap,
                    speed="max" if args.speed == "max" else 1.0, mirror=args.mirror,
                    capture=capture)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("dataplane %s on %s → %s (node %s)", args.mode, runner.interface, config.target,
             config.node_id)
    health = None
    if config.health_port:  # bound before anything is attached: a taken port stops here
        from dataplane.health import HealthServer

        health = HealthServer(runner, config.health_address, config.health_port)
        try:
            await health.start()
        except OSError as error:  # the words of `floe serve` (app/serving/listeners.py)
            variable = f"FLOE_DATAPLANE_HEALTH_PORT={config.health_port}"
            reason = ("is already in use" if error.errno == errno.EADDRINUSE else
                      f"cannot be bound on {config.health_address}: "
                      f"{os.strerror(error.errno) if error.errno else error}")
            print(f"floe dataplane: cannot start: {variable} {reason}", file=sys.stderr)
            return 1
        log.info("dataplane health on %s port %d: GET /healthz", config.health_address,
                 health.port)
    try:
        return await runner.run(stop)
    finally:
        if health is not None:
            await health.close()


def _status(args: argparse.Namespace) -> int:
    from dataplane.bpf.errors import BpfError
    from dataplane.status import format_status, interface_status

    if not args.interface:
        print("floe dataplane: --status needs --interface", file=sys.stderr)
        return 2
    try:
        status = interface_status(args.interface)
    except BpfError as error:
        print(f"floe dataplane: {error}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def run_dataplane(args: argparse.Namespace, settings: Settings) -> int:
    """Exit codes: 0 clean stop, 1 runtime failure, 2 bad arguments or configuration (a
    missing interface, tap refused on a host interface)."""
    from dataplane.bpf.errors import BpfError
    from dataplane.interfaces import InterfaceError
    from dataplane.sources.base import SourceError

    if args.status:
        return _status(args)
    if args.mode in ("tap", "inline", "passthrough", "afpacket") and not args.interface:
        print(f"floe dataplane: --interface is required in {args.mode} mode", file=sys.stderr)
        return 2
    if args.mirror and args.mode != "tap":
        print("floe dataplane: --mirror applies to tap mode only", file=sys.stderr)
        return 2
    if args.mode == "pcap" and not args.pcap:
        print("floe dataplane: --pcap FILE is required in pcap mode", file=sys.stderr)
        return 2
    if args.detach:
        if not args.interface:
            print("floe dataplane: --detach needs --interface", file=sys.stderr)
            return 2
        from dataplane.bpf.loader import XdpProgram

        try:
            XdpProgram.open(args.interface, for_detach=True).detach(force=args.force)
        except BpfError as error:
            print(f"floe dataplane: {error}", file=sys.stderr)
            return 1
        print(f"floe dataplane: detached from {args.interface}", file=sys.stderr)
        return 0
    pin_grpc_aio()
    try:
        return asyncio.run(_main(args, settings))
    except ConfigError as error:
        print(f"floe dataplane: configuration error: {error}", file=sys.stderr)
        return 2
    except InterfaceError as error:
        print(f"floe dataplane: {error}", file=sys.stderr)
        return 2
    except (BpfError, SourceError, OSError) as error:
        print(f"floe dataplane: {error}", file=sys.stderr)
        return 1
