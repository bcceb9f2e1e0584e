/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A serial line opened raw at a given speed: the modem's line, used by
 * meterd's uplink (agent/uplink/town_uplink.c) and by gridmeter-setup's
 * modem check (agent/setup/modem.c).
 */
#ifndef GRIDMETER_SERIAL_LINE_H
#define GRIDMETER_SERIAL_LINE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Open DEV read-write, non-blocking, close-on-exec and not as the
 * controlling terminal; raw 8N1 at BAUD (9600, 19200, 38400, 57600, 115200,
 * 230400 or 460800; any other is taken as 115200), receiver on, modem
 * control lines and RTS/CTS flow control ignored, both queues flushed.
 * Returns the descriptor, or -1 with "DEV: why" in ERR.
 */
int serial_line_open(const char *dev, uint32_t baud, char *err, size_t errlen);

#endif
