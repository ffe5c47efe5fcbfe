"""The IPv4 CIDR index (DIR-16-8-8): LPM trie entries expanded into three u32 arrays.

Why: with 1k /24 rules a trie lookup walks ~10 nodes (~50 ns per frame, a helper call the
verifier cannot inline); the index answers the same longest-prefix question with one to
three array reads the verifier inlines. Layout and the rule-word encoding are defined once
in bpf/floe_kern_user.h. The trie stays complete and authoritative: where the index runs out
of blocks it stores FLOE_WORD_TRIE and the kernel asks the trie, so any rule set is correct
and only the overflow is slower.

Block assignment is stable (the same /16 or /24 keeps its block across updates) and a block
freed by an update is not reused by the same update (and `RuleTable` waits out the frames in
flight before the next), so while the arrays are rewritten every address sees either its old
or its new rule, never another prefix's: levels are written bottom-up (3, 2, 1) by `RuleTable`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dataplane.bpf.layout import DEFINES

__all__ = ["CidrIndex", "Prefix", "build_index", "rule_word"]

L1_SIZE = DEFINES["FLOE_DIR_L1_SIZE"]
L2_BLOCKS = DEFINES["FLOE_DIR_L2_BLOCKS"]
L3_BLOCKS = DEFINES["FLOE_DIR_L3_BLOCKS"]
WORD_CHILD = DEFINES["FLOE_WORD_CHILD"]
WORD_TRIE = DEFINES["FLOE_WORD_TRIE"]
WORD_DENY = DEFINES["FLOE_WORD_DENY"]
WORD_SLOT = DEFINES["FLOE_WORD_SLOT"]

Words = npt.NDArray[np.uint32]


@dataclass(slots=True, frozen=True)
class Prefix:
    """One IPv4 rule prefix: network address (host-order int), length, rule word."""

    network: int
    length: int
    word: int


@dataclass(slots=True)
class CidrIndex:
    """The three levels as the kernel maps hold them, plus how many entries fell back."""

    l1: Words
    l2: Words
    l3: Words
    trie_fallbacks: int = 0

    @classmethod
    def empty(cls) -> CidrIndex:
        return cls(np.zeros(L1_SIZE, np.uint32), np.zeros(L2_BLOCKS * 256, np.uint32),
                   np.zeros(L3_BLOCKS * 256, np.uint32))

    def l2_blocks(self) -> dict[int, int]:
        """/16 number -> level-2 block, as referenced from level 1."""
        (where,) = np.nonzero(self.l1 & WORD_CHILD)
        return {int(i): int(self.l1[i] & WORD_SLOT) for i in where}

    def l3_blocks(self) -> dict[int, int]:
        """/24 number -> level-3 block, as referenced from live level-2 blocks."""
        out: dict[int, int] = {}
        for slash16, block in self.l2_blocks().items():
            entries = self.l2[block * 256:(block + 1) * 256]
            for byte in np.nonzero(entries & WORD_CHILD)[0]:
                out[slash16 << 8 | int(byte)] = int(entries[byte] & WORD_SLOT)
        return out

    def lookup(self, address: int) -> int:
        """The word the kernel would act on for `address` (WORD_TRIE: ask the trie)."""
        word = int(self.l1[address >> 16])
        if word & WORD_CHILD:
            word = int(self.l2[(word & WORD_SLOT) << 8 | (address >> 8) & 0xFF])
            if word & WORD_CHILD:
                word = int(self.l3[(word & WORD_SLOT) << 8 | address & 0xFF])
        return word


def rule_word(hit_slot: int, deny: bool) -> int:
    """The rule word of a rule: its hits slot + 1 and its action."""
    if not 0 <= hit_slot < WORD_SLOT:
        raise ValueError(f"hit slot {hit_slot} does not fit a rule word")
    return (hit_slot + 1) | (WORD_DENY if deny else 0)


class _Blocks:
    """Block numbers of one level: keep previous assignments, never reuse a block just freed."""

    def __init__(self, capacity: int, previous: dict[int, int]) -> None:
        self._previous = previous
        taken = set(previous.values())
        self._free = (b for b in range(capacity) if b not in taken)

    def get(self, key: int) -> int | None:
        if key in self._previous:
            return self._previous[key]
        return next(self._free, None)


def _expand(table: Words, offset: int, prefixes: list[Prefix], entry_length: int) -> None:
    """Write prefixes (shortest first) over the 256-entry block at `offset`.

    Each entry of the block stands for one /`entry_length` (24 in level 2, 32 in level 3).
    """
    for prefix in prefixes:
        first = (prefix.network >> (32 - entry_length)) & 0xFF
        span = 1 << (entry_length - prefix.length)
        table[offset + first:offset + first + span] = prefix.word


def _child(index: CidrIndex, parent: Words, entry: int, alloc: _Blocks, key: int,
           table: Words, prefixes: list[Prefix], entry_length: int) -> int | None:
    """Point `parent[entry]` at a new block of `table` holding its covering word overlaid with
    `prefixes`; returns the block's offset, or None where blocks ran out (trie fallback)."""
    block = alloc.get(key)
    if block is None:
        parent[entry] = WORD_TRIE
        index.trie_fallbacks += 1
        return None
    offset = block * 256
    table[offset:offset + 256] = parent[entry]  # the covering rule, if any
    _expand(table, offset, prefixes, entry_length)
    parent[entry] = WORD_CHILD | block
    return offset


def build_index(prefixes: list[Prefix], previous: CidrIndex | None = None) -> CidrIndex:
    """The index for `prefixes` (unique (network, length) pairs), reusing `previous`'s blocks."""
    index = CidrIndex.empty()
    previous = previous or CidrIndex.empty()
    l2_alloc = _Blocks(L2_BLOCKS, previous.l2_blocks())
    l3_alloc = _Blocks(L3_BLOCKS, previous.l3_blocks())
    longer_16: dict[int, list[Prefix]] = {}
    for prefix in sorted(prefixes, key=lambda p: p.length):
        if prefix.length <= 16:
            start = prefix.network >> 16
            index.l1[start:start + (1 << (16 - prefix.length))] = prefix.word
        else:
            longer_16.setdefault(prefix.network >> 16, []).append(prefix)
    for slash16, under in sorted(longer_16.items()):
        offset = _child(index, index.l1, slash16, l2_alloc, slash16, index.l2,
                        [p for p in under if p.length <= 24], 24)
        if offset is None:
            continue
        longer_24: dict[int, list[Prefix]] = {}
        for prefix in under:
            if prefix.length > 24:
                longer_24.setdefault(prefix.network >> 8, []).append(prefix)
        for slash24, deep in sorted(longer_24.items()):
            _child(index, index.l2, offset + (slash24 & 0xFF), l3_alloc, slash24, index.l3,
                   deep, 32)
    return index
