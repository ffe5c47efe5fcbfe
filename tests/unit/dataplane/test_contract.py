"""The pipeline's public names and the flow-record layout shared with the kernel flow map."""

from __future__ import annotations

import importlib

import pytest

from dataplane.bpf.layout import FLOW_DTYPE
from dataplane.flowtable import FLOW_RECORD_DTYPE

MODULES = [
    "dataplane.packets",
    "dataplane.parse",
    "dataplane.flowtable",
    "dataplane.aggregate",
    "dataplane.sources",
    "dataplane.sources.base",
    "dataplane.sources.pcap",
    "dataplane.sources.afpacket",
    "dataplane.sources.afxdp",
    "dataplane.sources.modes",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_declared_and_resolves(name: str) -> None:
    mod = importlib.import_module(name)
    assert mod.__all__, name
    for attr in mod.__all__:
        assert hasattr(mod, attr), f"{name}.{attr}"


def test_kernel_flow_columns_are_a_subset_of_flow_records() -> None:
    """Inline-mode flows (kernel LRU map) and tap-mode flows (FlowTable) share column names."""
    assert FLOW_DTYPE.names is not None and FLOW_RECORD_DTYPE.names is not None
    for name in FLOW_DTYPE.names:
        assert name in FLOW_RECORD_DTYPE.names, name
        k, u = FLOW_DTYPE.fields[name][0], FLOW_RECORD_DTYPE.fields[name][0]  # type: ignore[index]
        assert k.shape == u.shape and k.kind == u.kind and k.itemsize == u.itemsize, name


def test_sources_satisfy_protocol() -> None:
    from dataplane.sources import AfPacketSource, AfXdpSource, PcapSource, Source

    for cls in (AfPacketSource, AfXdpSource, PcapSource):
        for method in ("read_batch", "loss", "close"):
            assert callable(getattr(cls, method))
    assert Source is not None


def test_kernel_flows_convert_to_flow_records() -> None:
    import numpy as np

    from dataplane.flowtable import EndReason, FlowState, records_from_kernel

    k = np.zeros(3, FLOW_DTYPE)
    k["src_addr"][0, 10:] = [255, 255, 10, 0, 0, 1]
    k["src_port"] = [1, 2, 3]
    k["packets_fwd"] = [5, 1, 1]
    k["packets_rev"] = [4, 0, 1]
    k["tcp_flags"] = [0x12, 0x02, 0x04]
    k["last_seen_ns"] = 7
    r = records_from_kernel(k)
    assert r.dtype == FLOW_RECORD_DTYPE
    assert bytes(r["src_addr"][0][10:]) == bytes([255, 255, 10, 0, 0, 1])
    assert r["src_port"].tolist() == [1, 2, 3] and r["last_seen_ns"].tolist() == [7, 7, 7]
    assert r["state"].tolist() == [FlowState.ESTABLISHED, FlowState.NEW, FlowState.CLOSED]
    assert set(r["end_reason"].tolist()) == {EndReason.ACTIVE}
