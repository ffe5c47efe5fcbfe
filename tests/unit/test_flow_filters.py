"""GET /flows filters: every one narrows, bad values are a 422 naming the parameter."""

from __future__ import annotations

from typing import Any

import pytest

from app.api.envelope import ApiError
from app.api.flows import build_filter

FLOWS: list[dict[str, Any]] = [
    {"node_id": "a", "interface": "eth0", "src": "10.0.0.1", "dst": "10.0.0.2", "src_port": 4000,
     "dst_port": 53, "proto": 17, "state": "new", "end_reason": "none", "verdict": "forwarded"},
    {"node_id": "a", "interface": "eth1", "src": "10.0.0.3", "dst": "10.0.0.2", "src_port": 4001,
     "dst_port": 443, "proto": 6, "state": "closed", "end_reason": "tcp_fin",
     "verdict": "dropped"},
    {"node_id": "b", "interface": "eth0", "src": "2001:db8::1", "dst": "2001:db8::2",
     "src_port": 0, "dst_port": 0, "proto": 58, "state": "established",
     "end_reason": "idle_timeout", "verdict": "unknown"},
]


def select(**args: str) -> list[int]:
    predicates = build_filter(args)
    return [i for i, flow in enumerate(FLOWS) if all(p(flow) for p in predicates)]


@pytest.mark.parametrize(("args", "expected"), [
    ({}, [0, 1, 2]),
    ({"ip": "10.0.0.2"}, [0, 1]),
    ({"port": "53"}, [0]),
    ({"proto": "tcp"}, [1]),
    ({"proto": "58"}, [2]),
    ({"node": "b"}, [2]),
    ({"interface": "eth0"}, [0, 2]),
    ({"state": "new,established"}, [0, 2]),
    ({"state": "CLOSED"}, [1]),
    ({"end_reason": "idle_timeout"}, [2]),
    ({"interface": "eth0", "proto": "udp"}, [0]),
    ({"verdict": "dropped"}, [1]),
    ({"verdict": "Forwarded,unknown"}, [0, 2]),
])
def test_filters_narrow(args: dict[str, str], expected: list[int]) -> None:
    assert select(**args) == expected


@pytest.mark.parametrize(("name", "value"), [
    ("ip", "nope"), ("port", "70000"), ("proto", "bogus"), ("state", "open"),
    ("end_reason", "timeout"), ("state", ","), ("verdict", "denied"),
])
def test_bad_values_are_422(name: str, value: str) -> None:
    with pytest.raises(ApiError) as caught:
        build_filter({name: value})
    assert caught.value.status == 422 and caught.value.details == {"param": name}
