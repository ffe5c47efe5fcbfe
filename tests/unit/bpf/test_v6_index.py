"""The IPv6 index's table, as user space writes it: the kernel's home slot and masking,
updates in place (tombstones, reuse), probes that do not fit, and the rebuild threshold."""

from __future__ import annotations

import ipaddress
import sys

import numpy as np
import pytest

from dataplane.bpf.v6_index import (
    PROBES,
    SLOT_DTYPE,
    SLOTS,
    TOMB,
    Prefix6,
    build,
    delete,
    home,
    length_entry,
    needs_rebuild,
    prefix_key,
    upsert,
)


def key(cidr: str) -> Prefix6:
    net = ipaddress.IPv6Network(cidr, strict=False)
    return prefix_key(net.network_address.packed, net.prefixlen)


def find(table: np.ndarray, k: Prefix6) -> int:  # type: ignore[type-arg]
    """The kernel's probe, in Python: the word of `k`, 0 if absent."""
    for step in range(PROBES):
        slot = table[(home(k) + step) % SLOTS]
        if slot["word"] == 0:
            return 0
        if (int(slot["hi"]), int(slot["lo"]), int(slot["prefixlen"])) == k and \
                slot["word"] != TOMB:
            return int(slot["word"])
    return 0


def loaded(raw: bytes) -> int:
    """8 bytes as the kernel's load reads them on this host."""
    return int.from_bytes(raw, sys.byteorder)


def test_prefixes_are_masked_like_a_frames_address() -> None:
    assert prefix_key(ipaddress.IPv6Address("2001:db8:1:2::9").packed, 48) == key(
        "2001:db8:1::/48")
    hi, lo, length = key("2001:db8::1/128")
    assert (hi, lo, length) == (loaded(bytes.fromhex("20010db800000000")),
                                loaded(bytes.fromhex("0000000000000001")), 128)
    assert key("::/0") == (0, 0, 0)
    assert key("2001:db8:1:2:8000::/65")[1] == loaded(bytes.fromhex("8000000000000000"))


@pytest.mark.parametrize("length", [0, 1, 32, 48, 63, 64, 65, 96, 127, 128])
def test_a_lengths_masks_applied_to_a_loaded_address_give_its_prefix(length: int) -> None:
    """What the kernel does to a frame's address (two loads, two ANDs) is prefix_key()."""
    addr = ipaddress.IPv6Address("2001:db8:ffff:eeee:dddd:cccc:bbbb:aaaa").packed
    mask_hi, mask_lo, salt = length_entry(length)
    assert (loaded(addr[:8]) & mask_hi, loaded(addr[8:]) & mask_lo, length) == prefix_key(
        addr, length)
    assert salt == (length * 0x165667B19E3779F9) % 2**64


def test_upsert_change_delete_and_reuse_in_place() -> None:
    table = np.zeros(SLOTS, SLOT_DTYPE)
    a, b = key("2001:db8:1::/48"), key("2001:db8:2::/48")
    assert upsert(table, {a: 5, b: 6})
    assert (find(table, a), find(table, b)) == (5, 6)
    at = int(np.flatnonzero(table["word"] == 5)[0])
    assert upsert(table, {a: 7, b: 6}) and int(table["word"][at]) == 7  # same slot, new word
    assert delete(table, {b: 6}) == 1
    assert int(table["word"][at]) == TOMB and find(table, a) == 0 and find(table, b) == 6
    assert upsert(table, {a: 8, b: 6}) and find(table, a) == 8
    assert int(np.count_nonzero(table["word"] == TOMB)) == 0  # the tombstone was reused


def test_a_prefix_that_cannot_fit_its_probe_is_reported() -> None:
    table = np.zeros(SLOTS, SLOT_DTYPE)
    target = key("2001:db8:9::/48")
    start = home(target)
    table["word"][[(start + i) % SLOTS for i in range(PROBES)]] = 1  # all taken
    assert not upsert(table, {target: 3})
    assert find(table, target) == 0


def test_many_prefixes_fit_and_tombstones_trigger_a_rebuild() -> None:
    wanted = {key(f"2001:db8:{i:x}::/48"): i + 1 for i in range(16384)}
    table, fits = build(wanted)
    assert fits and all(find(table, k) == w for k, w in list(wanted.items())[::97])
    assert not needs_rebuild(table)
    table["word"][: SLOTS // 4 + 1] = TOMB
    assert needs_rebuild(table)
