/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * floe_kern_user.h — the ONE definition of every Floe BPF map key/value layout and constant.
 *
 * Included by the XDP program (after vmlinux.h) and by any user-space C. The Python mirror
 * lives in dataplane/bpf/layout.py; tests/unit/bpf/test_layout_btf.py compares both against
 * the BTF of bpf/build/floe_xdp.o so the two can never drift.
 *
 * Rules for editing: fixed-width fields only, explicit padding, append new counters at the
 * end of struct floe_if_counters. Any size change is a new layout: the loader refuses pins of
 * another size (detach first; counters restart), see docs/deployment.md.
 */
#ifndef FLOE_KERN_USER_H
#define FLOE_KERN_USER_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define FLOE_MAX_IFACES      64
#define FLOE_MAX_QUEUES      64
#define FLOE_MAX_CIDR_RULES  16384
#define FLOE_MAX_PORT_RULES  4096
#define FLOE_MAX_PROTO_RULES 256
#define FLOE_MAX_RULES       32768
#define FLOE_MAX_FLOWS       65536
#define FLOE_MAX_VLAN_TAGS   2
#define FLOE_MAX_EXT_HDRS    6 /* IPv6 extension headers walked; one more = malformed */

/*
 * The ring buffer (BPF_MAP_TYPE_RINGBUF, floe_ring): pass-through mode writes one record per
 * passed frame there, and every XDP mode writes sampled dropped frames (struct floe_ring_rec
 * followed by the frame's first bytes). The size is set when the maps are created
 * (FLOE_RING_BYTES unless the loader is told otherwise) and kept by the pins.
 */
#define FLOE_RING_BYTES      16777216 /* 16 MiB: ~100k records of a 128-byte snap */
#define FLOE_SNAP_DEFAULT    128      /* config.snaplen 0 means this */
#define FLOE_SNAP_MAX        256      /* records hold 64, 128 or 256 bytes of frame */
#define FLOE_DROP_WINDOW_NS  100000000 /* drop records: the rate cap's window (100 ms) */

/*
 * Parser rules shared by the kernel and the Python parser (dataplane/parse.py reads these
 * through dataplane/bpf/layout.py). ICMP/ICMPv6 flows carry port 0 on both sides, so an echo
 * request and its reply are one flow; an ICMP header shorter than FLOE_ICMP_HDR_LEN bytes is
 * malformed (truncated L4).
 */
#define FLOE_ICMP_FLOW_PORT  0
#define FLOE_ICMP_HDR_LEN    8

/* Operating mode of one interface (struct floe_config.mode). */
enum floe_mode {
	FLOE_MODE_INLINE = 0,      /* filter + count + pass; flows in the in-kernel LRU map */
	FLOE_MODE_TAP = 1,         /* filter + count + redirect to the AF_XDP socket of the RX queue */
	FLOE_MODE_PASSTHROUGH = 2, /* filter + count + pass; each passed frame's headers go to the
				    * ring buffer (1 in config.sample_n), flows built in user space */
};

/* What happened to a frame, as the ring records and the uplink's FlowRecord say it. */
enum floe_verdict {
	FLOE_VERDICT_UNKNOWN = 0,
	FLOE_VERDICT_FORWARDED = 1,
	FLOE_VERDICT_DROPPED = 2,
};

/* How the running dataplane's AF_XDP sockets are bound (config.xsk_mode, for --status). */
enum floe_xsk_mode {
	FLOE_XSK_MODE_NONE = 0,     /* no AF_XDP sockets (inline, pass-through) */
	FLOE_XSK_MODE_COPY = 1,
	FLOE_XSK_MODE_ZEROCOPY = 2,
};

/* A rule's action, and the default action for unmatched / malformed frames. */
enum floe_action {
	FLOE_ACTION_ALLOW = 0,
	FLOE_ACTION_DENY = 1,
};

/* Which port a port rule matches (struct floe_port_key.dir). */
enum floe_port_dir {
	FLOE_PORT_DIR_DST = 0,
	FLOE_PORT_DIR_SRC = 1,
};

