// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Reference programs for bench/xdp: the least a CIDR filter that counts can do per frame,
 * to show where the floor is on this generator. Not Floe's program (bpf/floe_xdp.c): no VLAN,
 * IPv6, malformed-frame accounting, other rule kinds, tap/inline modes or config.
 *
 *   floor_lookup: untagged IPv4 TCP/UDP check + DIR-16-8-8 source index read → XDP_DROP
 *   floor_count:  the same + the rule's hit counter + one fast-path (packets, bytes) pair, as
 *                 floe_xdp counts a deny hit since 2026-11-26
 *   floor_count7: the same + the rule's hit counter + the seven interface counters a deny hit
 *                 updated in floe_xdp before that (packets, bytes, ipv4, udp/tcp, dropped_rule)
 *
 * The index levels are globals (direct addresses, no map lookups); bench_xdp.py fills them.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "floe_kern_user.h"

char LICENSE[] SEC("license") = "GPL";

struct floe_dir_l1 floor_l1 SEC(".bss.floor_l1");
struct floe_dir_l2 floor_l2 SEC(".bss.floor_l2");
struct floe_dir_l3 floor_l3 SEC(".bss.floor_l3");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct floe_if_counters);
} floor_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOE_MAX_RULES);
	__type(key, __u32);
	__type(value, struct floe_rule_hits);
} floor_hits SEC(".maps");

static __always_inline struct iphdr *plain_v4(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *t = (void *)(ip + 1);
	if ((void *)(t + 1) > end || eth->h_proto != bpf_htons(0x0800) ||
	    ((__u8 *)ip)[0] != 0x45 || (ip->frag_off & bpf_htons(0x3fff)))
		return NULL;
	__u32 total = bpf_ntohs(ip->tot_len);
	if (total < sizeof(*ip) || (void *)ip + total > end)
		return NULL;
	if (ip->protocol == 6 ? t->doff < 5 : ip->protocol != 17)
		return NULL;
	return ip;
}

static __always_inline __u32 index_v4(__be32 addr)
{
	__u32 a = bpf_ntohl(addr);
	__u32 w = floor_l1.w[a >> 16];
	if (w & FLOE_WORD_CHILD) {
		w = floor_l2.w[((w & (FLOE_DIR_L2_BLOCKS - 1)) << 8) | ((a >> 8) & 0xff)];
		if (w & FLOE_WORD_CHILD)
			w = floor_l3.w[((w & (FLOE_DIR_L3_BLOCKS - 1)) << 8) | (a & 0xff)];
	}
	return w;
}

static __always_inline int floor(struct xdp_md *ctx, int count)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 len = end - data;
	struct iphdr *ip = plain_v4(data, end);
	if (!ip)
		return XDP_PASS;
	__u32 w = index_v4(ip->saddr);
	if (!(w & FLOE_WORD_DENY))
		return XDP_PASS;
	if (count) {
		__u32 slot = (w & FLOE_WORD_SLOT) - 1, zero = 0;
		struct floe_rule_hits *h = bpf_map_lookup_elem(&floor_hits, &slot);
		if (h) {
			h->packets++;
			h->bytes += len;
		}
		struct floe_if_counters *c = bpf_map_lookup_elem(&floor_counters, &zero);
		if (c && count == 2) {
			__u64 *pair = &c->fast_rule_tcp_packets + (ip->protocol == 17 ? 2 : 0);
			pair[0]++;
			pair[1] += len;
		} else if (c) {
			c->packets++;
			c->bytes += len;
			c->ipv4_packets++;
			c->ipv4_bytes += len;
			if (ip->protocol == 6) {
				c->tcp_packets++;
				c->tcp_bytes += len;
			} else {
				c->udp_packets++;
				c->udp_bytes += len;
			}
			c->dropped_rule++;
		}
	}
	return XDP_DROP;
}

SEC("xdp")
int floor_lookup(struct xdp_md *ctx)
{
	return floor(ctx, 0);
}

SEC("xdp")
int floor_count(struct xdp_md *ctx)
{
	return floor(ctx, 2);
}

SEC("xdp")
int floor_count7(struct xdp_md *ctx)
{
	return floor(ctx, 1);
}
