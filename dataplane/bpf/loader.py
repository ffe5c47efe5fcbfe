"""Load, pin, attach and reattach floe_xdp on one interface; read and write its maps.

State lives in the kernel, not in this process: maps are pinned under
/sys/fs/bpf/floe/netns-<inode>/<ifname>/ (an interface name is unique only within its
network namespace, so the namespace's inode comes first) and the program is attached
through netlink, so both keep counting and filtering after the loader exits. A new
`XdpProgram.attach()` on the same interface loads the program again with libbpf reusing
every pinned map (counters intact) and atomically replaces the attached program in the mode
it already had — no gap.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import mmap
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import numpy as np
import numpy.typing as npt

from dataplane.bpf import libbpf as lb
from dataplane.bpf import v6_index as v6
from dataplane.bpf.assets import BPF_FILES
from dataplane.bpf.cidr_index import CidrIndex, Prefix, build_index, rule_word
from dataplane.bpf.counters import InterfaceCounters, dropped_per_cpu
from dataplane.bpf.errors import (
    AttachError,
    BpfError,
    BpfUnavailableError,
    InterfaceNotFoundError,
    MapError,
    ObjectFileError,
    PinError,
    ProgramLoadError,
    from_errno,
    map_errors,
)
from dataplane.bpf.layout import (
    FLOE_MAX_IFACES,
    FLOE_MAX_RULES,
    FLOE_RING_BYTES,
    FLOE_SNAP_MAX,
    FLOE_V6_LENS_TRIE,
    FLOE_V6_MAX_LENS,
    FLOW_DTYPE,
    MAPS,
    XDP_OBJECT,
    Action,
    FloeConfig,
    FlowKey,
    FlowVal,
    LpmV4Key,
    LpmV6Key,
    Mode,
    RingState,
    RuleVal,
    V6Lens,
    XskMode,
)
from dataplane.bpf.maps import BpfMap, possible_cpus
from dataplane.bpf.rcu import wait_for_programs_in_flight
from dataplane.bpf.rules import RULE_MAPS, RuleHitCount, RuleSet, rule_entries, rule_maps_mask
from dataplane.interfaces import netns_inode
from dataplane.packets import epoch_offset_ns

__all__ = [
    "BPFFS", "DROP_RATE_CAP", "MODES", "PIN_ROOT", "RuleTable", "XdpProgram", "ensure_bpffs",
    "netns_pin_key",
    "pin_dir_for",
]

log = logging.getLogger(__name__)

BPFFS = Path("/sys/fs/bpf")
PIN_ROOT = BPFFS / "floe"
PROGRAM_NAME = b"floe_xdp"

AttachMode = Literal["native", "generic"]
ProgramMode = Literal["tap", "inline", "passthrough"]
MODES: dict[str, Mode] = {"tap": Mode.TAP, "inline": Mode.INLINE, "passthrough": Mode.PASSTHROUGH}
DROP_RATE_CAP = 20_000  # drop records a second per CPU on fresh pins (config.drop_rate_cap)


def _is_bpffs(path: Path) -> bool:
    try:
        with open("/proc/self/mounts", encoding="ascii", errors="replace") as mounts:
            return any(
                parts[1] == str(path) and parts[2] == "bpf"
                for parts in (line.split() for line in mounts)
                if len(parts) >= 3
            )
    except OSError:
        return False


def ensure_bpffs(path: Path = BPFFS) -> None:
    """Mount bpffs at `path` if it is not mounted (it is not by default on this platform)."""
    if _is_bpffs(path):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]
    with map_errors(BpfUnavailableError, f"create {path}"):
        path.mkdir(parents=True, exist_ok=True)
    if libc.mount(b"bpf", str(path).encode(), b"bpf", 0, None) != 0:
        raise from_errno(BpfUnavailableError, f"mount bpffs at {path}", ctypes.get_errno())
    log.info("mounted bpffs at %s", path)


def netns_pin_key() -> str:
    """The calling thread's network namespace as a pin directory name: `netns-` and its
    inode in 10 digits (`lsns -t net` shows the same number). 16 characters, so it can
    never be an interface name: the directories of the layout before it (`floe/<ifname>`)
    cannot collide with it."""
    return f"netns-{netns_inode():010d}"


def pin_dir_for(ifname: str, pin_root: Path = PIN_ROOT) -> Path:
    """Where the maps of `ifname` in the calling thread's network namespace are pinned."""
    if not ifname or "/" in ifname or ifname in (".", "..") or len(ifname) > 15:
        raise InterfaceNotFoundError(f"invalid interface name {ifname!r}")
    return pin_root / netns_pin_key() / ifname


def _adopt_legacy_pins(pin_dir: Path, ifname: str, ifindex: int) -> None:
    """Move pins of the layout before namespace keys (`floe/<ifname>/`) to `pin_dir` when
    the program attached to this interface runs with them (an upgrade while it kept
    filtering): counters, rules and the counter epoch carry on. Pins of that name that are
    another namespace's, or unused, or that cannot be checked (no CAP_SYS_ADMIN) are left
    where they are (docs/deployment.md: upgrading)."""
    legacy = pin_dir.parent.parent / ifname
    if not (legacy / "floe_counters").exists() or (pin_dir / "floe_counters").exists():
        return
    with _locked(legacy):
        users = _pin_users(legacy)
        ours = _query(ifindex).prog_id if ifindex else 0
        if not users or not ours or ours not in users:
            return
        with map_errors(PinError, f"move pins {legacy} to {pin_dir}"):
            pin_dir.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                pin_dir.rmdir()  # an empty one a failed attach left
            os.rename(legacy, pin_dir)
    log.warning("moved the pins of %s from %s to %s (pins are keyed by network namespace "
                "since this release)", ifname, legacy, pin_dir)


def _remove_pin_dir(pin_dir: Path) -> None:
    """Remove an emptied pin directory and its namespace's directory once that is empty."""
    for path in (pin_dir, pin_dir.parent):
        with contextlib.suppress(OSError):
            path.rmdir()


@dataclass(slots=True, frozen=True)
class _MapInfo:
    """The fields of struct bpf_map_info Floe reads (offsets 4, 8, 12 and 16)."""

    id: int
    key_size: int
    value_size: int
    max_entries: int


