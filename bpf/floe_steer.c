// SPDX-License-Identifier: AGPL-3.0-only
/*
 * floe_steer — SO_REUSEPORT program (BPF_PROG_TYPE_SK_REUSEPORT) for the UDP (HTTP/3) socket
 * group of `floe serve --instances N`: every datagram of a QUIC connection reaches the
 * instance that owns the connection, whatever the client's address (connection migration,
 * NAT rebinding). The connection-ID layout is in floe_steer.h.
 *
 * Returning SK_PASS without a selection hands the datagram to the kernel's default choice (a
 * hash of the 4-tuple): used for anything that is not a QUIC packet Floe can place, and when
 * the chosen instance has no socket in floe_steer_socks (its worker is restarting). Nothing
 * is ever dropped here.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "floe_steer.h"

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, FLOE_STEER_MAX_INSTANCES);
	__type(key, __u32);
	__type(value, __u64);
} floe_steer_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct floe_steer_config);
} floe_steer_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOE_STEER_NSTATS);
	__type(key, __u32);
	__type(value, __u64);
} floe_steer_stats SEC(".maps");

static __always_inline int count(__u32 stat)
{
	__u64 *value = bpf_map_lookup_elem(&floe_steer_stats, &stat);

	if (value)
		*value += 1;
	return SK_PASS;
}

/* First byte, version, DCID length, DCID: the most a long header's DCID needs. */
#define LONG_PREFIX (1 + 4 + 1 + FLOE_QUIC_MAX_CID_LEN)

SEC("sk_reuseport")
int floe_steer(struct sk_reuseport_md *md)
{
	__u8 head[LONG_PREFIX] = {};
	__u32 zero = 0, index, instances;
	struct floe_steer_config *config = bpf_map_lookup_elem(&floe_steer_cfg, &zero);

	if (!config)
		return count(FLOE_STEER_DEFAULT);
	instances = config->instances;
	if (instances == 0 || instances > FLOE_STEER_MAX_INSTANCES)
		return count(FLOE_STEER_DEFAULT);
	if (bpf_skb_load_bytes(md, FLOE_UDP_HLEN, head, 1 + FLOE_QUIC_CID_LEN))
		return count(FLOE_STEER_DEFAULT);
	if (!(head[0] & 0x80)) { /* short header: DCID at byte 1, Floe's fixed length */
		index = head[1];
		if (index >= instances)
			return count(FLOE_STEER_DEFAULT);
		if (bpf_sk_select_reuseport(md, &floe_steer_socks, &index, 0))
			return count(FLOE_STEER_NO_SOCKET);
		return count(FLOE_STEER_BY_CID);
	}
	/* Long header: every valid one is longer than LONG_PREFIX (AEAD tag alone is 16). */
	if (bpf_skb_load_bytes(md, FLOE_UDP_HLEN, head, sizeof(head)))
		return count(FLOE_STEER_DEFAULT);
	__u32 length = head[5], hash = FLOE_FNV_OFFSET;

	if (length > FLOE_QUIC_MAX_CID_LEN)
		return count(FLOE_STEER_DEFAULT);
	for (__u32 i = 0; i < FLOE_QUIC_MAX_CID_LEN; i++) {
		if (i >= length)
			break;
		hash = (hash ^ head[6 + i]) * FLOE_FNV_PRIME;
	}
	index = hash % instances;
	if (bpf_sk_select_reuseport(md, &floe_steer_socks, &index, 0))
		return count(FLOE_STEER_NO_SOCKET);
	return count(FLOE_STEER_BY_HASH);
}

char LICENSE[] SEC("license") = "GPL";