/* Bits of struct floe_config.rule_maps: which rule maps hold entries (others are skipped). */
enum floe_rule_maps {
	FLOE_RULE_MAPS_SRC_V4 = 1,
	FLOE_RULE_MAPS_DST_V4 = 2,
	FLOE_RULE_MAPS_SRC_V6 = 4,
	FLOE_RULE_MAPS_DST_V6 = 8,
	FLOE_RULE_MAPS_PROTO = 16,
	FLOE_RULE_MAPS_PORT_DST = 32,
	FLOE_RULE_MAPS_PORT_SRC = 64,
};

/* Config map (ARRAY, one entry at key 0). */
struct floe_config {
	enum floe_mode mode;
	enum floe_action default_action;   /* frames no rule matched */
	enum floe_action malformed_action; /* malformed frames no rule matched */
	__u32 sample_n;                    /* tap mode: redirect 1 in N (0/1 = all), rest pass */
	__u32 track_flows;                 /* inline mode: update the LRU flow map (0/1) */
	__u32 rule_maps;                   /* enum floe_rule_maps bits, kept by user space */
	__u32 snaplen;                     /* ring records: frame bytes copied (0: FLOE_SNAP_DEFAULT) */
	__u32 drop_sample_n;               /* dropped frames recorded 1 in N (0: none, 1: all) */
	__u32 drop_rate_cap;               /* at most this many drop records a second per CPU (0: no
					    * cap); the rest ride on the next record's weight */
	__u32 xsk_mode;                    /* enum floe_xsk_mode, written by the dataplane (status) */
	__u32 drop_epoch;                  /* user space bumps it when a reader starts or drop
					    * records are turned on: each CPU's next drop record
					    * starts the weights afresh (floe_ring_state.drop_epoch) */
};

/*
 * Per-CPU counters (PERCPU_ARRAY) keyed by ifindex: slot = ifindex % FLOE_MAX_IFACES. Each
 * interface has its own pinned maps, so slots never collide; an array lookup is inlined by
 * the verifier (a hash lookup here cost ~34 ns per frame). Every field is a u64 count but the
 * last two (the drop records' state).
 */
struct floe_if_counters {
	__u64 packets;
	__u64 bytes;
	/* L3 class (well-formed frames only) */
	__u64 ipv4_packets;
	__u64 ipv4_bytes;
	__u64 ipv6_packets;
	__u64 ipv6_bytes;
	__u64 l3_other_packets;
	__u64 l3_other_bytes;
	/* L4 class (well-formed IP frames only; non-first fragments count as l4_other) */
	__u64 tcp_packets;
	__u64 tcp_bytes;
	__u64 udp_packets;
	__u64 udp_bytes;
	__u64 icmp_packets;
	__u64 icmp_bytes;
	__u64 icmpv6_packets;
	__u64 icmpv6_bytes;
	__u64 l4_other_packets;
	__u64 l4_other_bytes;
	__u64 vlan_packets;
	__u64 fragments;
	/* verdicts */
	__u64 passed;
	__u64 redirected;
	__u64 redirect_no_socket; /* tap mode, no AF_XDP socket on the RX queue: passed */
	__u64 sampled_out;        /* tap mode, not redirected because of 1-in-N sampling: passed */
	__u64 dropped_rule;
	__u64 dropped_default;
	__u64 dropped_malformed;
	/* malformed frames by reason (each also counts in .malformed) */
	__u64 malformed;
	__u64 mal_l2_truncated;
	__u64 mal_vlan_truncated;
	__u64 mal_vlan_too_deep;
	__u64 mal_l3_truncated;
	__u64 mal_ipv4_bad_version;
	__u64 mal_ipv4_bad_ihl;
	__u64 mal_ipv4_bad_total_len;
	__u64 mal_ipv6_bad_version;
	__u64 mal_ipv6_ext_truncated;
	__u64 mal_ipv6_too_many_ext;
	__u64 mal_l4_truncated;
	__u64 mal_tcp_bad_doff;
	__u64 flow_update_failed; /* inline mode: LRU insert failed */
	__u64 mal_ipv6_bad_payload_len; /* IPv6 payload length beyond the frame */
	/*
	 * The drop fast path (floe_xdp.c, fast_drop()): a plain IPv4 TCP/UDP frame dropped by a
	 * CIDR rule or by default deny is counted ONLY in one of these (packets, bytes) pairs,
	 * four adjacent u64 pairs in one place instead of seven counters over several cache lines.
	 * User space folds each pair into packets, bytes, ipv4_*, tcp_* or udp_* and dropped_rule
	 * or dropped_default (dataplane/bpf/counters.py), so every total stays exact; these fields
	 * are never shown on their own.
	 */
	__u64 fast_rule_tcp_packets;
	__u64 fast_rule_tcp_bytes;
	__u64 fast_rule_udp_packets;
	__u64 fast_rule_udp_bytes;
	__u64 fast_default_tcp_packets;
	__u64 fast_default_tcp_bytes;
	__u64 fast_default_udp_packets;
	__u64 fast_default_udp_bytes;
	/* the ring buffer (floe_ring) */
	__u64 ring_passed;  /* records of passed frames written (pass-through mode) */
	__u64 ring_dropped; /* records of dropped frames written (every mode) */
	__u64 ring_full;    /* frames whose record did not fit: lost to flow accounting */
	/*
	 * The IPv6 drop fast path: as the fast_* pairs above, for a plain IPv6 TCP/UDP frame
	 * (folded into packets, bytes, ipv6_*, tcp_* or udp_*, dropped_rule or dropped_default).
	 */
	__u64 fast6_rule_tcp_packets;
	__u64 fast6_rule_tcp_bytes;
	__u64 fast6_rule_udp_packets;
	__u64 fast6_rule_udp_bytes;
	__u64 fast6_default_tcp_packets;
	__u64 fast6_default_tcp_bytes;
	__u64 fast6_default_udp_packets;
	__u64 fast6_default_udp_bytes;
	/* wire bytes of the frames dropped off the fast path (rule, default or malformed); user
	 * space adds the fast pairs' bytes: every dropped byte */
	__u64 dropped_bytes;
	/*
	 * Not counts, never shown: the drop records' state every drop reads, here because the
	 * drop path holds this map value already (a floe_ring_state lookup on every drop cost
	 * ~1.5 ns). Once a window's records are spent, no drop looks at the clock before
	 * drop_rec_look_jiffies; 1-in-N drop sampling counts down drop_rec_skip to the next
	 * candidate.
	 */
	__u64 drop_rec_look_jiffies;
	__u64 drop_rec_skip;
};