def _obj_info(fd: int, size: int) -> bytes | None:
    """The kernel's bpf_{map,prog}_info of an fd (the first `size` bytes), None if it will
    not say."""
    info = ctypes.create_string_buffer(size)
    length = ctypes.c_uint32(size)
    if lb.lib.bpf_obj_get_info_by_fd(fd, info, ctypes.byref(length)) < 0:
        return None
    return info.raw


def _map_info(fd: int) -> _MapInfo | None:
    """What the kernel says of a map fd, None if it will not say."""
    raw = _obj_info(fd, 128)
    if raw is None:
        return None
    return _MapInfo(*(int.from_bytes(raw[at:at + 4], "little") for at in (4, 8, 12, 16)))


def _map_id(path: Path) -> int | None:
    """The kernel id of a pinned map: 0 if it is not there, None if we may not look."""
    fd = lb.lib.bpf_obj_get(str(path).encode())
    if fd < 0:
        return 0 if fd == -errno.ENOENT else None
    try:
        info = _map_info(fd)
        return None if info is None else info.id
    finally:
        os.close(fd)


def _programs_using(map_id: int) -> set[int] | None:
    """Ids of the loaded programs that use map `map_id` (bpf_prog_info.map_ids), or None when
    they cannot all be seen (walking programs by id needs CAP_SYS_ADMIN)."""
    users: set[int] = set()
    prog_id = ctypes.c_uint32(0)
    while True:
        ret = lb.lib.bpf_prog_get_next_id(prog_id.value, ctypes.byref(prog_id))
        if ret == -errno.ENOENT:
            return users  # the end of the list
        if ret < 0:
            return None
        fd = lb.lib.bpf_prog_get_fd_by_id(prog_id.value)
        if fd == -errno.ENOENT:
            continue  # gone meanwhile
        if fd < 0:
            return None
        try:
            info = _obj_info(fd, 256)
            if info is None:
                return None
            count = int.from_bytes(info[52:56], "little")  # nr_map_ids
            if not count:
                continue
            ids = (ctypes.c_uint32 * count)()
            fields = bytearray(256)  # nr_map_ids and the map_ids pointer, the rest zero
            fields[52:56] = count.to_bytes(4, "little")
            fields[56:64] = ctypes.addressof(ids).to_bytes(8, "little")
            query = ctypes.create_string_buffer(bytes(fields), len(fields))
            size = ctypes.c_uint32(len(query))
            if lb.lib.bpf_obj_get_info_by_fd(fd, query, ctypes.byref(size)) < 0:
                return None
            if map_id in ids:
                users.add(prog_id.value)
        finally:
            os.close(fd)


def _pin_users(pin_dir: Path) -> set[int] | None:
    """Programs running with these pins (the counters map stands for all of them); None when
    that cannot be known (no CAP_SYS_ADMIN): callers then keep the pins as they are."""
    map_id = _map_id(pin_dir / "floe_counters")
    if map_id is None:
        return None
    return _programs_using(map_id) if map_id else set()


def _remove_pins(pin_dir: Path) -> None:
    """The map pins (the callers remove the directory, which _locked() copes with)."""
    for name in MAPS:
        (pin_dir / name).unlink(missing_ok=True)


def _claim_pins(pin_dir: Path, ifname: str, ifindex: int) -> None:
    """Reuse the pins of `ifname` only if they are this interface's.

    An interface name is only unique within a network namespace, and an interface deleted and
    created again under its name is a new interface, so the name alone proves nothing. The
    kernel knows better: the pins are this interface's when the program attached to it runs
    with them (a dataplane restart). When a program elsewhere runs with them (the same name
    in another network namespace), they are refused: sharing would mix two interfaces'
    counters and rules. When no program runs with them (their interface is gone), they are
    removed and counting starts fresh, with new maps and so a new counter epoch.
    """
    if not (pin_dir / "floe_counters").exists():
        return
    users = _pin_users(pin_dir)
    if users is None:
        log.warning("cannot see which programs use the pins in %s (CAP_SYS_ADMIN?): "
                    "reusing them as %s's", pin_dir, ifname)
        return
    ours = _query(ifindex).prog_id
    if ours and ours in users:
        return
    if users:
        raise AttachError(
            f"the pins in {pin_dir} are in use by XDP program {sorted(users)} on another "
            f"interface named {ifname} (another network namespace?); detach it there")
    log.warning("pins in %s belong to an interface %s that is gone: starting fresh",
                pin_dir, ifname)
    with map_errors(PinError, f"remove stale pins in {pin_dir}"):
        _remove_pins(pin_dir)


def _ifindex(ifname: str) -> int:
    try:
        return socket.if_nametoindex(ifname)
    except (OSError, ValueError) as error:
        raise InterfaceNotFoundError(
            f"no interface {ifname!r} in this network namespace") from error


