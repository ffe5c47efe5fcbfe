// Minimal AF_XDP rx-drop consumer (libxdp), the baseline for the Python tap pipeline.
// One socket per RX queue, copy mode, registered into the pinned XSKMAP of floe_xdp; counts
// frames, returns chunks to the fill ring, and exits after SECONDS, printing
// "received <n> fill_empty <n> dropped <n> cpu_s <seconds>".
// Build: cc -O2 -o xsk_rxdrop xsk_rxdrop.c -lxdp -lbpf
// Usage: xsk_rxdrop IFNAME XSKMAP_PIN SECONDS QUEUE [QUEUE...]
#include <errno.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <xdp/xsk.h>

#define NFRAMES 16384 // same depth as the Python source (AfXdpSource default)
#define FRAME_SIZE 2048
#define BATCH 256
#define MAXQ 64

struct q {
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fq;
	struct xsk_ring_cons cq, rx;
	void *area;
};

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s IFNAME XSKMAP_PIN SECONDS QUEUE...\n", argv[0]);
		return 2;
	}
	const char *ifname = argv[1];
	int map_fd = bpf_obj_get(argv[2]);
	if (map_fd < 0) {
		perror("bpf_obj_get");
		return 1;
	}
	double seconds = atof(argv[3]);
	int nq = argc - 4;
	if (nq > MAXQ)
		nq = MAXQ;
	struct q qs[MAXQ];
	struct pollfd pfd[MAXQ];
	memset(qs, 0, sizeof(qs));
	for (int i = 0; i < nq; i++) {
		__u32 queue = atoi(argv[4 + i]);
		struct q *q = &qs[i];
		q->area = mmap(NULL, (size_t)NFRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct xsk_umem_config ucfg = {.fill_size = NFRAMES, .comp_size = NFRAMES,
					       .frame_size = FRAME_SIZE, .frame_headroom = 0};
		int err = xsk_umem__create(&q->umem, q->area, (size_t)NFRAMES * FRAME_SIZE, &q->fq,
					   &q->cq, &ucfg);
		if (err) {
			fprintf(stderr, "xsk_umem__create: %s\n", strerror(-err));
			return 1;
		}
		struct xsk_socket_config cfg = {.rx_size = NFRAMES, .tx_size = 0,
						.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
						.bind_flags = XDP_COPY};
		err = xsk_socket__create(&q->xsk, ifname, queue, q->umem, &q->rx, NULL, &cfg);
		if (err) {
			fprintf(stderr, "xsk_socket__create: %s\n", strerror(-err));
			return 1;
		}
		int fd = xsk_socket__fd(q->xsk);
		if (bpf_map_update_elem(map_fd, &queue, &fd, 0)) {
			perror("xskmap update");
			return 1;
		}
		__u32 idx = 0;
		xsk_ring_prod__reserve(&q->fq, NFRAMES, &idx);
		for (int f = 0; f < NFRAMES; f++)
			*xsk_ring_prod__fill_addr(&q->fq, idx++) = (__u64)f * FRAME_SIZE;
		xsk_ring_prod__submit(&q->fq, NFRAMES);
		pfd[i].fd = fd;
		pfd[i].events = POLLIN;
	}
	printf("ready\n");
	fflush(stdout);
	unsigned long long received = 0;
	double cpu0 = cpu_seconds();
	double end = now() + seconds;
	while (now() < end) {
		int got = 0;
		for (int i = 0; i < nq; i++) {
			struct q *q = &qs[i];
			__u32 idx_rx, idx_fq;
			unsigned int n = xsk_ring_cons__peek(&q->rx, BATCH, &idx_rx);
			if (!n)
				continue;
			got += n;
			while (xsk_ring_prod__reserve(&q->fq, n, &idx_fq) != n)
				;
			for (unsigned int k = 0; k < n; k++) {
				__u64 addr = xsk_ring_cons__rx_desc(&q->rx, idx_rx++)->addr;
				*xsk_ring_prod__fill_addr(&q->fq, idx_fq++) = xsk_umem__extract_addr(addr);
			}
			xsk_ring_prod__submit(&q->fq, n);
			xsk_ring_cons__release(&q->rx, n);
			received += n;
		}
		if (!got)
			poll(pfd, nq, 1);
	}
	double cpu = cpu_seconds() - cpu0;
	unsigned long long fill_empty = 0, dropped = 0;
	for (int i = 0; i < nq; i++) {
		struct xdp_statistics st;
		socklen_t len = sizeof(st);
		if (!getsockopt(xsk_socket__fd(qs[i].xsk), SOL_XDP, XDP_STATISTICS, &st, &len)) {
			fill_empty += st.rx_fill_ring_empty_descs;
			dropped += st.rx_dropped + st.rx_ring_full;
		}
		__u32 queue = atoi(argv[4 + i]);
		bpf_map_delete_elem(map_fd, &queue);
		xsk_socket__delete(qs[i].xsk);
		xsk_umem__delete(qs[i].umem);
	}
	printf("received %llu fill_empty %llu dropped %llu cpu_s %.3f\n", received, fill_empty,
	       dropped, cpu);
	return 0;
}
