// SPDX-License-Identifier: AGPL-3.0-only
/*
 * floe_xdp — Floe's XDP program: parse, count, filter, and (tap) redirect, (inline) track flows
 * or (pass-through) copy each passed frame's headers into the ring buffer.
 *
 * Every frame is counted per ingress ifindex. Parsing never trusts a length field: anything
 * that does not fit is counted as malformed by reason and never classified. Verdict order:
 * a matching deny rule drops; else a matching allow rule passes; else malformed frames get
 * config.malformed_action and the rest config.default_action. Exactly one rule (the first
 * deny, else the first allow, in the order src CIDR, dst CIDR, protocol, dst port, src port)
 * is credited per frame. Invariant (once user space folds in the fast-path pairs, see
 * fast_drop()): packets == passed + redirected + dropped_*.
 *
 * Dropped frames are recorded in the ring buffer too (every mode, config.drop_sample_n and
 * drop_rate_cap), with their rule, so user space can show who is dropped and by what.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "floe_kern_user.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_P_QINQ_OLD 0x9100 /* pre-802.1ad QinQ outer tag */

#define PROTO_HOPOPTS 0
#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ROUTING 43
#define PROTO_FRAGMENT 44
#define PROTO_AH 51
#define PROTO_ICMPV6 58
#define PROTO_DSTOPTS 60

#define IP4_MF 0x2000
#define IP4_OFFSET 0x1fff

char LICENSE[] SEC("license") = "GPL";

/* Malformed reasons (private to this file; user space sees the named counter fields). */
enum mal {
	MAL_NONE = 0,
	MAL_L2_TRUNCATED,
	MAL_VLAN_TRUNCATED,
	MAL_VLAN_TOO_DEEP,
	MAL_L3_TRUNCATED,
	MAL_IPV4_BAD_VERSION,
	MAL_IPV4_BAD_IHL,
	MAL_IPV4_BAD_TOTAL_LEN,
	MAL_IPV6_BAD_VERSION,
	MAL_IPV6_EXT_TRUNCATED,
	MAL_IPV6_TOO_MANY_EXT,
	MAL_L4_TRUNCATED,
	MAL_TCP_BAD_DOFF,
	MAL_IPV6_BAD_PAYLOAD_LEN,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct floe_config);
} floe_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOE_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct floe_if_counters);
} floe_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FLOE_MAX_CIDR_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct floe_lpm_v4_key);
	__type(value, struct floe_rule_val);
} floe_src_v4 SEC(".maps"), floe_dst_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FLOE_MAX_CIDR_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct floe_lpm_v6_key);
	__type(value, struct floe_rule_val);
} floe_src_v6 SEC(".maps"), floe_dst_v6 SEC(".maps");

/*
 * The IPv4 CIDR index in front of the v4 tries (layout in floe_kern_user.h): each level is
 * one element; user space reads it through mmap, without syscalls.
 */
#define FLOE_DIR_LEVEL(level)                     \
	struct {                                  \
		__uint(type, BPF_MAP_TYPE_ARRAY);  \
		__uint(max_entries, 1);            \
		__uint(map_flags, BPF_F_MMAPABLE); \
		__type(key, __u32);                \
		__type(value, struct level);       \
	}

FLOE_DIR_LEVEL(floe_dir_l1) floe_src_v4_l1 SEC(".maps"), floe_dst_v4_l1 SEC(".maps");
FLOE_DIR_LEVEL(floe_dir_l2) floe_src_v4_l2 SEC(".maps"), floe_dst_v4_l2 SEC(".maps");
FLOE_DIR_LEVEL(floe_dir_l3) floe_src_v4_l3 SEC(".maps"), floe_dst_v4_l3 SEC(".maps");

/* The IPv6 CIDR index in front of the v6 tries: one hash table element (floe_kern_user.h). */
FLOE_DIR_LEVEL(floe_v6_table) floe_src_v6_t SEC(".maps"), floe_dst_v6_t SEC(".maps");


struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct floe_v6_lens);
} floe_v6_lens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FLOE_MAX_PORT_RULES);
	__type(key, struct floe_port_key);
	__type(value, struct floe_rule_val);
} floe_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FLOE_MAX_PROTO_RULES);
	__type(key, struct floe_proto_key);
	__type(value, struct floe_rule_val);
} floe_protos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOE_MAX_RULES);
	__type(key, __u32);
	__type(value, struct floe_rule_hits);
} floe_rule_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(max_entries, FLOE_MAX_FLOWS);
	__type(key, struct floe_flow_key);
	__type(value, struct floe_flow_val);
} floe_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOE_MAX_RULES);
	__type(key, __u32);
	__type(value, __u32);
} floe_rule_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FLOE_RING_BYTES);
} floe_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct floe_ring_state);
} floe_ring_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, FLOE_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} floe_xsks SEC(".maps");

struct vlan_tag {
	__be16 tci;
	__be16 encap_proto;
};

/* What the parser learnt; only fields whose *_ok flag is set may be used. */
struct pkt {
	union { /* IPv4 as ::ffff:a.b.c.d; the mapping bytes are written only for flows */
		__u8 src[16];
		struct { __u8 _src_pad[12]; __be32 src4; };
	};
	union {
		__u8 dst[16];
		struct { __u8 _dst_pad[12]; __be32 dst4; };
	};
	__u16 sport;
	__u16 dport;
	__u16 vlan;
	__u8 vlan_tagged;
	__u8 l3; /* 0 other, 4, 6 */
	__u8 proto;
	__u8 l4_ok;
	__u8 fragment;     /* any fragment */
	__u8 non_first;    /* fragment without the L4 header */
	__u8 tcp_flags;
	__u8 l4pair; /* L4 class counter pair: 0 tcp, 2 udp, 4 icmp, 6 icmpv6, 8 other */
} __attribute__((aligned(8))); /* src and dst read as two u64 each (lookup_v6) */