/*
 * Ring buffer record: this header, then `caplen` bytes of the frame (the record's size is
 * the header plus 64, 128 or 256 bytes: the smallest that holds config.snaplen).
 *
 * Sampling keeps totals exact: a frame not recorded (1-in-N sampling, the drop rate cap)
 * adds itself to the next record's weight on the same CPU and of the same kind (passed or
 * dropped), so the weights of all records sum to the frames they stand for. A frame whose
 * record did not fit (ring full) is counted in ring_full instead, never in a weight.
 */
struct floe_ring_rec {
	__u64 ts_ns;        /* bpf_ktime_get_coarse_ns(): CLOCK_MONOTONIC_COARSE, jiffy steps */
	__u64 weight_bytes; /* wire bytes of the frames this record stands for, its own included */
	__u32 weight;       /* frames this record stands for: 1 + those sampled out before it */
	__u32 len;          /* this frame's length */
	__u32 rule_id;      /* the rule credited (0: no rule; the default or malformed action) */
	__u16 caplen;       /* bytes of the frame that follow */
	__u8 verdict;       /* enum floe_verdict */
	__u8 _pad;
};

/*
 * Per-CPU sampling state of the ring records (PERCPU_ARRAY floe_ring_state, key 0): written
 * by the kernel, and zeroed by user space when a dataplane starts (which also bumps
 * config.drop_epoch), so weights never carry frames nobody was there to see.
 *
 * A passed frame not recorded adds itself to pass_weight. A dropped frame not recorded
 * writes nothing (with 1-in-N sampling, N > 1, it counts down floe_if_counters.drop_rec_skip):
 * a drop record's weight is read off floe_counters at record time — this CPU's dropped frames
 * of every kind (the fast pairs, dropped_rule/default/malformed and dropped_bytes) less
 * drop_base, the drops already carried by a record or lost to a full ring. A record whose
 * drop_epoch is not config.drop_epoch stands for itself and sets the base: the kernel alone
 * writes the base, so no reset can make two records carry the same frames. Pending drops are
 * those totals less drop_base (dataplane/bpf/loader.py, ring_state()).
 */
