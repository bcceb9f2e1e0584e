# SPDX-License-Identifier: GPL-2.0
"""The control line of a QEMU guest, as the Python tests use it.

The guest (tests/gateway/ctl-agent.sh, or the test initramfs's control
agent) connects a serial port to a socket the test listens on, prints
"@@ready", then runs each line it receives as a shell command and answers
with the output and "@@rc=N".
"""
import socket
import time


class ControlLine:
    """Run a shell command in the guest, get (rc, output)."""

    def __init__(self, who, listener, failed):
        """who: names the guest in messages; listener: the listening socket;
        failed: the exception class to raise (the test's own)."""
        self.who, self.listener, self.failed = who, listener, failed
        self.sock, self.buf = None, b""

    def accept(self, timeout):
        self.listener.settimeout(timeout)
        self.sock, _ = self.listener.accept()
        self.sock.settimeout(None)

    def line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise self.failed(f"{self.who}: no answer on the control line")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            if not data:
                raise self.failed(f"{self.who}: control line closed")
            self.buf += data
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.decode(errors="replace").rstrip("\r")

    def wait_ready(self, timeout):
        deadline = time.time() + timeout
        while self.line(deadline) != "@@ready":
            pass

    def run(self, cmd, timeout=60):
        self.sock.sendall(cmd.encode() + b"\n")
        deadline, out = time.time() + timeout, []
        while True:
            ln = self.line(deadline)
            if ln.startswith("@@rc="):
                return int(ln[5:]), "\n".join(out)
            out.append(ln)

    def close(self):
        for s in (self.sock, self.listener):
            if s:
                s.close()