static __always_inline int parse_l4(void *cur, void *end, struct pkt *p)
{
	if (p->proto == PROTO_TCP) {
		struct tcphdr *t = cur;
		if ((void *)(t + 1) > end)
			return MAL_L4_TRUNCATED;
		if (t->doff < 5)
			return MAL_TCP_BAD_DOFF;
		p->sport = bpf_ntohs(t->source);
		p->dport = bpf_ntohs(t->dest);
		p->tcp_flags = ((__u8 *)t)[13];
	} else if (p->proto == PROTO_UDP) {
		struct udphdr *u = cur;
		if ((void *)(u + 1) > end)
			return MAL_L4_TRUNCATED;
		p->sport = bpf_ntohs(u->source);
		p->dport = bpf_ntohs(u->dest);
		p->l4pair = 2;
	} else if (p->proto == PROTO_ICMP || p->proto == PROTO_ICMPV6) {
		if (cur + FLOE_ICMP_HDR_LEN > end)
			return MAL_L4_TRUNCATED;
		p->l4pair = p->proto == PROTO_ICMP ? 4 : 6;
	} else {
		p->l4pair = 8;
	}
	p->l4_ok = 1;
	return MAL_NONE;
}

static __always_inline int parse_ipv4(void *cur, void *end, struct pkt *p)
{
	struct iphdr *ip = cur;
	if ((void *)(ip + 1) > end)
		return MAL_L3_TRUNCATED;
	if (ip->version != 4)
		return MAL_IPV4_BAD_VERSION;
	__u32 hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return MAL_IPV4_BAD_IHL;
	if (cur + hlen > end)
		return MAL_L3_TRUNCATED;
	__u32 total = bpf_ntohs(ip->tot_len);
	if (total < hlen || cur + total > end)
		return MAL_IPV4_BAD_TOTAL_LEN;
	p->src4 = ip->saddr;
	p->dst4 = ip->daddr;
	p->l3 = 4;
	p->proto = ip->protocol;
	__u16 frag = bpf_ntohs(ip->frag_off);
	if (frag & (IP4_MF | IP4_OFFSET))
		p->fragment = 1;
	if (frag & IP4_OFFSET) {
		p->non_first = 1;
		p->l4pair = 8;
		return MAL_NONE;
	}
	return parse_l4(cur + hlen, end, p);
}

/*
 * The common case: an untagged IPv4 frame without options or fragmentation carrying TCP or
 * UDP, with 20 bytes after the IP header. Returns its IP header, or NULL for anything else
 * (the general parser's business). It only accepts frames parse() accepts with the same
 * result, so the fast paths below cannot disagree with it.
 */
static __always_inline struct iphdr *plain_v4(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *t = (void *)(ip + 1); /* a UDP header is its first 8 bytes */
	if ((void *)(t + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ((__u8 *)ip)[0] != 0x45 || (ip->frag_off & bpf_htons(IP4_MF | IP4_OFFSET)))
		return NULL;
	__u32 total = bpf_ntohs(ip->tot_len);
	if (total < sizeof(*ip) || (void *)ip + total > end)
		return NULL; /* malformed: parse() counts it by reason */
	if (ip->protocol == PROTO_TCP ? t->doff < 5 : ip->protocol != PROTO_UDP)
		return NULL;
	return ip;
}

/* Class counters of a plain_v4() frame. */
static __always_inline void count_plain_v4(struct floe_if_counters *c, struct iphdr *ip,
					   __u64 len)
{
	c->ipv4_packets++;
	c->ipv4_bytes += len;
	if (ip->protocol == PROTO_TCP) {
		c->tcp_packets++;
		c->tcp_bytes += len;
	} else {
		c->udp_packets++;
		c->udp_bytes += len;
	}
}

/* `p` for a plain_v4() frame: the fields parse() would have set (no memset needed). */
static __always_inline void fill_plain_v4(struct pkt *p, struct iphdr *ip)
{
	struct tcphdr *t = (void *)(ip + 1);
	p->src4 = ip->saddr;
	p->dst4 = ip->daddr;
	p->sport = bpf_ntohs(t->source);
	p->dport = bpf_ntohs(t->dest);
	p->proto = ip->protocol;
	p->tcp_flags = ip->protocol == PROTO_TCP ? ((__u8 *)t)[13] : 0;
	p->l3 = 4;
	p->l4_ok = 1;
	p->non_first = 0;
	p->fragment = 0;
	p->vlan = 0;
	p->vlan_tagged = 0;
}

/*
 * The IPv6 common case: untagged, no extension headers, TCP or UDP with 20 bytes after the
 * IPv6 header, payload length inside the frame. Accepts only what parse() accepts with the
 * same result (see plain_v4()).
 */
static __always_inline struct ipv6hdr *plain_v6(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct tcphdr *t = (void *)(ip6 + 1);
	if ((void *)(t + 1) > end || eth->h_proto != bpf_htons(ETH_P_IPV6) ||
	    (((__u8 *)ip6)[0] >> 4) != 6)
		return NULL;
	if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > end)
		return NULL; /* malformed: parse() counts it by reason */
	if (ip6->nexthdr == PROTO_TCP ? t->doff < 5 : ip6->nexthdr != PROTO_UDP)
		return NULL;
	return ip6;
}

/* Class counters of a plain_v6() frame. */
static __always_inline void count_plain_v6(struct floe_if_counters *c, struct ipv6hdr *ip6,
					   __u64 len)
{
	c->ipv6_packets++;
	c->ipv6_bytes += len;
	if (ip6->nexthdr == PROTO_TCP) {
		c->tcp_packets++;
		c->tcp_bytes += len;
	} else {
		c->udp_packets++;
		c->udp_bytes += len;
	}
}

/* `p` for a plain_v6() frame: the fields parse() would have set. */
static __always_inline void fill_plain_v6(struct pkt *p, struct ipv6hdr *ip6)
{
	struct tcphdr *t = (void *)(ip6 + 1);
	__builtin_memcpy(p->src, &ip6->saddr, 16);
	__builtin_memcpy(p->dst, &ip6->daddr, 16);
	p->sport = bpf_ntohs(t->source);
	p->dport = bpf_ntohs(t->dest);
	p->proto = ip6->nexthdr;
	p->tcp_flags = ip6->nexthdr == PROTO_TCP ? ((__u8 *)t)[13] : 0;
	p->l3 = 6;
	p->l4_ok = 1;
	p->non_first = 0;
	p->fragment = 0;
	p->vlan = 0;
	p->vlan_tagged = 0;
}

