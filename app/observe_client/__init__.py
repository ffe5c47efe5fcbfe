"""`floe observe`: the command-line client of floe.observer.v1, shaped like `hubble observe`.

One concept per module: `_filters` (filter flags and `--not` into FlowFilters), `_request`
(counts, time window, field mask into a GetFlowsRequest), `_connect` (target, token, TLS —
the dataplane's TLS logic), `_stream` (the GetFlows stream: print, keep the cursor, reconnect
and resume), `_resume` (the cursor file), `_formats` and `_status` (output), `_errors` (every
gRPC status: retry or a one-line error), `_cli` (the sub-command and its exit codes).
It talks to the control plane only over gRPC, as any outside consumer would.
"""

from __future__ import annotations

from app.observe_client._cli import add_observe_parser, run_observe
from app.observe_client._errors import ObserveError
from app.observe_client._formats import event_json
from app.observe_client._request import FlowQuery, parse_time
from app.observe_client._resume import ResumeFile
from app.observe_client._stream import Backoff, FlowStream

__all__ = [
    "Backoff",
    "FlowQuery",
    "FlowStream",
    "ObserveError",
    "ResumeFile",
    "add_observe_parser",
    "event_json",
    "parse_time",
    "run_observe",
]
