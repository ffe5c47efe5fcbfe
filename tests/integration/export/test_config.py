"""`floe serve` with a bad FLOE_IPFIX_* value stops at start-up with one line naming it."""

from __future__ import annotations

import pytest

from tests.support.server import FloeServer


@pytest.mark.parametrize(("env", "line"), [
    ({"FLOE_IPFIX_COLLECTORS": "collector"},
     "floe: configuration error: FLOE_IPFIX_COLLECTORS: 'collector' is not host:port"),
    ({"FLOE_IPFIX_COLLECTORS": "no-such-host.invalid:4739"},
     "floe: configuration error: FLOE_IPFIX_COLLECTORS: cannot resolve 'no-such-host.invalid'"),
    ({"FLOE_IPFIX_COLLECTORS": "127.0.0.1:4739", "FLOE_IPFIX_MTU": "9"},
     "floe: configuration error: FLOE_IPFIX_MTU='9' is out of range [512, 65507]"),
])
def test_a_bad_value_stops_start_up_with_one_line(env: dict[str, str], line: str) -> None:
    server = FloeServer.start(env=env, wait=False)
    try:
        assert server.process.wait(30) == 2
        output = server.output().strip().splitlines()
        assert len(output) == 1 and output[0].startswith(line), output
    finally:
        server.stop()
        server.cleanup()