struct floe_ring_state {
	__u64 pass_weight;       /* passed frames not yet recorded: the next pass record's weight */
	__u64 pass_weight_bytes;
	__u64 drop_base_packets; /* this CPU's drops already in a record or lost (ring_full) */
	__u64 drop_base_bytes;
	__u64 window_ns;         /* start of the drop rate cap's current window (0: none yet) */
	__u64 window_left;       /* drop records it may still take */
	__u64 drop_epoch;        /* the config.drop_epoch drop_base belongs to */
};

/* LPM trie keys: prefixlen first, address bytes in network order. */
struct floe_lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct floe_lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/*
 * IPv4 CIDR index (DIR-16-8-8), one per direction, built by user space from the LPM trie
 * entries above so a lookup is at most three array reads (no trie walk): level 1 is indexed by the top 16 address bits, levels 2 and 3 by 256-entry blocks
 * for the /16s and /24s that hold longer prefixes. Every entry is a u32 "rule word":
 *   0                               no rule
 *   FLOE_WORD_CHILD | block         look in block `block` of the next level
 *   FLOE_WORD_TRIE                  out of blocks here: ask the LPM trie (always complete)
 *   [FLOE_WORD_DENY |] hit_slot + 1 a rule: its action and floe_rule_hits slot
 * The kernel turns trie/hash results into the same word, so one verdict path serves all.
 */
#define FLOE_DIR_L1_SIZE     65536   /* 2^16 entries */
#define FLOE_DIR_L2_BLOCKS   1024    /* /16s holding prefixes longer than /16 */
#define FLOE_DIR_L2_SIZE     262144  /* FLOE_DIR_L2_BLOCKS * 256 */
#define FLOE_DIR_L3_BLOCKS   2048    /* /24s holding prefixes longer than /24 */
#define FLOE_DIR_L3_SIZE     524288  /* FLOE_DIR_L3_BLOCKS * 256 */
#define FLOE_WORD_CHILD      0x80000000
#define FLOE_WORD_TRIE       0x40000000
#define FLOE_WORD_DENY       0x01000000
#define FLOE_WORD_SLOT       0x00ffffff /* hit_slot + 1; also the block index of a child */

/*
 * Each level is ONE map element (ARRAY, max_entries 1, key 0) holding the whole table, so the
 * kernel indexes it directly (w[i]) instead of passing every index through a lookup key on
 * the stack, and the element has no per-entry padding.
 */
struct floe_dir_l1 {
	__u32 w[FLOE_DIR_L1_SIZE];
};

struct floe_dir_l2 {
	__u32 w[FLOE_DIR_L2_SIZE];
};

struct floe_dir_l3 {
	__u32 w[FLOE_DIR_L3_SIZE];
};

/*
 * The IPv6 CIDR index, one per direction: an open-addressing hash table of the prefixes in
 * use, in ONE array element (like the v4 index's levels: the kernel indexes it directly, no
 * helper call), built by user space from the v6 LPM tries (which stay complete). A slot holds
 * a prefix — the address masked to `prefixlen`, as the two u64 a load of its first and last 8
 * bytes (network order) gives on this host: no byte swap on the frame's path — and its rule
 * word (as the v4 index's). The kernel walks the lengths in use longest first (floe_v6_lens,
 * each with its masks and hash salt ready): one probe sequence per length, and the first hit
 * is the longest match.
 *
 * Slot of (hi, lo, len): (hi * FLOE_V6_K1 ^ lo * FLOE_V6_K2 ^ len * FLOE_V6_K3) >> (64 -
 * FLOE_V6_SLOT_BITS), then linear probing, at most FLOE_V6_PROBES slots; word 0 ends a probe
 * (empty), FLOE_V6_TOMB is a deleted slot (skip). User space writes slots in place through
 * mmap, key before word, so a frame finds its old or its new rule. With more than
 * FLOE_V6_MAX_LENS lengths in use, or a prefix that would need a longer probe, the count says
 * FLOE_V6_LENS_TRIE and the trie answers.
 */