static __always_inline int is_ext_hdr(__u8 nh)
{
	return nh == PROTO_HOPOPTS || nh == PROTO_ROUTING || nh == PROTO_FRAGMENT ||
	       nh == PROTO_AH || nh == PROTO_DSTOPTS;
}

static __always_inline int parse_ipv6(void *cur, void *end, struct pkt *p)
{
	struct ipv6hdr *ip6 = cur;
	if ((void *)(ip6 + 1) > end)
		return MAL_L3_TRUNCATED;
	if (ip6->version != 6)
		return MAL_IPV6_BAD_VERSION;
	if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > end)
		return MAL_IPV6_BAD_PAYLOAD_LEN;
	__builtin_memcpy(p->src, &ip6->saddr, 16);
	__builtin_memcpy(p->dst, &ip6->daddr, 16);
	p->l3 = 6;
	__u8 nh = ip6->nexthdr;
	cur = ip6 + 1;
#pragma unroll
	for (int i = 0; i < FLOE_MAX_EXT_HDRS; i++) {
		if (!is_ext_hdr(nh))
			break;
		__u8 *h = cur;
		if ((void *)(h + 8) > end)
			return MAL_IPV6_EXT_TRUNCATED;
		__u32 len;
		if (nh == PROTO_FRAGMENT) {
			__u16 off = ((__u16)h[2] << 8 | h[3]);
			p->fragment = 1;
			if (off & 0xfff8) {
				p->proto = h[0];
				p->non_first = 1;
				p->l4pair = 8;
				return MAL_NONE;
			}
			len = 8;
		} else if (nh == PROTO_AH) {
			len = ((__u32)h[1] + 2) * 4;
		} else {
			len = ((__u32)h[1] + 1) * 8;
		}
		if (cur + len > end)
			return MAL_IPV6_EXT_TRUNCATED;
		nh = h[0];
		cur += len;
	}
	if (is_ext_hdr(nh))
		return MAL_IPV6_TOO_MANY_EXT;
	p->proto = nh;
	return parse_l4(cur, end, p);
}

static __always_inline int is_vlan_tag(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD) ||
	       proto == bpf_htons(ETH_P_QINQ_OLD);
}

static __always_inline int parse(void *data, void *end, struct pkt *p)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return MAL_L2_TRUNCATED;
	__be16 proto = eth->h_proto;
	void *cur = eth + 1;
#pragma unroll
	for (int i = 0; i < FLOE_MAX_VLAN_TAGS; i++) {
		if (!is_vlan_tag(proto))
			break;
		struct vlan_tag *tag = cur;
		if ((void *)(tag + 1) > end)
			return MAL_VLAN_TRUNCATED;
		if (i == 0) {
			p->vlan = bpf_ntohs(tag->tci) & 0x0fff;
			p->vlan_tagged = 1;
		}
		proto = tag->encap_proto;
		cur = tag + 1;
	}
	if (is_vlan_tag(proto))
		return MAL_VLAN_TOO_DEEP;
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(cur, end, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(cur, end, p);
	return MAL_NONE;
}

static __always_inline void count_malformed(struct floe_if_counters *c, int mal)
{
	c->malformed++;
	switch (mal) {
	case MAL_L2_TRUNCATED: c->mal_l2_truncated++; break;
	case MAL_VLAN_TRUNCATED: c->mal_vlan_truncated++; break;
	case MAL_VLAN_TOO_DEEP: c->mal_vlan_too_deep++; break;
	case MAL_L3_TRUNCATED: c->mal_l3_truncated++; break;
	case MAL_IPV4_BAD_VERSION: c->mal_ipv4_bad_version++; break;
	case MAL_IPV4_BAD_IHL: c->mal_ipv4_bad_ihl++; break;
	case MAL_IPV4_BAD_TOTAL_LEN: c->mal_ipv4_bad_total_len++; break;
	case MAL_IPV6_BAD_VERSION: c->mal_ipv6_bad_version++; break;
	case MAL_IPV6_EXT_TRUNCATED: c->mal_ipv6_ext_truncated++; break;
	case MAL_IPV6_TOO_MANY_EXT: c->mal_ipv6_too_many_ext++; break;
	case MAL_L4_TRUNCATED: c->mal_l4_truncated++; break;
	case MAL_TCP_BAD_DOFF: c->mal_tcp_bad_doff++; break;
	case MAL_IPV6_BAD_PAYLOAD_LEN: c->mal_ipv6_bad_payload_len++; break;
	}
}

/* Counter pairs are indexed from their first field: keep them adjacent in the header. */
#define PAIR_AT(first, field) (__builtin_offsetof(struct floe_if_counters, field) == \
			       __builtin_offsetof(struct floe_if_counters, first) + \
			       2 * sizeof(__u64) * PAIR_##field)
enum { PAIR_ipv6_packets = 1, PAIR_l3_other_packets = 2, PAIR_udp_packets = 1,
       PAIR_icmp_packets = 2, PAIR_icmpv6_packets = 3, PAIR_l4_other_packets = 4 };
_Static_assert(PAIR_AT(ipv4_packets, ipv6_packets) && PAIR_AT(ipv4_packets, l3_other_packets),
	       "L3 (packets, bytes) pairs must be adjacent");
_Static_assert(PAIR_AT(tcp_packets, udp_packets) && PAIR_AT(tcp_packets, icmp_packets) &&
		       PAIR_AT(tcp_packets, icmpv6_packets) && PAIR_AT(tcp_packets, l4_other_packets),
	       "L4 (packets, bytes) pairs must be adjacent");

