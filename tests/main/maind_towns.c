// SPDX-License-Identifier: GPL-2.0
/* maind in a child process and towns as gmpc clients over TCP (maind_towns.h). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "maind_net.h"
#include "maind_towns.h"
#include "pg_scratch.h"

int loopback_listen(int *fd, uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof(a)) || listen(*fd, 16) ||
	    getsockname(*fd, (struct sockaddr *)&a, &al))
		return -1;
	*port = ntohs(a.sin_port);
	return 0;
}

pid_t maind_child(const struct maind_config *cfg, int *lfd)
{
	pid_t pid = fork();

	if (pid == 0) {
		char err[768];
		int rc = maind_run(cfg, lfd, 1, err, sizeof(err));

		if (rc)
			fprintf(stderr, "maind_run: %s\n", err);
		_exit(rc ? 1 : 0);
	}
	return pid;
}

void maind_child_kill(pid_t *pid, int sig)
{
	if (*pid > 0) {
		kill(*pid, sig);
		waitpid(*pid, NULL, 0);
		*pid = 0;
	}
}

int tcp_town_send(void *ctx, unsigned int flags, const uint8_t *payload, size_t len)
{
	struct tcp_town *t = ctx;
	struct gm_hdr h = { GM_VERSION, GM_TYPE_DATA, (u8)flags, 8, t->id, GM_ID_SERVER,
			    t->fseq++ };
	uint8_t wire[GM_MAX_WIRE];
	int n = gm_frame_encode(&h, payload, len, wire, sizeof(wire));
	size_t off = 0;

	if (t->fd < 0)
		return -EAGAIN;
	if (n < 0)
		return -EINVAL;
	while (off < (size_t)n) {
		ssize_t k = send(t->fd, wire + off, (size_t)n - off, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { t->fd, POLLOUT, 0 };

				poll(&p, 1, 100);
				continue;
			}
			close(t->fd);
			t->fd = -1;
			return 0;	/* sent and lost: the ack timeout resends */
		}
		off += (size_t)k;
	}
	return 0;
}

void tcp_town_config(struct gmpc_config *cfg, const struct tcp_town *t, const uint8_t *main_pk)
{
	gmpc_config_defaults(cfg);
	cfg->meter_id = t->id;
	cfg->key = t->kp;
	memcpy(cfg->town_pk, main_pk, GMP_KEY_LEN);
	cfg->ack_timeout_ms = 1500;
	cfg->hello_retry_ms = 200;
	cfg->hello_retry_max_ms = 1000;
	cfg->rehello_min_ms = 200;
}

void tcp_town_close(struct tcp_town *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	gmpc_free(&t->c);
	outbox_close(&t->ob);
}

static void town_connect(struct tcp_town *t, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	t->fd = fd;
	gm_rx_init(&t->rx);
	gmpc_route_changed(&t->c, mono_ms());	/* a new route: a new handshake */
}

static void town_read(struct tcp_town *t)
{
	uint8_t buf[8192];
	ssize_t n = recv(t->fd, buf, sizeof(buf), 0);

	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			close(t->fd);
			t->fd = -1;
		}
		return;
	}
	for (size_t off = 0; off < (size_t)n;) {
		enum gm_rx_status st;

		off += gm_rx_feed(&t->rx, buf + off, (size_t)n - off, &st);
		if (st == GM_RX_FRAME && t->rx.hdr.dst == t->id)
			gmpc_input(&t->c, t->rx.hdr.type, t->rx.hdr.flags, t->rx.payload,
				   t->rx.payload_len, mono_ms(), real_ms());
	}
}

void tcp_towns_step(struct tcp_town *const *t, int n, uint16_t port)
{
	struct pollfd p[TCP_TOWNS_MAX];

	if (n > TCP_TOWNS_MAX)
		n = TCP_TOWNS_MAX;
	for (int i = 0; i < n; i++) {
		if (t[i]->fd < 0)
			town_connect(t[i], port);
		gmpc_tick(&t[i]->c, mono_ms());
		gmpc_pump(&t[i]->c, mono_ms(), real_ms());
		p[i] = (struct pollfd){ t[i]->fd, POLLIN, 0 };
	}
	poll(p, (nfds_t)n, 20);
	for (int i = 0; i < n; i++)
		if (t[i]->fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
			town_read(t[i]);
}