@contextlib.contextmanager
def _locked(pin_dir: Path | None, create: bool = False) -> Iterator[None]:
    """Exclusive flock on the pin directory: one loader/rule writer per interface at a time.

    A detach may remove the directory while we wait for the lock; holding a lock on a
    removed directory protects nothing, so the lock is taken again on the one now at the path
    (`create`: made again if need be)."""
    if pin_dir is None:
        yield
        return
    for _ in range(10):
        if create:
            with map_errors(PinError, f"create pin directory {pin_dir}"):
                pin_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(pin_dir, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            yield  # nothing there to protect
            return
        except OSError as error:
            raise from_errno(PinError, f"lock {pin_dir}: {error.strerror}",
                             error.errno or 0) from error
        try:
            with map_errors(PinError, f"lock {pin_dir}"):
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(pin_dir).st_ino
            except FileNotFoundError:
                current = -1
            if current == os.fstat(fd).st_ino:
                yield
                return
        finally:
            os.close(fd)  # releases the lock
    raise PinError(f"{pin_dir} was removed and made again ten times while we waited for its "
                   "lock: other loaders keep attaching and detaching; try again")


_HITS_BY_KEY = 64  # up to this many rules, hits are read slot by slot


def _u32(value: int) -> bytes:
    return int(value).to_bytes(4, "little")


def _slots_of(entries: dict[str, dict[bytes, bytes]]) -> dict[int, int]:
    """rule id -> hits slot, from rule map contents."""
    return {(val := RuleVal.from_buffer_copy(raw)).rule_id: val.hit_slot
            for values in entries.values() for raw in values.values()}


class RuleTable:
    """The rule maps of one program: apply whole rule sets as a diff, read per-rule hits.

    Each rule owns a slot in the per-CPU hits array; the slot is stored in its map values,
    so a restarted loader recovers the assignment from the kernel and keeps the counts.
    """

    def __init__(self, maps: dict[str, BpfMap], pin_dir: Path | None = None) -> None:
        self._maps = maps
        self._pin_dir = pin_dir
        # rule id -> hits slot: read from the maps once, then kept by apply(), so reading the
        # hits each tick does not walk every rule map (another process applying rules to the
        # same pins is seen by a new XdpProgram, not by this one)
        self._slots: dict[int, int] | None = None

    def _set_mask(self, update: Callable[[int], int]) -> None:
        config_map = self._maps["floe_config"]
        config = FloeConfig.from_buffer_copy(config_map.lookup(_u32(0)) or bytes(FloeConfig()))
        config.rule_maps = update(config.rule_maps)
        config_map.update(_u32(0), bytes(config))

    def _current(self) -> dict[str, dict[bytes, bytes]]:
        out: dict[str, dict[bytes, bytes]] = {}
        for name in RULE_MAPS:
            bpf_map = self._maps[name]
            out[name] = {key: value for key in bpf_map.keys()
                         if (value := bpf_map.lookup(key)) is not None}
        return out

    def entries(self) -> dict[str, dict[bytes, bytes]]:
        """The rule maps' contents as the kernel holds them: {map name: {key: value}}. The hit
        slots they name are remembered, so hits() after this reads no rule map again."""
        with map_errors(MapError, "read rule maps"):
            current = self._current()
        self._slots = _slots_of(current)
        return current

    def slots(self) -> dict[int, int]:
        """rule id -> hits slot, as stored in the kernel maps."""
        with map_errors(MapError, "read rule slots"):
            return _slots_of(self._current())

    def apply(self, ruleset: RuleSet) -> dict[str, int]:
        """Write the difference between the maps and `ruleset`; returns added/changed/removed.

        The kernel skips rule maps whose bit in config.rule_maps is clear: bits of maps
        gaining entries are set before the writes, bits of maps left empty cleared after.
        New rules get a free hits slot, zeroed before the rule can match.
        """
        with _locked(self._pin_dir), map_errors(MapError, "apply rules"):
            desired = rule_entries(ruleset)
            current = self._current()
            wanted = ruleset.ids()
            slots: dict[int, int] = {}
            for entries in current.values():
                for raw in entries.values():
                    value = RuleVal.from_buffer_copy(raw)
                    if value.rule_id in wanted:
                        slots[value.rule_id] = value.hit_slot
            # a slot this update frees is not reused by it: until its rule's entries are
            # deleted below, frames may still be credited (and recorded) to that slot
            used = set(_slots_of(current).values())
            free = (slot for slot in range(FLOE_MAX_RULES) if slot not in used)
            hits = self._maps["floe_rule_hits"]
            rule_ids = self._maps["floe_rule_ids"]
            zero_hits = bytes(hits.slot_size)
            for rule in ruleset.rules:
                if rule.id not in slots:
                    slots[rule.id] = next(free)
                    hits.update(_u32(slots[rule.id]), zero_hits)
                    rule_ids.update(_u32(slots[rule.id]), _u32(rule.id))
            mask = rule_maps_mask(desired)
            self._set_mask(lambda existing: existing | mask)
            added = changed = removed = 0
            for name in RULE_MAPS:
                bpf_map = self._maps[name]
                for key, raw in desired[name].items():
                    value = RuleVal.from_buffer_copy(raw)
                    value.hit_slot = slots[value.rule_id]
                    desired[name][key] = bytes(value)
                    if key not in current[name]:
                        added += 1
                    elif current[name][key] != bytes(value):
                        changed += 1
                    else:
                        continue
                    bpf_map.update(key, bytes(value))
                for key in current[name].keys() - desired[name].keys():
                    bpf_map.delete(key)
                    removed += 1
            self._sync_indexes(desired)
            self._set_mask(lambda _existing: mask)
            self._slots = {rule.id: slots[rule.id] for rule in ruleset.rules}
        return {"added": added, "changed": changed, "removed": removed}

    def _sync_indexes(self, entries: dict[str, dict[bytes, bytes]]) -> None:
        """Make each direction's IPv4 CIDR index match its trie `entries` (with hit slots).

        Changed levels are rewritten level 3 first (each word in place, unchanged words with
        their own value), so a frame always finds its old or its new rule (see
        dataplane/bpf/cidr_index.py). A block this update frees may be given to another
        prefix by the next one: before returning, frames that may still hold a pointer into it
        are waited out (an RCU grace period).
        """
        freed = False
        for side in ("src", "dst"):
            prefixes = []
            for key, raw in entries[f"floe_{side}_v4"].items():
                lpm = LpmV4Key.from_buffer_copy(key)
                value = RuleVal.from_buffer_copy(raw)
                prefixes.append(Prefix(int.from_bytes(bytes(lpm.addr), "big"), lpm.prefixlen,
                                       rule_word(value.hit_slot, value.action == Action.DENY)))
            levels = [self._maps[f"floe_{side}_v4_l{n}"] for n in (1, 2, 3)]
            l1, l2, l3 = (level.read_words() for level in levels)
            current = CidrIndex(l1, l2, l3)
            index = build_index(prefixes, current)
            pairs = zip(levels, (current.l1, current.l2, current.l3),
                        (index.l1, index.l2, index.l3), strict=True)
            for level, old, new in reversed(list(pairs)):  # level 3 first
                if not np.array_equal(old, new):
                    level.update(_u32(0), new.tobytes())
            if index.trie_fallbacks:
                log.warning("IPv4 %s CIDR index full: %d /16s or /24s fall back to the LPM "
                            "trie (correct, slower)", side, index.trie_fallbacks)
            freed |= not (set(current.l2_blocks().values()) <= set(index.l2_blocks().values())
                          and set(current.l3_blocks().values()) <= set(index.l3_blocks().values()))
        if freed:
            wait_for_programs_in_flight()
        self._sync_v6(entries)

    def _sync_v6(self, entries: dict[str, dict[bytes, bytes]]) -> None:
        """Make each direction's IPv6 index (dataplane/bpf/v6_index.py) match its trie
        `entries`: new and changed prefixes first, then the lengths the kernel walks, then
        deletions, so a frame finds its old or its new rule. More than FLOE_V6_MAX_LENS
        distinct lengths, or a prefix that does not fit: the kernel asks the trie instead.

        A frame reads a direction's count, then its length entries (several words each) and
        the table, while user space may be writing them. So what a frame may read is never
        rewritten under it: the count first sends frames to the trie, then every frame that
        read the old count is waited out (an RCU grace period), and only then are entries
        rewritten, or the table rebuilt; the new count comes last."""
        lens_map = self._maps["floe_v6_lens"]
        lens = V6Lens.from_buffer_copy(lens_map.lookup(_u32(0)) or bytes(V6Lens()))

        def to_trie(side: str) -> None:
            count = getattr(lens, f"{side}_n")
            if count != FLOE_V6_LENS_TRIE:
                setattr(lens, f"{side}_n", FLOE_V6_LENS_TRIE)
                lens_map.update(_u32(0), bytes(lens))
                if count:  # a frame that read a count of 0 reads no entry and no slot
                    wait_for_programs_in_flight()

        def publish(side: str, lengths: list[int] | None) -> None:
            """The lengths of `side` the kernel walks (None: the trie answers)."""
            count = FLOE_V6_LENS_TRIE if lengths is None else len(lengths)
            want = [(*v6.length_entry(length), length) for length in lengths or []]
            want += [(0, 0, 0, 0)] * (FLOE_V6_MAX_LENS - len(want))
            slots = getattr(lens, side)
            if want != [(e.mask_hi, e.mask_lo, e.salt, e.len) for e in slots]:
                to_trie(side)
                for entry, (mask_hi, mask_lo, salt, length) in zip(slots, want, strict=True):
                    entry.mask_hi, entry.mask_lo, entry.salt, entry.len = (
                        mask_hi, mask_lo, salt, length)
                lens_map.update(_u32(0), bytes(lens))
            if getattr(lens, f"{side}_n") != count:
                setattr(lens, f"{side}_n", count)
                lens_map.update(_u32(0), bytes(lens))

        for side in ("src", "dst"):
            wanted: dict[v6.Prefix6, int] = {}
            for key, raw in entries[f"floe_{side}_v6"].items():
                lpm = LpmV6Key.from_buffer_copy(key)
                value = RuleVal.from_buffer_copy(raw)
                wanted[v6.prefix_key(bytes(lpm.addr), lpm.prefixlen)] = rule_word(
                    value.hit_slot, value.action == Action.DENY)
            lengths = sorted({key[2] for key in wanted}, reverse=True)
            table = self._maps[f"floe_{side}_v6_t"].mapped().view(v6.SLOT_DTYPE)
            if v6.needs_rebuild(table):  # the trie answers while the table is rewritten
                to_trie(side)
                fresh, fits = v6.build(wanted)
                table[:] = fresh
            else:
                fits = v6.upsert(table, wanted)
            usable = fits and len(lengths) <= FLOE_V6_MAX_LENS
            publish(side, lengths if usable else None)
            v6.delete(table, wanted)
            if not usable:
                log.warning("IPv6 %s CIDR rules: %s; the LPM trie answers (correct, slower)",
                            side, f"{len(lengths)} prefix lengths, more than the index's "
                            f"{FLOE_V6_MAX_LENS}" if fits else "a prefix did not fit the index")

    def count(self) -> int:
        """Rule entries currently in the kernel maps."""
        with map_errors(MapError, "count rules"):
            return sum(len(self._maps[name].keys()) for name in RULE_MAPS)

    def hits(self) -> dict[int, RuleHitCount]:
        """Per rule id: packets and bytes credited, summed over CPUs."""
        if self._slots is None:
            self._slots = self.slots()
        slots = self._slots
        if not slots:
            return {}
        with map_errors(MapError, "read rule hits"):
            bpf_map = self._maps["floe_rule_hits"]
            stride = bpf_map.slot_size // bpf_map.ncpus // 8
            if len(slots) <= _HITS_BY_KEY:  # a few rules: their slots, not the whole array
                raw = b"".join(bpf_map.lookup(_u32(slot)) or bytes(bpf_map.slot_size)
                               for slot in slots.values())
                index = {rule_id: i for i, rule_id in enumerate(slots)}
            else:
                raw = bpf_map.read_all()[1]
                index = slots
            words = np.frombuffer(raw, dtype=np.uint64).reshape(-1, bpf_map.ncpus, stride)
            sums = words[:, :, :2].sum(axis=1)
            return {rule_id: RuleHitCount(int(sums[index[rule_id], 0]),
                                          int(sums[index[rule_id], 1]))
                    for rule_id in slots}


class XdpProgram:
    """floe_xdp attached to one interface, with handles on its pinned maps."""

    def __init__(self, ifname: str, ifindex: int, pin_dir: Path, maps: dict[str, BpfMap],
                 attach_mode: AttachMode | None, prog_id: int) -> None:
        self.ifname = ifname
        self.ifindex = ifindex
        self.pin_dir = pin_dir
        self.attach_mode = attach_mode
        self.prog_id = prog_id
        self._maps = maps
        self.rules = RuleTable(maps, pin_dir)

    # ---- lifecycle -------------------------------------------------------------------------

    @classmethod
    def attach(
        cls,
        ifname: str,
        mode: ProgramMode = "tap",
        prefer: AttachMode = "native",
        *,
        object_path: Path = XDP_OBJECT,
        pin_root: Path = PIN_ROOT,
        replace_foreign: bool = False,
        ring_bytes: int = FLOE_RING_BYTES,
    ) -> XdpProgram:
        """Load (reusing pinned maps), pin, and attach or atomically replace on `ifname`.

        An XDP program that is not floe_xdp already on the interface is left alone
        (AttachError) unless `replace_foreign`. `ring_bytes` sizes the ring buffer of new pins
        (a power of two, at least a page); pins keep the size they were made with.
        """
        if mode not in MODES:
            raise AttachError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if ring_bytes < mmap.PAGESIZE or ring_bytes & (ring_bytes - 1):
            raise AttachError(f"ring_bytes {ring_bytes} must be a power of two of at least "
                              f"{mmap.PAGESIZE}")
        if prefer not in ("native", "generic"):
            raise AttachError(f"prefer must be 'native' or 'generic', not {prefer!r}")
        pin_dir = pin_dir_for(ifname, pin_root)
        ifindex = _ifindex(ifname)
        object_path = Path(object_path)
        if not object_path.is_file():
            raise ObjectFileError(BPF_FILES.missing(object_path))
        if not replace_foreign:
            _refuse_foreign(ifindex)
        _adopt_legacy_pins(pin_dir, ifname, ifindex)
        with lb.capture_log() as lines:
            obj = lb.lib.bpf_object__open_file(str(object_path).encode(), None)
            lb.check_ptr(obj, ObjectFileError, f"open BPF object {object_path}", lines)
        fresh = False
        lock = contextlib.ExitStack()  # held from the pin directory's creation to the end
        try:
            ensure_bpffs()
            lock.enter_context(_locked(pin_dir, create=True))
            _claim_pins(pin_dir, ifname, ifindex)
            fresh = not (pin_dir / "floe_config").exists()
            maps = cls._load(obj, pin_dir, ring_bytes)
            prog = lb.lib.bpf_object__find_program_by_name(obj, PROGRAM_NAME)
            lb.check_ptr(prog, ObjectFileError, f"{object_path} has no program floe_xdp")
            prog_fd = lb.check(lb.lib.bpf_program__fd(prog), ProgramLoadError, "program fd")
            attach_mode = _attach(ifindex, prog_fd, prefer)
            prog_id = _query(ifindex).prog_id
        except BaseException:
            lb.lib.bpf_object__close(obj)
            if fresh:  # nothing was attached: leave no pins behind
                with contextlib.suppress(OSError):
                    _remove_pins(pin_dir)
            _remove_pin_dir(pin_dir)
            lock.close()
            raise
        # The kernel now holds the program (attached) and the maps (pinned); dup'd fds stay ours.
        lb.lib.bpf_object__close(obj)
        program = cls(ifname, ifindex, pin_dir, maps, attach_mode, prog_id)
        try:
            config = program.config()
            config.mode = MODES[mode]
            if fresh:
                config.track_flows = 1
                config.drop_sample_n = 1
                config.drop_rate_cap = DROP_RATE_CAP
            program._write_config(config)
            if not fresh:  # pins older than the CIDR index, or an apply that was interrupted
                with map_errors(MapError, "rebuild the CIDR index"):
                    program.rules._sync_indexes(program.rules._current())
        except BaseException:
            program.close()
            raise
        finally:
            lock.close()
        log.info("floe_xdp %s on %s (ifindex %d, %s, %s maps, prog id %d)",
                 "attached" if fresh else "reattached", ifname, ifindex, attach_mode,
                 "new" if fresh else "reused", prog_id)
        return program

    @staticmethod
    def _load(obj: int, pin_dir: Path, ring_bytes: int) -> dict[str, BpfMap]:
        ncpus = possible_cpus()
        bpf_map = None
        found: dict[str, int] = {}
        while True:
            bpf_map = lb.lib.bpf_object__next_map(obj, bpf_map)
            if not bpf_map:
                break
            name = (lb.lib.bpf_map__name(bpf_map) or b"").decode()
            if name in MAPS:
                lb.check(lb.lib.bpf_map__set_pin_path(bpf_map, str(pin_dir / name).encode()),
                         PinError, f"set pin path for {name}")
                found[name] = bpf_map
            if name == "floe_ring":  # libbpf reuses a pin only if the sizes agree
                size = _pinned_entries(pin_dir / name) or ring_bytes
                lb.check(lb.lib.bpf_map__set_max_entries(bpf_map, size), ObjectFileError,
                         f"size the ring buffer ({size} bytes)")
        missing = MAPS.keys() - found.keys()
        if missing:
            raise ObjectFileError(f"BPF object lacks maps {sorted(missing)}")
        with lb.capture_log() as lines:
            ret = lb.lib.bpf_object__load(obj)
            if ret < 0 and any("reuse pinned map" in line and "found no" not in line
                               for line in lines):
                lb.check(ret, PinError, f"reuse pinned maps in {pin_dir} (layout changed? "
                         f"detach first: floe dataplane --detach --interface {pin_dir.name}; "
                         "counters restart at zero)", lines)
            lb.check(ret, ProgramLoadError, "load floe_xdp", lines)
        maps: dict[str, BpfMap] = {}
        try:
            for name, ptr in found.items():
                fd = lb.check(lb.lib.bpf_map__fd(ptr), MapError, f"fd of map {name}")
                maps[name] = _make_map(name, os.dup(fd), ncpus)
        except BaseException:
            for m in maps.values():
                m.close()
            raise
        return maps

    @classmethod
    def open(cls, ifname: str, *, pin_root: Path = PIN_ROOT,
             for_detach: bool = False) -> XdpProgram:
        """Handles on the pinned maps of `ifname` without loading anything (readers, detach).

        Pins of another layout (an older release) are refused with PinError: their values
        would be decoded with this release's offsets. `for_detach` accepts them, and a pin
        set with maps missing (a loader killed while pinning), since removing them is the way
        out.
        """
        pin_dir = pin_dir_for(ifname, pin_root)
        if not pin_dir.is_dir():
            with contextlib.suppress(InterfaceNotFoundError):  # pins of an older release
                _adopt_legacy_pins(pin_dir, ifname, _ifindex(ifname))
        if not pin_dir.is_dir():
            raise PinError(f"no pinned floe maps for {ifname} in {pin_dir}", errno=errno.ENOENT)
        ncpus = possible_cpus()
        maps: dict[str, BpfMap] = {}
        try:
            for name in MAPS:
                fd = lb.lib.bpf_obj_get(str(pin_dir / name).encode())
                if fd == -errno.ENOENT:
                    if for_detach:
                        continue
                    raise PinError(f"pinned map {pin_dir / name} is missing (a loader stopped "
                                   f"while pinning?); floe dataplane --detach --interface "
                                   f"{ifname} clears the pins", errno=errno.ENOENT)
                lb.check(fd, PinError, f"open pinned map {pin_dir / name}")
                maps[name] = _make_map(name, fd, ncpus)
                pinned = _map_info(fd)
                sizes = None if pinned is None else (pinned.key_size, pinned.value_size)
                expected = (maps[name].key_size, maps[name].value_size)
                if not for_detach and sizes is not None and sizes != expected:
                    raise PinError(
                        f"pinned map {pin_dir / name} has key/value sizes {sizes}, this release "
                        f"expects {expected} (layout changed? detach first: floe dataplane "
                        f"--detach --interface {ifname}; counters restart at zero)")
        except BaseException:
            for m in maps.values():
                m.close()
            raise
        try:
            ifindex = _ifindex(ifname)
            info = _query(ifindex)
        except InterfaceNotFoundError:
            ifindex, info = 0, lb.XdpQueryOpts()
        modes: dict[int, AttachMode] = {lb.XDP_ATTACHED_DRV: "native",
                                        lb.XDP_ATTACHED_SKB: "generic"}
        mode = modes.get(info.attach_mode)
        return cls(ifname, ifindex, pin_dir, maps, mode, info.prog_id)

    def detach(self, force: bool = False) -> None:
        """Detach the XDP program and remove the pins; closes this handle.

        Only a program that runs with these pins is detached. Pins in use by a program on
        another interface of this name (another network namespace) are refused (AttachError)
        unless `force`, which removes the pins only and leaves that program running.
        """
        with _locked(self.pin_dir):
            self._detach(force)
        log.info("floe_xdp detached from %s, pins removed", self.ifname)

    def _detach(self, force: bool) -> None:
        users = _pin_users(self.pin_dir)
        info = _query(self.ifindex) if self.ifindex else lb.XdpQueryOpts()
        if users is None:  # cannot tell who runs with the pins (no CAP_SYS_ADMIN)
            if not force:
                raise AttachError(
                    f"cannot tell which XDP programs use the pins in {self.pin_dir} without "
                    "CAP_SYS_ADMIN; force detaches the program on this interface and removes "
                    "the pins")
            users = {info.prog_id} if info.prog_id else set()
        if users and info.prog_id not in users and not force:
            raise AttachError(
                f"the pins in {self.pin_dir} are in use by XDP program {sorted(users)} on "
                f"another interface named {self.ifname} (another network namespace?); detach "
                "it there, or force to remove only the pins")
        with map_errors(AttachError, f"detach from {self.ifname}"):
            if info.prog_id and info.prog_id in users:
                flags = {lb.XDP_ATTACHED_DRV: lb.XDP_FLAGS_DRV_MODE,
                         lb.XDP_ATTACHED_SKB: lb.XDP_FLAGS_SKB_MODE}.get(info.attach_mode)
                if flags is not None:
                    lb.check(lb.lib.bpf_xdp_detach(self.ifindex, flags, None), AttachError,
                             f"detach XDP from {self.ifname}")
            self.attach_mode = None
        self.close()
        with map_errors(PinError, f"remove pins in {self.pin_dir}"):
            _remove_pins(self.pin_dir)
        _remove_pin_dir(self.pin_dir)

    def users(self) -> set[int] | None:
        """Ids of the programs running with these pins (None: cannot tell without
        CAP_SYS_ADMIN)."""
        return _pin_users(self.pin_dir)

    def attached_now(self) -> AttachMode | None:
        """How floe_xdp with these pins is attached to the interface at this moment (this
        program, or a later one that reattached with the pins); None when it is not — the
        program was detached or replaced, or the interface is gone."""
        try:
            info = _query(self.ifindex) if self.ifindex else None
        except BpfError:
            return None
        if info is None or not info.prog_id:
            return None
        if info.prog_id != self.prog_id:
            users = self.users()
            if users is None or info.prog_id not in users:
                return None
        modes: dict[int, AttachMode] = {lb.XDP_ATTACHED_DRV: "native",
                                        lb.XDP_ATTACHED_SKB: "generic"}
        return modes.get(info.attach_mode)

    def close(self) -> None:
        """Close our map handles; the program stays attached and the maps pinned."""
        for bpf_map in self._maps.values():
            bpf_map.close()

    def __enter__(self) -> XdpProgram:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- reads and writes ------------------------------------------------------------------

    def prog_fd(self) -> int:
        """A new fd on the attached program (caller closes it), e.g. for BPF_PROG_RUN."""
        if not self.prog_id:
            raise AttachError(f"no XDP program attached on {self.ifname}")
        return lb.check(lb.lib.bpf_prog_get_fd_by_id(self.prog_id), AttachError,
                        f"open program id {self.prog_id}")

    def map(self, name: str) -> BpfMap:
        """A map by its C name (see layout.MAPS)."""
        try:
            return self._maps[name]
        except KeyError:
            raise MapError(f"no map {name!r}") from None

    def counters(self) -> InterfaceCounters:
        """This interface's counters, summed over CPUs."""
        with map_errors(MapError, "read counters"):
            raw = self._raw_counters()
        if raw is None:
            return InterfaceCounters(ifindex=self.ifindex)
        return InterfaceCounters.from_percpu(self.ifindex, raw, self._maps["floe_counters"].ncpus)

    def _raw_counters(self) -> bytes | None:
        """This interface's floe_counters value, one slot per CPU: its ifindex's, or when the
        interface is gone (ifindex unknown: 0) every slot's summed — the pins are one
        interface's, so only its slot holds counts."""
        bpf_map = self._maps["floe_counters"]
        if self.ifindex:
            return bpf_map.lookup(_u32(self.ifindex % FLOE_MAX_IFACES))
        total: np.ndarray | None = None
        for slot in range(FLOE_MAX_IFACES):
            raw = bpf_map.lookup(_u32(slot))
            if raw is not None:
                words = np.frombuffer(raw, dtype=np.uint64)
                total = words.copy() if total is None else total + words
        return None if total is None else total.tobytes()

    def rule_hits(self) -> dict[int, RuleHitCount]:
        """Per rule id: packets and bytes credited (summed over CPUs)."""
        return self.rules.hits()

    def config(self) -> FloeConfig:
        with map_errors(MapError, "read config"):
            raw = self._maps["floe_config"].lookup(_u32(0))
            if raw is None:
                raise MapError("config map has no entry 0")
            return FloeConfig.from_buffer_copy(raw)

    def set_config(
        self,
        *,
        mode: ProgramMode | None = None,
        default_action: Literal["allow", "deny"] | None = None,
        malformed_action: Literal["allow", "deny"] | None = None,
        sample_n: int | None = None,
        track_flows: bool | None = None,
        snaplen: int | None = None,
        drop_sample_n: int | None = None,
        drop_rate_cap: int | None = None,
        xsk_mode: XskMode | None = None,
    ) -> FloeConfig:
        """Change some config fields (read-modify-write); returns the new config.

        `sample_n`: tap mode redirects, pass-through mode records 1 in N passed frames (0/1:
        all). `snaplen`: frame bytes per ring record (1..FLOE_SNAP_MAX, 0: the default).
        `drop_sample_n`: dropped frames recorded 1 in N (0: none); `drop_rate_cap`: at most
        that many drop records a second per CPU (0: no cap). `xsk_mode`: what the dataplane's
        AF_XDP sockets are, for --status.
        """
        config = self.config()
        if drop_sample_n and not config.drop_sample_n:  # records turned on: from now
            config.drop_epoch = _next_epoch(config.drop_epoch)
        if mode is not None:
            if mode not in MODES:
                raise AttachError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
            config.mode = MODES[mode]
        for name, value in (("default_action", default_action),
                            ("malformed_action", malformed_action)):
            if value is not None:
                if value not in ("allow", "deny"):
                    raise MapError(f"{name} must be 'allow' or 'deny', not {value!r}")
                setattr(config, name, Action.ALLOW if value == "allow" else Action.DENY)
        for name, number, high in (("sample_n", sample_n, 0xFFFFFFFF),
                                   ("snaplen", snaplen, FLOE_SNAP_MAX),
                                   ("drop_sample_n", drop_sample_n, 0xFFFFFFFF),
                                   ("drop_rate_cap", drop_rate_cap, 0xFFFFFFFF)):
            if number is not None:
                if not 0 <= number <= high:
                    raise MapError(f"{name} {number} outside 0..{high}")
                setattr(config, name, number)
        if track_flows is not None:
            config.track_flows = int(bool(track_flows))
        if xsk_mode is not None:
            config.xsk_mode = XskMode(xsk_mode)
        self._write_config(config)
        return config

    def _write_config(self, config: FloeConfig) -> None:
        with map_errors(MapError, "write config"):
            self._maps["floe_config"].update(_u32(0), bytes(config))

    def read_flows(self, *, epoch: bool = True) -> npt.NDArray[np.void]:
        """Inline mode: batch-read the LRU flow map, oriented by initiator (FLOW_DTYPE).

        The kernel stamps CLOCK_MONOTONIC(_COARSE); with `epoch` the times are shifted to
        nanoseconds since the Unix epoch, the clock of FrameBatch and the flow table.
        """
        with map_errors(MapError, "read flows"):
            keys, values, n = self._maps["floe_flows"].read_all()
        out = np.zeros(n, dtype=FLOW_DTYPE)
        if n == 0:
            return out
        k = np.frombuffer(keys, dtype=np.dtype(FlowKey), count=n)
        v = np.frombuffer(values, dtype=np.dtype(FlowVal), count=n)
        rev = v["initiator"] == 1
        out["src_addr"] = np.where(rev[:, None], k["addr_b"], k["addr_a"])
        out["dst_addr"] = np.where(rev[:, None], k["addr_a"], k["addr_b"])
        out["src_port"] = np.where(rev, k["port_b"], k["port_a"])
        out["dst_port"] = np.where(rev, k["port_a"], k["port_b"])
        out["packets_fwd"] = np.where(rev, v["packets_ba"], v["packets_ab"])
        out["bytes_fwd"] = np.where(rev, v["bytes_ba"], v["bytes_ab"])
        out["packets_rev"] = np.where(rev, v["packets_ab"], v["packets_ba"])
        out["bytes_rev"] = np.where(rev, v["bytes_ab"], v["bytes_ba"])
        for name in ("proto", "ip_version", "vlan", "ifindex"):
            out[name] = k[name]
        for name in ("first_seen_ns", "last_seen_ns", "tcp_flags"):
            out[name] = v[name]
        if epoch:
            offset = epoch_offset_ns()
            out["first_seen_ns"] += np.uint64(offset)
            out["last_seen_ns"] += np.uint64(offset)
        return out

    def clear_flows(self) -> int:
        """Delete every entry of the flow map (e.g. after a full export); returns how many."""
        with map_errors(MapError, "clear flows"):
            bpf_map = self._maps["floe_flows"]
            keys = bpf_map.keys()
            return sum(bpf_map.delete(key) for key in keys)

    @property
    def xsks_map_fd(self) -> int:
        """fd of the XSKMAP (tap mode): key = RX queue id, value = AF_XDP socket fd."""
        return self._maps["floe_xsks"].fd

    def register_xsk(self, queue_id: int, sock_fd: int) -> None:
        """Send frames of RX queue `queue_id` to the AF_XDP socket `sock_fd`."""
        with map_errors(MapError, f"register AF_XDP socket for queue {queue_id}"):
            self._maps["floe_xsks"].update(_u32(queue_id), _u32(sock_fd))

    def unregister_xsk(self, queue_id: int) -> bool:
        with map_errors(MapError, f"unregister AF_XDP socket for queue {queue_id}"):
            return self._maps["floe_xsks"].delete(_u32(queue_id))

    @property
    def ring_fd(self) -> int:
        """fd of the ring buffer (pass-through records and dropped-frame samples)."""
        return self._maps["floe_ring"].fd

    def ring_bytes(self) -> int:
        """The ring buffer's size in bytes (set when the pins were made)."""
        info = _map_info(self._maps["floe_ring"].fd)
        if info is None:
            raise MapError("cannot read the ring buffer's size")
        return info.max_entries

    def ring_state(self) -> dict[str, int]:
        """The ring records' sampling state, summed over CPUs (see struct floe_ring_state),
        with what the kernel still carries: pass_weight(_bytes), and drop_weight(_bytes), the
        drops no record has carried yet (each CPU's drop totals in the counters less its
        drop_base; none while drop records are off, or on a CPU that has recorded no drop
        since the last reset)."""
        with map_errors(MapError, "read the ring state"):
            # the counters first: a record taken between the two reads then leaves its frames
            # out for this read (never counted twice: in a record and as pending)
            totals = self._drop_totals()
            bpf_map = self._maps["floe_ring_state"]
            raw = bpf_map.lookup(_u32(0)) or bytes(bpf_map.slot_size)
        config = self.config()
        words = self._ring_words(raw, bpf_map.ncpus)
        names = [field[0] for field in RingState._fields_]
        state = {name: int(value) for name, value in zip(names, words.sum(axis=0), strict=True)}
        del state["drop_epoch"]  # per CPU, not a sum
        base = words[:, [names.index("drop_base_packets"), names.index("drop_base_bytes")]]
        current = words[:, names.index("drop_epoch")] == config.drop_epoch
        pending = np.where(current, np.maximum(totals - base.T.astype(np.int64), 0), 0)
        if not config.drop_sample_n:
            pending[:] = 0
        state["drop_weight"], state["drop_weight_bytes"] = (int(v) for v in pending.sum(axis=1))
        return state

    def reset_ring_state(self) -> None:
        """A new reader: no weight carried, a fresh drop-cap window, and each CPU's next drop
        record standing for itself (config.drop_epoch bumped first: the kernel alone sets the
        drop records' base), so the first records stand for what this reader can see, not for
        frames sampled out while nobody read the ring."""
        with map_errors(MapError, "reset the ring state"):
            config = self.config()
            config.drop_epoch = _next_epoch(config.drop_epoch)
            self._write_config(config)
            bpf_map = self._maps["floe_ring_state"]
            bpf_map.update(_u32(0), bytes(bpf_map.slot_size))

    def _drop_totals(self) -> np.ndarray:
        """Per CPU, this interface's dropped frames and bytes (2 x ncpus, int64)."""
        ncpus = self._maps["floe_counters"].ncpus
        raw = self._raw_counters()
        if raw is None:
            return np.zeros((2, ncpus), dtype=np.int64)
        return np.asarray(dropped_per_cpu(raw, ncpus), dtype=np.int64)

    @staticmethod
    def _ring_words(raw: bytes, ncpus: int) -> np.ndarray:
        """A floe_ring_state map value: one row of u64 fields per CPU."""
        names = len(RingState._fields_)
        return np.frombuffer(raw, dtype=np.uint64).reshape(ncpus, -1)[:, :names]


def _next_epoch(epoch: int) -> int:
    """config.drop_epoch's next value (a u32; never 0, the zeroed state's)."""
    return epoch % 0xFFFFFFFF + 1


def _pinned_entries(path: Path) -> int:
    """max_entries of a pinned map (a ring buffer's size in bytes), 0 if it is not there."""
    fd = lb.lib.bpf_obj_get(str(path).encode())
    if fd < 0:
        return 0
    try:
        info = _map_info(fd)
        return 0 if info is None else info.max_entries
    finally:
        os.close(fd)


def _make_map(name: str, fd: int, ncpus: int) -> BpfMap:
    key_type, value_type, percpu = MAPS[name]
    key_size = ctypes.sizeof(key_type) if key_type is not None else 4
    value_size = ctypes.sizeof(value_type) if value_type is not None else 4
    return BpfMap(name, fd, key_size, value_size, percpu, ncpus if percpu else 1)


def _query(ifindex: int) -> lb.XdpQueryOpts:
    opts = lb.XdpQueryOpts(sz=ctypes.sizeof(lb.XdpQueryOpts))
    lb.check(lb.lib.bpf_xdp_query(ifindex, 0, ctypes.byref(opts)), AttachError,
             f"query XDP on ifindex {ifindex}")
    return opts


def _program_name(prog_id: int) -> str:
    """Name of a loaded program (bpf_prog_info.name, offset 64), '' if it is gone."""
    fd = lb.lib.bpf_prog_get_fd_by_id(prog_id)
    if fd < 0:
        return ""
    try:
        info = ctypes.create_string_buffer(256)
        size = ctypes.c_uint32(len(info))
        lb.check(lb.lib.bpf_obj_get_info_by_fd(fd, info, ctypes.byref(size)), AttachError,
                 f"info of program {prog_id}")  # errno kept: EPERM is a permission error
        return info.raw[64:80].split(b"\0", 1)[0].decode(errors="replace")
    finally:
        os.close(fd)


def _refuse_foreign(ifindex: int) -> None:
    """AttachError if the interface runs an XDP program other than floe_xdp."""
    current = _query(ifindex)
    if current.prog_id:
        name = _program_name(current.prog_id)
        if name and name != PROGRAM_NAME.decode():
            raise AttachError(f"ifindex {ifindex} runs another XDP program ({name!r}, id "
                              f"{current.prog_id}); detach it or pass replace_foreign=True")


def _attach(ifindex: int, prog_fd: int, prefer: AttachMode) -> AttachMode:
    """Attach (or replace in place); returns the mode actually used."""
    current = _query(ifindex)
    if current.attach_mode == lb.XDP_ATTACHED_DRV:
        order: list[AttachMode] = ["native"]  # replace in the mode already in use: no gap
    elif current.attach_mode == lb.XDP_ATTACHED_SKB:
        order = ["generic"]
    elif current.attach_mode != lb.XDP_ATTACHED_NONE:
        raise AttachError(f"ifindex {ifindex} has an XDP program in an unsupported mode "
                          f"({current.attach_mode})")
    else:
        order = ["native", "generic"] if prefer == "native" else ["generic"]
    last: BpfError | None = None
    for attach_mode in order:
        flags = lb.XDP_FLAGS_DRV_MODE if attach_mode == "native" else lb.XDP_FLAGS_SKB_MODE
        with lb.capture_log() as lines:
            ret = lb.lib.bpf_xdp_attach(ifindex, prog_fd, flags, None)
        if ret == 0:
            return attach_mode
        last = from_errno(AttachError, f"attach XDP ({attach_mode}) on ifindex {ifindex}",
                          -ret, "".join(lines))
        log.info("attach %s failed: %s", attach_mode, last)
    assert last is not None
    raise last
