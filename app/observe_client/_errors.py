"""What `floe observe` does with each gRPC status: reconnect, or stop with one clear line.

Every `grpc.StatusCode` is in exactly one of the two tables below (a unit test checks it), so
a status nobody thought about cannot crash the command or loop forever. Transport trouble
(the server restarting, a dropped connection) is retried with the cursor; a refusal from the
server (credential, scope, a bad argument) stops with the server's own message and exit 1.
"""

from __future__ import annotations

import grpc

__all__ = [
    "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "FATAL", "RETRYABLE",
    "ObserveError", "status_error",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # flags that cannot go together (argparse's own code for bad flags)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

# The connection, not the request, failed: reconnect with backoff and resume after the cursor.
RETRYABLE: frozenset[grpc.StatusCode] = frozenset({
    grpc.StatusCode.UNAVAILABLE,        # server down or restarting, or its auth store busy
    grpc.StatusCode.CANCELLED,          # the server (not we) cancelled the stream
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,           # a reset HTTP/2 stream, a broken frame
    grpc.StatusCode.UNKNOWN,            # "Stream removed" and similar transport failures
})

# The server refused the request: asking again would get the same answer. The first word is
# what the one-line error says before the server's message.
FATAL: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "stream ended",
    grpc.StatusCode.UNAUTHENTICATED: "not authenticated",
    grpc.StatusCode.PERMISSION_DENIED: "permission denied",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid argument",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "refused",
    grpc.StatusCode.NOT_FOUND: "not found",
    grpc.StatusCode.ALREADY_EXISTS: "already exists",
    grpc.StatusCode.FAILED_PRECONDITION: "failed precondition",
    grpc.StatusCode.OUT_OF_RANGE: "out of range",
    grpc.StatusCode.UNIMPLEMENTED: "not served here (is this a Floe control plane?)",
    grpc.StatusCode.DATA_LOSS: "data loss",
}

_HINTS = {
    grpc.StatusCode.UNAUTHENTICATED: " (give an access token or API key with --token or "
                                     "FLOE_TOKEN)",
    grpc.StatusCode.PERMISSION_DENIED: " (flows need flows:read; --server-status stats:read; "
                                       "--nodes dataplane:read)",
}


class ObserveError(Exception):
    """Stop `floe observe` with this one-line message (prefixed "floe observe: "), exit 1
    (or EXIT_USAGE for flags that cannot go together)."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def status_error(code: grpc.StatusCode, details: str | None) -> ObserveError:
    """The one line for a status that ends the command, with the server's message."""
    label = FATAL.get(code, code.name.lower().replace("_", " "))
    message = (details or "").strip() or code.name
    return ObserveError(f"{label}: {message}{_HINTS.get(code, '')}")
