/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A raw-socket HTTP/1.1 client for the lib/web tests: sends bytes exactly
 * as given (so malformed requests can be sent) and reads the answer until
 * the server closes or a complete response has arrived.
 */
#ifndef GM_TEST_WEB_CLIENT_H
#define GM_TEST_WEB_CLIENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct wc_resp {
	int status;
	char head[8192];	/* status line and headers, NUL-terminated */
	char *body;		/* malloc'd, NUL-terminated (chunked encoding undone) */
	size_t body_len;
	size_t raw_len;		/* bytes received in all */
};

static inline int wc_connect(unsigned int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* A connection to 127.0.0.1:port from the source address src (all of 127/8 is loopback). */
static inline int wc_connect_from(const char *src, unsigned int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct sockaddr_in b = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || inet_pton(AF_INET, src, &b.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&b, sizeof(b)) || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static inline int wc_send(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The header's value (first match, case-insensitive name) into out; 0 or -1. */
static inline int wc_header(const struct wc_resp *r, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);

	for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *l = p + 2, *e = strstr(l, "\r\n");

		if (!strncasecmp(l, name, nl) && l[nl] == ':') {
			const char *v = l + nl + 1;
			size_t len;

			while (*v == ' ')
				v++;
			len = e ? (size_t)(e - v) : strlen(v);
			if (len >= size)
				return -1;
			memcpy(out, v, len);
			out[len] = '\0';
			return 0;
		}
	}
	return -1;
}

/* Number of header lines called name. */
static inline int wc_header_count(const struct wc_resp *r, const char *name)
{
	size_t nl = strlen(name);
	int n = 0;

	for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n"))
		if (!strncasecmp(p + 2, name, nl) && p[2 + nl] == ':')
			n++;
	return n;
}

/* Reads one response from fd (timeout_ms per read). 0, or -1 when nothing parseable arrived. */
static inline int wc_read(int fd, struct wc_resp *r, int timeout_ms)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	char *hend, *body;
	char v[64];
	long clen = -1;

	memset(r, 0, sizeof(*r));
	if (!buf)
		return -1;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		buf[len] = '\0';
		hend = strstr(buf, "\r\n\r\n");
		if (hend) {
			size_t hl = (size_t)(hend - buf) + 4;

			if (hl < sizeof(r->head)) {
				memcpy(r->head, buf, hl - 2);
				r->head[hl - 2] = '\0';
			}
			if (!wc_header(r, "Content-Length", v, sizeof(v)))
				clen = atol(v);
			if (clen >= 0 && len >= hl + (size_t)clen)
				break;
			if (!strncmp(buf, "HTTP/1.1 304", 12) && clen < 0)
				break;
			if (!wc_header(r, "Transfer-Encoding", v, sizeof(v)) && strstr(buf + hl, "\r\n0\r\n\r\n"))
				break;
		}
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	r->raw_len = len;
	hend = strstr(buf, "\r\n\r\n");
	if (!hend || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
		free(buf);
		return -1;
	}
	if ((size_t)(hend - buf) + 2 < sizeof(r->head)) {
		memcpy(r->head, buf, (size_t)(hend - buf) + 2);
		r->head[hend - buf + 2] = '\0';
	}
	body = hend + 4;
	r->body = malloc(len + 1);
	if (!wc_header(r, "Transfer-Encoding", v, sizeof(v)) && !strcasecmp(v, "chunked")) {
		const char *p = body;

		while (p < buf + len) {
			char *e;
			unsigned long n = strtoul(p, &e, 16);

			if (e == p || !(e = strstr(e, "\r\n")) || !n)
				break;
			e += 2;
			if (e + n > buf + len)
				n = (unsigned long)(buf + len - e);
			memcpy(r->body + r->body_len, e, n);
			r->body_len += n;
			p = e + n + 2;
		}
	} else {
		r->body_len = (size_t)(buf + len - body);
		if (clen >= 0 && (size_t)clen < r->body_len)
			r->body_len = (size_t)clen;
		memcpy(r->body, body, r->body_len);
	}
	r->body[r->body_len] = '\0';
	free(buf);
	return 0;
}

/*
 * One request on its own connection: the raw bytes, then the response.
 * A connection closed before a single byte came back is made again (for
 * up to 2 s): that is the server's per-address limit, which counts a
 * closed connection until the server has reaped its thread, later than
 * the client sees it closed; a loaded machine making requests one after
 * another from 127.0.0.1 met it (every_asset_served, seen once). The
 * tests of the limit itself do not come through here.
 */
static inline int wc_request(unsigned int port, const char *raw, size_t len, struct wc_resp *r)
{
	int rc = -1;

	for (int tries = 0; tries < 100; tries++) {
		int fd = wc_connect(port);

		if (fd < 0)
			return -1;
		memset(r, 0, sizeof(*r));
		rc = wc_send(fd, raw, len);
		if (!rc)
			rc = wc_read(fd, r, 30000);	/* generous: a loaded machine */
		close(fd);
		if (!rc || r->raw_len)
			break;
		usleep(20000);
	}
	return rc;
}

static inline int wc_get(unsigned int port, const char *path, const char *extra, struct wc_resp *r)
{
	char req[4096];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n%sConnection: close\r\n\r\n",
			 path, extra ? extra : "");

	return wc_request(port, req, (size_t)n, r);
}

static inline void wc_free(struct wc_resp *r)
{
	free(r->body);
	r->body = NULL;
}

#endif