static __always_inline void count_classes(struct floe_if_counters *c, struct pkt *p, __u64 len)
{
	if (p->vlan_tagged)
		c->vlan_packets++;
	/* word offset of the (packets, bytes) pair from ipv4_packets: ipv4, ipv6, l3_other */
	__u32 l3pair = p->l3 == 4 ? 0 : p->l3 == 6 ? 2 : 4;
	__u64 *pair = &c->ipv4_packets + l3pair;
	pair[0]++;
	pair[1] += len;
	if (l3pair == 2 * PAIR_l3_other_packets)
		return; /* not IP: no L4 class */
	if (p->fragment)
		c->fragments++;
	__u32 l4pair = p->l4pair; /* from tcp_packets: tcp, udp, icmp, icmpv6, l4_other */
	if (l4pair > 2 * PAIR_l4_other_packets)
		l4pair = 2 * PAIR_l4_other_packets;
	pair = &c->tcp_packets + l4pair;
	pair[0]++;
	pair[1] += len;
}

/* A rule map value as a rule word (0 if absent): action bit + hits slot + 1. */
static __always_inline __u32 word_of(struct floe_rule_val *v)
{
	if (!v)
		return 0;
	return (v->hit_slot + 1) | (v->action == FLOE_ACTION_DENY ? FLOE_WORD_DENY : 0);
}

/* The first deny decides at once; otherwise the first allow is remembered. */
#define CONSIDER(expr)                                     \
	do {                                               \
		__u32 _w = (expr);                         \
		if (_w & FLOE_WORD_DENY)                   \
			return _w;                         \
		if (!allow)                                \
			allow = _w;                        \
	} while (0)

/*
 * Longest-prefix match of an IPv4 address (network order) in a DIR-16-8-8 index: one to
 * three direct array reads, no helper call. FLOE_WORD_TRIE means "ask the trie". The level
 * lookups use the constant key 0, so they do not wait on the address or on each other.
 */
static __always_inline __u32 index_v4(void *l1map, void *l2map, void *l3map, __be32 addr)
{
	__u32 zero = 0;
	__u32 a = bpf_ntohl(addr);
	struct floe_dir_l1 *l1 = bpf_map_lookup_elem(l1map, &zero);
	if (!l1)
		return 0;
	__u32 w = l1->w[a >> 16];
	if (w & FLOE_WORD_CHILD) {
		struct floe_dir_l2 *l2 = bpf_map_lookup_elem(l2map, &zero);
		if (!l2)
			return 0;
		w = l2->w[((w & (FLOE_DIR_L2_BLOCKS - 1)) << 8) | ((a >> 8) & 0xff)];
		if (w & FLOE_WORD_CHILD) {
			struct floe_dir_l3 *l3 = bpf_map_lookup_elem(l3map, &zero);
			if (!l3)
				return 0;
			w = l3->w[((w & (FLOE_DIR_L3_BLOCKS - 1)) << 8) | (a & 0xff)];
		}
	}
	return w;
}

/* index_v4, and the trie where the index ran out of blocks. */
static __always_inline __u32 lookup_v4(void *l1, void *l2, void *l3, void *trie, __be32 addr)
{
	__u32 w = index_v4(l1, l2, l3, addr);
	if (w == FLOE_WORD_TRIE) {
		struct floe_lpm_v4_key k = {.prefixlen = 32};
		__builtin_memcpy(k.addr, &addr, 4);
		return word_of(bpf_map_lookup_elem(trie, &k));
	}
	return w;
}

/*
 * The probe sequences of lookup_v6(). `wide` is a constant: 0 when every length in use is /64
 * or shorter, so the low half is masked away, hashes as 0 and is 0 in every slot that can
 * match — that copy neither loads nor compares it (~1 ns a frame).
 */
static __always_inline __u32 probe_v6(struct floe_v6_table *t, __u8 n,
				      const struct floe_v6_len *lens, __u64 hi, __u64 lo,
				      const int wide)
{
	for (int i = 0; i < FLOE_V6_MAX_LENS; i++) { /* bounded loops: the verifier walks them */
		if (i >= n)
			break;
		const struct floe_v6_len *l = &lens[i];
		__u64 mhi = hi & l->mask_hi;
		__u64 mlo = wide ? lo & l->mask_lo : 0;
		__u64 h = mhi * FLOE_V6_K1 ^ l->salt;
		if (wide)
			h ^= mlo * FLOE_V6_K2;
		__u32 at = h >> (64 - FLOE_V6_SLOT_BITS);
		for (int j = 0; j < FLOE_V6_PROBES; j++) {
			struct floe_v6_slot *s = &t->s[(at + j) & (FLOE_V6_SLOTS - 1)];
			__u32 word = s->word;
			if (!word)
				break;
			if (s->hi == mhi && (!wide || s->lo == mlo) && s->prefixlen == l->len &&
			    word != FLOE_V6_TOMB)
				return word;
		}
	}
	return 0;
}

/*
 * Longest-prefix match of an IPv6 address (16 bytes, network order) through the per-length
 * hash: the lengths in use, longest first, one probe sequence each; the first hit is the
 * longest match. The address is loaded as it lies and masked with the length's ready-made
 * masks (no byte swap, no shift: this is the frame's path). With more lengths than the index
 * holds (FLOE_V6_LENS_TRIE), the LPM trie answers. `narrow` (a constant) adds the /64-or-shorter
 * copy of the probes: the drop fast path takes it; match() does not, as every copy is walked by
 * the verifier (all four call sites with it: +400 ms per attach).
 */
static __always_inline __u32 lookup_v6(void *table, void *trie, __u8 n,
				       const struct floe_v6_len *lens, const void *addr,
				       const int narrow)
{
	if (n > FLOE_V6_MAX_LENS) {
		struct floe_lpm_v6_key k = {.prefixlen = 128};
		__builtin_memcpy(k.addr, addr, 16);
		return word_of(bpf_map_lookup_elem(trie, &k));
	}
	__u32 zero = 0;
	struct floe_v6_table *t = bpf_map_lookup_elem(table, &zero);
	if (!t)
		return 0;
	/*
	 * One 8-byte load per half (a memcpy would be sixteen byte loads, shifts and ORs). The
	 * alignment told to clang is the verifier's model, not the truth on x86: where alignment
	 * is enforced the verifier counts a frame from NET_IP_ALIGN (2), so saddr and daddr at
	 * frame offsets 22 and 38 are 8-aligned there (tests/integration/bpf/test_rules_v6.py
	 * loads the program with BPF_F_STRICT_ALIGNMENT), and x86 loads unaligned words at full
	 * speed; struct pkt on the stack is aligned(8), which the verifier always checks.
	 */
	const __u64 *half = __builtin_assume_aligned(addr, 8);
	if (narrow && !lens[0].mask_lo) { /* the longest length in use is /64 or shorter */
		/* the longest length's first slot, straight-line: where most hits are (the table
		 * is at most 1/4 full); a hit there is the longest match, as in the loop */
		__u64 mhi = half[0] & lens[0].mask_hi;
		struct floe_v6_slot *s =
			&t->s[(mhi * FLOE_V6_K1 ^ lens[0].salt) >> (64 - FLOE_V6_SLOT_BITS)];
		__u32 word = s->word;
		if (n && s->hi == mhi && s->prefixlen == lens[0].len && word && word != FLOE_V6_TOMB)
			return word;
		return probe_v6(t, n, lens, half[0], 0, 0);
	}
	return probe_v6(t, n, lens, half[0], half[1], 1);
}

