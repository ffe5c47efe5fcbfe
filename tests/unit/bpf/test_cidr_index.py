"""The IPv4 CIDR index answers exactly what a longest-prefix match over the rules answers."""

from __future__ import annotations

import ipaddress
import random

import numpy as np

from dataplane.bpf.cidr_index import (
    L2_BLOCKS,
    L3_BLOCKS,
    WORD_CHILD,
    WORD_TRIE,
    CidrIndex,
    Prefix,
    build_index,
    rule_word,
)


def _prefix(cidr: str, slot: int, deny: bool = True) -> Prefix:
    net = ipaddress.IPv4Network(cidr)
    return Prefix(int(net.network_address), net.prefixlen, rule_word(slot, deny))


def _lpm(prefixes: list[Prefix], address: int) -> int:
    best: Prefix | None = None
    for p in prefixes:
        mask = (0xFFFFFFFF << (32 - p.length)) & 0xFFFFFFFF
        if address & mask == p.network and (best is None or p.length > best.length):
            best = p
    return best.word if best else 0


def _random_prefixes(rng: random.Random, n: int) -> list[Prefix]:
    seen: set[tuple[int, int]] = set()
    out: list[Prefix] = []
    while len(out) < n:
        length = rng.choice([0, 8, 12, 16, 17, 20, 23, 24, 25, 28, 30, 32])
        base = rng.choice([0x0A000000, 0x0A010000, 0xC0A80000, rng.getrandbits(32)])
        address = base | rng.getrandbits(16) if length > 16 else base
        network = address & ((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF)
        if (network, length) not in seen:
            seen.add((network, length))
            out.append(Prefix(network, length, rule_word(len(out), rng.random() < 0.5)))
    return out


def test_lookup_equals_longest_prefix_match() -> None:
    rng = random.Random(7)
    prefixes = _random_prefixes(rng, 300)
    index = build_index(prefixes)
    assert index.trie_fallbacks == 0
    probes = [p.network | rng.getrandbits(32 - p.length) if p.length < 32 else p.network
              for p in prefixes] + [rng.getrandbits(32) for _ in range(2000)]
    for address in probes:
        assert index.lookup(address) == _lpm(prefixes, address), hex(address)


def test_nested_prefixes_override_shorter_ones() -> None:
    prefixes = [_prefix("10.0.0.0/8", 0), _prefix("10.1.0.0/16", 1, deny=False),
                _prefix("10.1.2.0/24", 2), _prefix("10.1.2.128/25", 3, deny=False),
                _prefix("10.1.2.200/32", 4)]
    index = build_index(prefixes)
    expect = {"10.9.9.9": 0, "10.1.9.9": 1, "10.1.2.1": 2, "10.1.2.129": 3, "10.1.2.200": 4,
              "10.1.2.201": 3, "11.0.0.1": None}
    for address, slot in expect.items():
        word = index.lookup(int(ipaddress.IPv4Address(address)))
        assert word == (0 if slot is None else prefixes[slot].word), address


def test_out_of_blocks_falls_back_to_the_trie() -> None:
    # one /32 in each of L3_BLOCKS + 5 distinct /24s: the last 5 /24s have no level-3 block
    prefixes = [Prefix(0x0A000000 + (i << 8) + 1, 32, rule_word(i, True))
                for i in range(L3_BLOCKS + 5)]
    index = build_index(prefixes)
    assert index.trie_fallbacks == 5
    words = [index.lookup(p.network) for p in prefixes]
    assert words.count(WORD_TRIE) == 5
    assert all(w == p.word for w, p in zip(words, prefixes, strict=True) if w != WORD_TRIE)
    # too many /16s with long prefixes: level 1 falls back for the overflow
    wide = [Prefix(i << 16, 24, rule_word(i, False)) for i in range(L2_BLOCKS + 3)]
    assert build_index(wide).trie_fallbacks == 3


def test_blocks_are_stable_and_freed_blocks_are_not_reused_at_once() -> None:
    first = build_index([_prefix("10.1.2.0/24", 0), _prefix("10.2.3.4/32", 1)])
    assert first.l2_blocks() == {0x0A01: 0, 0x0A02: 1}
    second = build_index([_prefix("10.2.3.4/32", 1), _prefix("10.3.0.0/20", 2)], first)
    blocks = second.l2_blocks()
    assert blocks[0x0A02] == 1  # kept its block
    assert blocks[0x0A03] not in (0, 1)  # block 0 was freed by this update: not reused yet
    assert second.l3_blocks() == first.l3_blocks()
    # freed blocks are zero, so the next update's diff writes only what changed
    assert not second.l2[0:256].any()


def test_empty_index_and_child_words() -> None:
    index = build_index([])
    assert not index.l1.any() and index.trie_fallbacks == 0
    index = build_index([_prefix("192.168.1.0/24", 9)])
    assert index.l1[0xC0A8] & WORD_CHILD
    assert index.lookup(0xC0A80101) == rule_word(9, True)
    assert index.lookup(0xC0A80201) == 0
    assert np.count_nonzero(index.l2) == 1
    assert CidrIndex.empty().lookup(0x01020304) == 0
