"""Keep grpc.aio's process-wide state alive for the whole process.

grpc.aio starts a poller thread with its first object and tears it down when the last one
is garbage-collected. That teardown joins the poller thread from whichever thread runs the
collection — measured here: a collection triggered inside a worker thread (or pytest's
final `gc.collect()`) blocked forever in `Thread.join`, hanging test runs and, in the
dataplane, a reconnect that dropped its last channel. Taking one reference at start-up
means the teardown never runs mid-process; the poller ends with the process.
"""

from __future__ import annotations

from grpc._cython import cygrpc

__all__ = ["pin_grpc_aio"]

_pinned = False


def pin_grpc_aio() -> None:
    """Idempotent; call before the first grpc.aio object is created."""
    global _pinned
    if not _pinned:
        cygrpc.init_grpc_aio()
        _pinned = True