static __always_inline struct floe_v6_lens *v6_lens(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&floe_v6_lens, &zero);
}

static __always_inline __u32 port_rule(__u16 port, __u8 proto, __u8 dir)
{
	struct floe_port_key k = {.port = port, .proto = proto, .dir = dir};
	return word_of(bpf_map_lookup_elem(&floe_ports, &k));
}

/*
 * The rule word credited for this frame (deny before allow), or 0. Maps user space marked
 * empty in cfg->rule_maps are not looked up: an unused rule kind costs nothing. The first
 * deny found returns at once (later lookups could not change the verdict or the credited
 * rule).
 */
static __always_inline __u32 match(struct pkt *p, __u32 maps)
{
	__u32 allow = 0;

	if (!maps)
		return 0;
	if (p->l3 == 4) {
		if (maps & FLOE_RULE_MAPS_SRC_V4)
			CONSIDER(lookup_v4(&floe_src_v4_l1, &floe_src_v4_l2, &floe_src_v4_l3,
					   &floe_src_v4, p->src4));
		if (maps & FLOE_RULE_MAPS_DST_V4)
			CONSIDER(lookup_v4(&floe_dst_v4_l1, &floe_dst_v4_l2, &floe_dst_v4_l3,
					   &floe_dst_v4, p->dst4));
	} else if (p->l3 == 6) {
		struct floe_v6_lens *l = v6_lens();
		if (!l)
			return 0;
		if (maps & FLOE_RULE_MAPS_SRC_V6)
			CONSIDER(lookup_v6(&floe_src_v6_t, &floe_src_v6, l->src_n, l->src, p->src, 0));
		if (maps & FLOE_RULE_MAPS_DST_V6)
			CONSIDER(lookup_v6(&floe_dst_v6_t, &floe_dst_v6, l->dst_n, l->dst, p->dst, 0));
	} else {
		return 0;
	}
	if (maps & FLOE_RULE_MAPS_PROTO) {
		struct floe_proto_key pk = {.proto = p->proto};
		CONSIDER(word_of(bpf_map_lookup_elem(&floe_protos, &pk)));
	}
	if (p->l4_ok && !p->non_first && (p->proto == PROTO_TCP || p->proto == PROTO_UDP)) {
		if (maps & FLOE_RULE_MAPS_PORT_DST)
			CONSIDER(port_rule(p->dport, p->proto, FLOE_PORT_DIR_DST));
		if (maps & FLOE_RULE_MAPS_PORT_SRC)
			CONSIDER(port_rule(p->sport, p->proto, FLOE_PORT_DIR_SRC));
	}
	return allow;
}

/*
 * The rule word for a plain_v4() frame when only IPv4 CIDR rules are in use, read straight
 * from the index with no helper call and no `struct pkt`; FLOE_WORD_TRIE ("undecided") when
 * other rule kinds are in use or the index defers to the trie — match() then decides. Same
 * verdict and credited rule as match(): source first, the first deny decides, else the first
 * allow. This is what keeps the drop path short when a flood is filtered.
 */
static __always_inline __u32 cidr_fast(struct iphdr *ip, __u32 maps)
{
	if (maps & ~(FLOE_RULE_MAPS_SRC_V4 | FLOE_RULE_MAPS_DST_V4 | FLOE_RULE_MAPS_SRC_V6 |
		     FLOE_RULE_MAPS_DST_V6))
		return FLOE_WORD_TRIE;
	__u32 rule = 0;
	if (maps & FLOE_RULE_MAPS_SRC_V4)
		rule = index_v4(&floe_src_v4_l1, &floe_src_v4_l2, &floe_src_v4_l3, ip->saddr);
	if (rule == FLOE_WORD_TRIE || (rule & FLOE_WORD_DENY) || !(maps & FLOE_RULE_MAPS_DST_V4))
		return rule;
	__u32 dst = index_v4(&floe_dst_v4_l1, &floe_dst_v4_l2, &floe_dst_v4_l3, ip->daddr);
	if (dst == FLOE_WORD_TRIE || (dst & FLOE_WORD_DENY) || !rule)
		return dst;
	return rule;
}

/* cidr_fast() for a plain_v6() frame: the v6 CIDR rules' word, or FLOE_WORD_TRIE (undecided:
 * other rule kinds in use, match() decides). */
static __always_inline __u32 cidr6_fast(struct ipv6hdr *ip6, __u32 maps)
{
	if (maps & ~(FLOE_RULE_MAPS_SRC_V4 | FLOE_RULE_MAPS_DST_V4 | FLOE_RULE_MAPS_SRC_V6 |
		     FLOE_RULE_MAPS_DST_V6))
		return FLOE_WORD_TRIE;
	if (!(maps & (FLOE_RULE_MAPS_SRC_V6 | FLOE_RULE_MAPS_DST_V6)))
		return 0;
	struct floe_v6_lens *l = v6_lens();
	if (!l)
		return FLOE_WORD_TRIE;
	__u32 rule = 0;
	if (maps & FLOE_RULE_MAPS_SRC_V6)
		rule = lookup_v6(&floe_src_v6_t, &floe_src_v6, l->src_n, l->src, &ip6->saddr, 1);
	if ((rule & FLOE_WORD_DENY) || !(maps & FLOE_RULE_MAPS_DST_V6))
		return rule;
	__u32 dst = lookup_v6(&floe_dst_v6_t, &floe_dst_v6, l->dst_n, l->dst, &ip6->daddr, 1);
	if ((dst & FLOE_WORD_DENY) || !rule)
		return dst;
	return rule;
}

