// SPDX-License-Identifier: GPL-2.0
/*
 * Link layer benchmark inside the guest (needs the module): frames and
 * bytes per second from the local agent to the server end of an uplink
 * pty, directly and through one and two forwarding meters, and the CPU
 * time per forwarded frame: the system's busy time (/proc/stat) minus this
 * program's own (getrusage), i.e. the kernel workers that decode, route,
 * encode and write the frames, per frame, for 0, 1 and 2 hops. Under TCG
 * batching and emulation noise dominate these (the difference between hop
 * counts can even come out negative); bench/link_bench_codec measures the
 * codec's part of forwarding precisely on the host. Each run also checks that
 * every frame arrived once and in order.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "link_util.h"

/* enough for stable rates; 8000 could outlast the harness's 30 s on a loaded TCG host */
#define NFRAMES	3000

struct sink {
	struct lt_wire w;
	int want, got, order_errors, first;
};

static void *sink_run(void *arg)
{
	struct sink *s = arg;
	struct lt_frame f;

	while (s->got < s->want && lt_wire_recv(&s->w, &f, 5000) == 1) {
		if (s->first < 0)
			s->first = f.h.seq;
		if (f.h.seq != (u16)(s->first + s->got))
			s->order_errors++;
		s->got++;
	}
	return NULL;
}

static unsigned long long busy_ticks(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");

	if (!f)
		return 0;
	/* cpu user nice system idle iowait irq softirq steal */
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
		v[0] = 0;
	fclose(f);
	return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

struct result {
	double fps, bps, cpu_ns_per_frame, kworker_ns_per_frame;
};

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* hops forwarding nodes between the sender and the uplink. */
static int run(unsigned int hops, size_t len, struct result *r)
{
	enum { BASE = 0 };
	int links[3][2], up[2], g, ret = -1;
	static u8 p[GM_MAX_PAYLOAD];
	struct sink s = { .want = NFRAMES, .first = -1 };
	unsigned long long t0, t1, c0, c1;
	double s0, s1;
	long hz = sysconf(_SC_CLK_TCK);
	pthread_t th;

	/* nodes BASE..BASE+hops; the last one owns the uplink */
	for (unsigned int i = 0; i < hops; i++) {
		if (lt_pty(&links[i][0], &links[i][1]) || lt_attach(links[i][0]) ||
		    lt_attach(links[i][1]) ||
		    gmlink_configure(links[i][1], BASE + i, GM_ROLE_NEIGHBOUR, 1) ||
		    gmlink_configure(links[i][0], BASE + i + 1, GM_ROLE_NEIGHBOUR, 1))
			return -1;
	}
	if (lt_pty(&up[0], &up[1]) || lt_attach(up[1]) ||
	    gmlink_configure(up[1], BASE + hops, GM_ROLE_UPLINK, 1))
		return -1;
	for (unsigned int i = 1; i <= hops; i++) {
		int gi = lt_node_open(BASE + i, 900 + i, true);

		if (gi < 0)
			return -1;
		close(gi);
	}
	g = lt_node_open(BASE, 900, false);
	if (g < 0)
		return -1;
	lt_wire_init(&s.w, up[0]);
	if (pthread_create(&th, NULL, sink_run, &s))
		return -1;
	lt_fill(p, len, 7);
	c0 = busy_ticks();
	s0 = self_cpu_s();
	t0 = (unsigned long long)lt_now_ns();
	for (int i = 0; i < NFRAMES; i++)
		if (lt_send(g, GM_ID_SERVER, p, len) < 0)
			break;
	pthread_join(th, NULL);
	t1 = (unsigned long long)lt_now_ns();
	c1 = busy_ticks();
	s1 = self_cpu_s();
	if (s.got == NFRAMES && !s.order_errors) {
		double secs = (double)(t1 - t0) / 1e9;
		double busy = (double)(c1 - c0) / (double)hz;

		r->fps = NFRAMES / secs;
		r->bps = r->fps * (double)len;
		r->cpu_ns_per_frame = busy * 1e9 / NFRAMES;
		r->kworker_ns_per_frame = (busy - (s1 - s0)) * 1e9 / NFRAMES;
		ret = 0;
	}
	close(g);
	for (unsigned int i = 0; i < hops; i++) {
		close(links[i][0]);
		close(links[i][1]);
	}
	close(up[0]);
	close(up[1]);
	return ret;
}

TEST(throughput_and_forwarding_cost)
{
	const size_t sizes[] = { 64, 496 };

	ASSERT_EQ(0, lt_modprobe());
	for (size_t k = 0; k < 2; k++) {
		struct result r[3];

		for (unsigned int hops = 0; hops < 3; hops++) {
			ASSERT_EQ(0, run(hops, sizes[k], &r[hops]));
			printf("# bench: payload %3zu B, %u forwarding hop(s): %8.0f frames/s %10.0f payload B/s %8.0f ns CPU/frame (%.0f ns in kernel workers)\n",
			       sizes[k], hops, r[hops].fps, r[hops].bps,
			       r[hops].cpu_ns_per_frame,
			       r[hops].kworker_ns_per_frame);
			fflush(stdout);
		}
	}
}

TEST_HARNESS_MAIN
