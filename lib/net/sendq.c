// SPDX-License-Identifier: GPL-2.0
/* The unsent bytes of a non-blocking stream socket (sendq.h). */
#include "sendq.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

int gm_sendq_drain(int fd, uint8_t *buf, size_t *len)
{
	size_t done = 0;
	int rc = 0;

	while (done < *len) {
		ssize_t w = send(fd, buf + done, *len - done, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				rc = -1;
			break;
		}
		done += (size_t)w;
	}
	if (done) {
		memmove(buf, buf + done, *len - done);
		*len -= done;
	}
	return rc;
}