static __always_inline void count_hit(__u32 rule, __u64 len)
{
	__u32 slot = (rule & FLOE_WORD_SLOT) - 1;
	struct floe_rule_hits *h = bpf_map_lookup_elem(&floe_rule_hits, &slot);
	if (h) {
		h->packets++;
		h->bytes += len;
	}
}

/* Word offsets of the fast-path pairs from fast_rule_tcp_packets (see floe_kern_user.h). */
#define FAST_PAIR(field) ((__builtin_offsetof(struct floe_if_counters, field) - \
			   __builtin_offsetof(struct floe_if_counters, fast_rule_tcp_packets)) / 8)
_Static_assert(FAST_PAIR(fast_rule_udp_packets) == 2 && FAST_PAIR(fast_default_tcp_packets) == 4 &&
		       FAST_PAIR(fast_default_udp_packets) == 6,
	       "fast-path (packets, bytes) pairs must be adjacent: rule tcp, rule udp, default tcp, "
	       "default udp");
#define FAST6_PAIR(field) ((__builtin_offsetof(struct floe_if_counters, field) - \
			    __builtin_offsetof(struct floe_if_counters, fast6_rule_tcp_packets)) / 8)
_Static_assert(FAST6_PAIR(fast6_rule_udp_packets) == 2 && FAST6_PAIR(fast6_default_tcp_packets) == 4 &&
		       FAST6_PAIR(fast6_default_udp_packets) == 6,
	       "IPv6 fast-path pairs must be laid out as the IPv4 ones");

/*
 * The drop fast path: a plain_v4() frame whose cidr_fast() word denies it, or that no rule
 * matches under default deny, is dropped with the rule's hits and ONE (packets, bytes) pair
 * counted; user space folds the pair into the interface totals. A flood being filtered
 * touches two counter lines a frame instead of five. Returns 1 if the frame is dropped.
 */
static __always_inline int fast_drop(struct floe_config *cfg, __u64 *pairs, __u8 proto,
				     __u32 rule, __u64 len)
{
	__u32 pair;
	if (rule & FLOE_WORD_DENY)
		pair = 0;
	else if (!rule && cfg->default_action == FLOE_ACTION_DENY)
		pair = 4;
	else
		return 0;
	if (proto == PROTO_UDP)
		pair += 2;
	if (rule)
		count_hit(rule, len);
	__u64 *counts = pairs + pair;
	counts[0]++;
	counts[1] += len;
	return 1;
}

/* ---- the ring buffer: pass-through records and dropped-frame samples ------------------- */

/* The rule id of a rule word (0 for none), from the slot -> id array user space keeps. */
static __always_inline __u32 rule_id_of(__u32 rule)
{
	if (!rule)
		return 0;
	__u32 slot = (rule & FLOE_WORD_SLOT) - 1;
	__u32 *id = bpf_map_lookup_elem(&floe_rule_ids, &slot);
	return id ? *id : 0;
}

/* A record's header as the caller fills it (ts_ns and caplen are set here), and the snap
 * length: one stack struct, since a subprogram takes at most five arguments. */
struct rec_args {
	struct floe_ring_rec hdr;
	__u32 snap;
};