#define FLOE_V6_MAX_LENS     8
#define FLOE_V6_LENS_TRIE    255
#define FLOE_V6_SLOT_BITS    16
#define FLOE_V6_SLOTS        65536 /* 2^FLOE_V6_SLOT_BITS: load <= 1/4 at FLOE_MAX_CIDR_RULES */
#define FLOE_V6_PROBES       16
#define FLOE_V6_TOMB         0x20000000 /* never a rule word */
#define FLOE_V6_K1           0x9E3779B97F4A7C15
#define FLOE_V6_K2           0xC2B2AE3D27D4EB4F
#define FLOE_V6_K3           0x165667B19E3779F9

struct floe_v6_slot {
	__u64 hi;
	__u64 lo;
	__u32 prefixlen;
	__u32 word; /* 0: empty, FLOE_V6_TOMB: deleted, else the rule word */
};

struct floe_v6_table {
	struct floe_v6_slot s[FLOE_V6_SLOTS]; /* 1.5 MiB */
};

/* One prefix length in use, as a frame's lookup applies it. */
struct floe_v6_len {
	__u64 mask_hi; /* the length's mask, loaded as a slot's hi and lo are */
	__u64 mask_lo;
	__u64 salt; /* len * FLOE_V6_K3 */
	__u32 len;
	__u32 _pad;
};

/*
 * Since 2026-12-08 slots hold native loads (before: byte-swapped values, same size). Pins of
 * that older layout are refused because this struct grew (24 -> 520 bytes): keep a change of
 * meaning in the slots tied to a change of size here, or older pins would be misread.
 */
struct floe_v6_lens {
	__u8 src_n; /* lengths in src[] (0..FLOE_V6_MAX_LENS), or FLOE_V6_LENS_TRIE */
	__u8 dst_n;
	__u8 _pad[6];
	struct floe_v6_len src[FLOE_V6_MAX_LENS]; /* distinct prefix lengths, longest first */
	struct floe_v6_len dst[FLOE_V6_MAX_LENS];
};

/* Value of every rule map: which rule matched, what it does, where its hits are counted. */
struct floe_rule_val {
	__u32 rule_id;
	enum floe_action action;
	__u32 hit_slot; /* index into floe_rule_hits, assigned by user space */
};

/* Port rules (HASH): protocol (6 or 17) + port (host byte order) + direction. */
struct floe_port_key {
	__u16 port;
	__u8 proto;
	__u8 dir;
};

/* Protocol rules (HASH): IP protocol number (IPv4 protocol / IPv6 final next header). */
struct floe_proto_key {
	__u32 proto;
};

/* Per-rule hits (PERCPU_ARRAY indexed by floe_rule_val.hit_slot). */
struct floe_rule_hits {
	__u64 packets;
	__u64 bytes;
};

/*
 * floe_rule_ids (ARRAY of __u32 indexed by hit slot): the rule id of each slot, written by
 * user space before the rule can match, so a ring record names its rule by id even when the
 * verdict came from the CIDR index (whose words carry only the slot).
 */

/*
 * In-kernel flow map for inline mode (LRU_HASH). The key is canonical (endpoint "a" is the
 * lower (addr, port) pair) so both directions share one entry; .initiator says which
 * endpoint sent the first packet seen. Addresses are 16 bytes, IPv4 as ::ffff:a.b.c.d.
 */
struct floe_flow_key {
	__u8 addr_a[16];
	__u8 addr_b[16];
	__u16 port_a; /* host byte order; 0 for ICMP/ICMPv6/other protocols */
	__u16 port_b;
	__u8 proto;
	__u8 ip_version; /* 4 or 6 */
	__u16 vlan;      /* outer VLAN id, 0 if untagged */
	__u32 ifindex;
};

struct floe_flow_val {
	__u64 packets_ab; /* a -> b */
	__u64 bytes_ab;
	__u64 packets_ba; /* b -> a */
	__u64 bytes_ba;
	__u64 first_seen_ns; /* bpf_ktime_get_coarse_ns(): CLOCK_MONOTONIC_COARSE, jiffy steps */
	__u64 last_seen_ns;
	__u8 tcp_flags;  /* OR of every TCP flag byte seen, both directions */
	__u8 initiator;  /* 0: a sent the first packet seen, 1: b did */
	__u8 _pad[6];
};

#endif /* FLOE_KERN_USER_H */
