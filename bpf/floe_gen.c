// SPDX-License-Identifier: AGPL-3.0-only
/*
 * floe_gen — tiny XDP programs for traffic generation and benchmarking.
 *
 * floe_gen_tx: driven by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, every frame it
 * returns XDP_TX is transmitted out of the ctx's ingress interface (the rate generator in
 * dataplane/trafficgen.py). floe_gen_drop: the "empty XDP_DROP program" baseline that
 * bench/xdp compares floe_xdp against; floe_gen_pass: the empty XDP_PASS baseline;
 * floe_gen_read_drop: drops after reading the IPv4 source address — the least any filter
 * must do, shown beside the empty baseline so the cost of touching the packet is visible.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int floe_gen_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("xdp")
int floe_gen_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int floe_gen_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int floe_gen_read_drop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 34 > end)
		return XDP_PASS;
	return *(volatile __u32 *)(data + 26) ? XDP_DROP : XDP_PASS; /* IPv4 saddr */
}
