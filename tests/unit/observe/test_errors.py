"""Every gRPC status is either retried or a one-line error: none is left unmapped."""

from __future__ import annotations

import grpc
import pytest

from app.observe_client._errors import FATAL, RETRYABLE, status_error
from app.observe_client._stream import Backoff


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_every_status_is_mapped_exactly_once(code: grpc.StatusCode) -> None:
    assert (code in RETRYABLE) != (code in FATAL)


@pytest.mark.parametrize(("code", "start"), [
    (grpc.StatusCode.UNAUTHENTICATED, "not authenticated: the credential is revoked"),
    (grpc.StatusCode.PERMISSION_DENIED, "permission denied: the credential is revoked"),
    (grpc.StatusCode.INVALID_ARGUMENT, "invalid argument: the credential is revoked"),
])
def test_refusals_print_the_servers_message(code: grpc.StatusCode, start: str) -> None:
    error = status_error(code, " the credential is revoked\n")
    assert error.message.startswith(start) and "\n" not in error.message
    assert error.exit_code == 1


def test_a_refusal_without_a_message_names_the_status() -> None:
    assert status_error(grpc.StatusCode.NOT_FOUND, None).message == "not found: NOT_FOUND"


def test_backoff_doubles_to_five_seconds_with_jitter_and_resets() -> None:
    backoff = Backoff()
    delays = [backoff.next() for _ in range(10)]
    assert 0.16 <= delays[0] <= 0.24 and 0.32 <= delays[1] <= 0.48
    assert all(d <= 5.0 for d in delays) and delays[-1] >= 4.0
    backoff.reset()
    assert backoff.next() <= 0.24