/* One record holding `size` (a constant: 64, 128 or 256) bytes of frame. 0, or -1: no room. */
static __always_inline int ring_put(struct xdp_md *ctx, const __u32 size, struct rec_args *a)
{
	struct floe_ring_rec *r = bpf_ringbuf_reserve(&floe_ring, sizeof(*r) + size, 0);
	if (!r)
		return -1;
	__u32 len = a->hdr.len;
	__u32 n = len < a->snap ? len : a->snap;
	if (n > size)
		n = size;
	if (n > 0 && bpf_xdp_load_bytes(ctx, 0, (void *)(r + 1), n) != 0)
		n = 0;
	*r = a->hdr;
	r->ts_ns = bpf_ktime_get_coarse_ns(); /* jiffy resolution; ~15 ns cheaper a record here */
	r->caplen = n;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* A record in the smallest size class that holds the snap length. Not inlined: one copy of
 * the record code serves every call site (the callers' fast paths stay short). */
static __noinline int ring_record(struct xdp_md *ctx, struct rec_args *a)
{
	if (a->snap <= 64)
		return ring_put(ctx, 64, a);
	if (a->snap <= 128)
		return ring_put(ctx, 128, a);
	return ring_put(ctx, FLOE_SNAP_MAX, a);
}

static __always_inline __u32 snap_of(struct floe_config *cfg)
{
	return cfg->snaplen ? cfg->snaplen : FLOE_SNAP_DEFAULT;
}

/*
 * Pass-through mode: record a passed frame, 1 in config.sample_n; a frame not recorded rides
 * on the next record's weight (same CPU). A record that does not fit is counted in ring_full
 * and its frame is lost to the flow accounting (not carried).
 */
static __always_inline void record_pass(struct xdp_md *ctx, struct floe_config *cfg,
					struct floe_if_counters *c, __u64 len, __u32 rule)
{
	__u32 zero = 0;
	struct floe_ring_state *st = bpf_map_lookup_elem(&floe_ring_state, &zero);
	if (!st)
		return;
	__u64 weight = st->pass_weight + 1;
	__u64 weight_bytes = st->pass_weight_bytes + len;
	if (weight < cfg->sample_n) {
		st->pass_weight = weight;
		st->pass_weight_bytes = weight_bytes;
		return;
	}
	struct rec_args a = {.hdr = {.weight = weight, .weight_bytes = weight_bytes, .len = len,
				     .rule_id = rule_id_of(rule), .verdict = FLOE_VERDICT_FORWARDED},
			     .snap = snap_of(cfg)};
	if (ring_record(ctx, &a)) {
		c->ring_full++;
		return;
	}
	c->ring_passed++;
	st->pass_weight = 0;
	st->pass_weight_bytes = 0;
}

/*
 * This CPU's dropped frames on this interface, of every kind, and their bytes: the fast
 * pairs and the general path's counts (user space reads the same sums, loader.ring_state()).
 */
static __always_inline void drop_totals(struct floe_if_counters *c, __u64 *packets,
					__u64 *bytes)
{
	*packets = c->dropped_rule + c->dropped_default + c->dropped_malformed +
		   c->fast_rule_tcp_packets + c->fast_rule_udp_packets +
		   c->fast_default_tcp_packets + c->fast_default_udp_packets +
		   c->fast6_rule_tcp_packets + c->fast6_rule_udp_packets +
		   c->fast6_default_tcp_packets + c->fast6_default_udp_packets;
	*bytes = c->dropped_bytes + c->fast_rule_tcp_bytes + c->fast_rule_udp_bytes +
		 c->fast_default_tcp_bytes + c->fast_default_udp_bytes + c->fast6_rule_tcp_bytes +
		 c->fast6_rule_udp_bytes + c->fast6_default_tcp_bytes + c->fast6_default_udp_bytes;
}

/*
 * Every mode: record a dropped frame (already counted in `c`), 1 in config.drop_sample_n, at
 * most drop_rate_cap records a second per CPU (a budget per FLOE_DROP_WINDOW_NS window; once
 * it is spent the clock is read once a jiffy). A record's weight is every drop on this CPU
 * since the last record, read off the counters (struct floe_ring_state), so a frame not
 * recorded writes nothing (but the 1-in-N countdown when N > 1). The common case under a
 * flood (the budget spent) is the inline part, record_drop(): two loads from map values the
 * drop path holds, and jiffies; the rest is one subprogram (a call costs less than inlining
 * it at every drop).
 */
static __noinline void drop_slow(struct xdp_md *ctx, struct floe_config *cfg,
				 struct floe_if_counters *c, __u32 rule)
{
	__u32 zero = 0;
	struct floe_ring_state *st = bpf_map_lookup_elem(&floe_ring_state, &zero);
	if (!st)
		return;
	__u64 len = (__u64)ctx->data_end - ctx->data; /* what the caller counted */
	__u32 cap = cfg->drop_rate_cap;
	if (cap && !st->window_left) {
		__u64 now = bpf_ktime_get_coarse_ns();
		if (st->window_ns && now - st->window_ns < FLOE_DROP_WINDOW_NS) {
			c->drop_rec_look_jiffies = bpf_jiffies64() + 1; /* the clock moves once a jiffy */
			return; /* it rides: the next record's weight counts it */
		}
		st->window_ns = now;
		st->window_left = ((__u64)cap * (FLOE_DROP_WINDOW_NS / 1000000) + 999) / 1000;
	}
	__u64 packets, bytes;
	drop_totals(c, &packets, &bytes);
	if (st->drop_epoch != cfg->drop_epoch || packets <= st->drop_base_packets) {
		/* a new reader, or records turned on: this drop stands for itself */
		st->drop_base_packets = packets - 1;
		st->drop_base_bytes = bytes - len;
		st->drop_epoch = cfg->drop_epoch;
	}
	__u64 weight = packets - st->drop_base_packets;
	if (weight > 0xffffffff) { /* the record's weight is a u32: the rest rides, bytes go now */
		weight = 0xffffffff;
		packets = st->drop_base_packets + weight;
	}
	struct rec_args a = {.hdr = {.weight = weight, .weight_bytes = bytes - st->drop_base_bytes,
				     .len = len, .rule_id = rule_id_of(rule),
				     .verdict = FLOE_VERDICT_DROPPED},
			     .snap = snap_of(cfg)};
	if (ring_record(ctx, &a)) {
		c->ring_full++;
		st->window_left = 0; /* nobody reads: try again next window, the rest ride */
		st->drop_base_packets++; /* this frame is lost (ring_full), the others still ride */
		st->drop_base_bytes += len;
		return;
	}
	c->ring_dropped++;
	if (cap)
		st->window_left--;
	st->drop_base_packets = packets;
	st->drop_base_bytes = bytes;
	if (cfg->drop_sample_n > 1)
		c->drop_rec_skip = cfg->drop_sample_n - 1;
}

static __always_inline void record_drop(struct xdp_md *ctx, struct floe_config *cfg,
					struct floe_if_counters *c, __u32 rule)
{
	__u32 n = cfg->drop_sample_n;
	/* the window's records are spent: it rides, and the clock is read once a jiffy (jiffies
	 * is a load here, the verifier inlines it; a helper call for every drop costs ~1 ns) */
	if (!n || bpf_jiffies64() < c->drop_rec_look_jiffies)
		return;
	__u64 skip = n > 1 ? c->drop_rec_skip : 0;
	if (skip) { /* at most N - 1 to go, also when N was just lowered */
		if (skip > n - 1)
			skip = n - 1;
		c->drop_rec_skip = skip - 1;
		return;
	}
	drop_slow(ctx, cfg, c, rule);
}

/* -1, 0, 1 comparing (a, pa) with (b, pb), addresses first. */
static __always_inline int endpoint_cmp(const __u8 *a, __u16 pa, const __u8 *b, __u16 pb)
{
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	}
	if (pa != pb)
		return pa < pb ? -1 : 1;
	return 0;
}

static __always_inline void track_flow(struct pkt *p, __u32 ifindex, __u64 len,
				       struct floe_if_counters *c)
{
	struct floe_flow_key k = {};
	if (p->l3 == 4) { /* ::ffff:a.b.c.d, as the Python parser reports IPv4 */
		__builtin_memset(p->src, 0, 10);
		__builtin_memset(p->dst, 0, 10);
		p->src[10] = p->src[11] = 0xff;
		p->dst[10] = p->dst[11] = 0xff;
	}
	int ports = p->l4_ok && !p->non_first && (p->proto == PROTO_TCP || p->proto == PROTO_UDP);
	__u16 sport = ports ? p->sport : FLOE_ICMP_FLOW_PORT; /* ICMP and all portless protocols */
	__u16 dport = ports ? p->dport : FLOE_ICMP_FLOW_PORT;
	int swap = endpoint_cmp(p->src, sport, p->dst, dport) > 0;

	if (swap) {
		__builtin_memcpy(k.addr_a, p->dst, 16);
		__builtin_memcpy(k.addr_b, p->src, 16);
		k.port_a = dport;
		k.port_b = sport;
	} else {
		__builtin_memcpy(k.addr_a, p->src, 16);
		__builtin_memcpy(k.addr_b, p->dst, 16);
		k.port_a = sport;
		k.port_b = dport;
	}
	k.proto = p->proto;
	k.ip_version = p->l3;
	k.vlan = p->vlan;
	k.ifindex = ifindex;

	__u64 now = bpf_ktime_get_coarse_ns(); /* jiffy resolution; ~17 ns cheaper per frame */
	struct floe_flow_val *v = bpf_map_lookup_elem(&floe_flows, &k);
	if (!v) {
		struct floe_flow_val nv = {};
		nv.first_seen_ns = now;
		nv.last_seen_ns = now;
		nv.tcp_flags = p->tcp_flags;
		nv.initiator = swap;
		if (swap) {
			nv.packets_ba = 1;
			nv.bytes_ba = len;
		} else {
			nv.packets_ab = 1;
			nv.bytes_ab = len;
		}
		long err = bpf_map_update_elem(&floe_flows, &k, &nv, BPF_NOEXIST);
		if (err == 0)
			return;
		v = bpf_map_lookup_elem(&floe_flows, &k); /* another CPU inserted it first */
		if (!v) {
			c->flow_update_failed++;
			return;
		}
	}
	if (swap) {
		__sync_fetch_and_add(&v->packets_ba, 1);
		__sync_fetch_and_add(&v->bytes_ba, len);
	} else {
		__sync_fetch_and_add(&v->packets_ab, 1);
		__sync_fetch_and_add(&v->bytes_ab, len);
	}
	v->last_seen_ns = now;
	v->tcp_flags |= p->tcp_flags;
}

SEC("xdp")
int floe_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 len = end - data;
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 zero = 0;

	struct floe_config *cfg = bpf_map_lookup_elem(&floe_config, &zero);
	if (!cfg)
		return XDP_PASS;
	__u32 ifslot = ifindex % FLOE_MAX_IFACES;
	struct floe_if_counters *c = bpf_map_lookup_elem(&floe_counters, &ifslot);
	if (!c)
		return XDP_PASS;

	__u32 rule = FLOE_WORD_TRIE; /* undecided */
	struct ipv6hdr *ip6 = NULL;
	struct iphdr *ip = plain_v4(data, end);
	if (ip) {
		rule = cidr_fast(ip, cfg->rule_maps);
		if (rule != FLOE_WORD_TRIE &&
		    fast_drop(cfg, &c->fast_rule_tcp_packets, ip->protocol, rule, len)) {
			record_drop(ctx, cfg, c, rule);
			return XDP_DROP;
		}
	} else if ((ip6 = plain_v6(data, end))) {
		rule = cidr6_fast(ip6, cfg->rule_maps);
		if (rule != FLOE_WORD_TRIE &&
		    fast_drop(cfg, &c->fast6_rule_tcp_packets, ip6->nexthdr, rule, len)) {
			record_drop(ctx, cfg, c, rule);
			return XDP_DROP;
		}
	}
	c->packets++;
	c->bytes += len;

	struct pkt p;
	int mal = 0;
	int have_pkt = 1; /* `p` filled (the fast path leaves it alone unless needed) */
	if (ip) {
		count_plain_v4(c, ip, len);
		if (rule == FLOE_WORD_TRIE) {
			fill_plain_v4(&p, ip);
			rule = match(&p, cfg->rule_maps);
		} else {
			have_pkt = 0;
		}
	} else if (ip6) {
		count_plain_v6(c, ip6, len);
		if (rule == FLOE_WORD_TRIE) {
			fill_plain_v6(&p, ip6);
			rule = match(&p, cfg->rule_maps);
		} else {
			have_pkt = 0;
		}
	} else {
		__builtin_memset(&p, 0, sizeof(p));
		mal = parse(data, end, &p);
		if (mal)
			count_malformed(c, mal);
		else
			count_classes(c, &p, len);
		rule = match(&p, cfg->rule_maps);
	}

	if (rule) {
		count_hit(rule, len);
		if (rule & FLOE_WORD_DENY) {
			c->dropped_rule++;
			c->dropped_bytes += len;
			record_drop(ctx, cfg, c, rule);
			return XDP_DROP;
		}
	} else if (mal) {
		if (cfg->malformed_action == FLOE_ACTION_DENY) {
			c->dropped_malformed++;
			c->dropped_bytes += len;
			record_drop(ctx, cfg, c, 0);
			return XDP_DROP;
		}
	} else if (cfg->default_action == FLOE_ACTION_DENY) {
		c->dropped_default++;
		c->dropped_bytes += len;
		record_drop(ctx, cfg, c, 0);
		return XDP_DROP;
	}

	if (cfg->mode == FLOE_MODE_PASSTHROUGH) {
		record_pass(ctx, cfg, c, len, rule);
		c->passed++;
		return XDP_PASS;
	}

	if (cfg->mode == FLOE_MODE_TAP) {
		__u32 n = cfg->sample_n;
		if (n > 1 && (c->packets % n) != 0) {
			c->sampled_out++;
			c->passed++;
			return XDP_PASS;
		}
		__u32 qid = ctx->rx_queue_index;
		if (bpf_map_lookup_elem(&floe_xsks, &qid)) {
			if (bpf_redirect_map(&floe_xsks, qid, XDP_PASS) == XDP_REDIRECT) {
				c->redirected++;
				return XDP_REDIRECT;
			}
		}
		c->redirect_no_socket++;
		c->passed++;
		return XDP_PASS;
	}

	if (cfg->track_flows && !mal) {
		if (!have_pkt && ip)
			fill_plain_v4(&p, ip);
		else if (!have_pkt && ip6)
			fill_plain_v6(&p, ip6);
		if (p.l3)
			track_flow(&p, ifindex, len, c);
	}
	c->passed++;
	return XDP_PASS;
}
