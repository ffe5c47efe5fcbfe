/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * floe_steer.h — the layout shared by bpf/floe_steer.c (the control plane's SO_REUSEPORT
 * program for `floe serve --instances N`) and app/serving/steering.py, which mirrors every
 * #define and enum here (tests/unit/serving/test_steering_layout.py compares them).
 *
 * Kept apart from floe_kern_user.h, the dataplane's pinned-map contract: this program pins
 * nothing, lives only as long as the `floe serve` supervisor and its sockets, and a change here
 * never touches a dataplane pin.
 *
 * Connection-ID layout (docs/adr/0009-instances-and-quic-steering.md). Every connection ID
 * Floe's QUIC server chooses is FLOE_QUIC_CID_LEN bytes:
 *
 *   byte 0        the instance index, 0..N-1 (N <= FLOE_STEER_MAX_INSTANCES)
 *   bytes 1..7    random (os.urandom)
 *
 * Short-header (1-RTT) packets carry such a CID right after their first byte: the program
 * steers them to socket[byte 0]. Long-header packets (Initial, 0-RTT, Handshake) carry either
 * the client's own first DCID or the server's first CID (sequence 0); both are steered to
 * socket[fnv1a(DCID) % N]. The server picks its sequence-0 CID so that this hash names its own
 * instance too (byte 0 == index and fnv1a % N == index: N random draws on average), so every
 * long-header packet of a handshake reaches the same instance.
 */
#ifndef FLOE_STEER_H
#define FLOE_STEER_H

#define FLOE_STEER_MAX_INSTANCES 64         /* floe serve --instances 1..64 */
#define FLOE_QUIC_CID_LEN        8          /* Floe's server CIDs (hypercorn parses 8) */
#define FLOE_QUIC_MAX_CID_LEN    20         /* RFC 9000: a DCID longer than this is not QUIC v1/v2 */
#define FLOE_UDP_HLEN            8          /* the program sees the datagram from its UDP header */
#define FLOE_FNV_OFFSET          2166136261u /* FNV-1a, 32 bit */
#define FLOE_FNV_PRIME           16777619u

/* floe_steer_cfg[0]: written once by the supervisor after loading. */
struct floe_steer_config {
	__u32 instances; /* N; 0 (not yet written) means: leave every choice to the kernel */
};

/* floe_steer_stats: per-CPU counters, one per way a datagram was placed. */
enum floe_steer_stat {
	FLOE_STEER_BY_CID = 0,    /* short header: socket[DCID byte 0] */
	FLOE_STEER_BY_HASH = 1,   /* long header: socket[fnv1a(DCID) % N] */
	FLOE_STEER_DEFAULT = 2,   /* not parseable, or byte 0 >= N: the kernel's own hash */
	FLOE_STEER_NO_SOCKET = 3, /* that instance has no socket (restarting): the kernel's hash */
	FLOE_STEER_NSTATS = 4,
};

#endif /* FLOE_STEER_H */
