// SPDX-License-Identifier: GPL-2.0
/* A serial line opened raw at a given speed (serial_line.h). */
#include "serial_line.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static speed_t speed_of(uint32_t baud)
{
	switch (baud) {
	case 9600: return B9600;
	case 19200: return B19200;
	case 38400: return B38400;
	case 57600: return B57600;
	case 230400: return B230400;
	case 460800: return B460800;
	default: return B115200;
	}
}

int serial_line_open(const char *dev, uint32_t baud, char *err, size_t errlen)
{
	struct termios t;
	int fd = open(dev, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", dev, strerror(errno));
		return -1;
	}
	if (tcgetattr(fd, &t)) {
		snprintf(err, errlen, "%s: not a serial line: %s", dev, strerror(errno));
		close(fd);
		return -1;
	}
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
	t.c_cflag &= ~(tcflag_t)CRTSCTS;
	cfsetispeed(&t, speed_of(baud));
	cfsetospeed(&t, speed_of(baud));
	if (tcsetattr(fd, TCSANOW, &t)) {
		snprintf(err, errlen, "%s: setting %u baud: %s", dev, baud, strerror(errno));
		close(fd);
		return -1;
	}
	tcflush(fd, TCIOFLUSH);
	return fd;
}
