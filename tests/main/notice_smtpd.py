#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A real SMTP server (aiosmtpd) on loopback for the notice tests
(Documentation/notices.md "Tests").

    notice_smtpd.py --dir DIR [--port N] [--stall-first] [--rcpt-code CODE]

Prints the port it listens on (127.0.0.1), then serves until stdin closes.
Every message accepted is kept as DIR/N.eml (as received) and DIR/N.txt:
the envelope, the headers decoded, one "attachment: NAME TYPE BYTES" line
per attachment (saved as DIR/N-NAME), a blank line, the text/plain body
decoded. --stall-first: the first RCPT TO is answered only after 60 s (the
file DIR/stalled appears when it starts waiting). --rcpt-code: every RCPT
TO is refused with CODE (e.g. 451 or 550).
"""
import argparse
import asyncio
import email
import email.policy
import os
import socket
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, out, stall_first, rcpt_code):
        self.out, self.stall, self.code = out, stall_first, rcpt_code
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.code:
            return f"{self.code} {'4.3.0 try again later' if self.code < 500 else '5.1.1 no such user'}"
        if self.stall:
            self.stall = False
            open(os.path.join(self.out, "stalled"), "w").close()
            await asyncio.sleep(60)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.out, str(self.n))
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        lines = [f"mail-from: {envelope.mail_from}"]
        lines += [f"rcpt-to: {r}" for r in envelope.rcpt_tos]
        for h in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version"):
            if msg[h] is not None:
                lines.append(f"{h}: {msg[h]}")
        lines.append(f"Content-Type: {msg.get_content_type()}")
        for part in msg.iter_attachments():
            data = part.get_content()
            name = os.path.basename(part.get_filename() or "attachment")
            with open(f"{base}-{name}", "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode())
            lines.append(f"attachment: {name} {part.get_content_type()} {len(data)}")
        body = msg.get_body(preferencelist=("plain",))
        # line breaks are CRLF on the wire (RFC 5322): as \n here
        text = body.get_content().replace("\r\n", "\n") if body is not None else ""
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        with open(base + ".tmp", "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n\n" + text)
        os.rename(base + ".tmp", base + ".txt")
        return "250 2.0.0 accepted"


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--stall-first", action="store_true")
    ap.add_argument("--rcpt-code", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", a.port))
    handler = Handler(a.dir, a.stall_first, a.rcpt_code)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="notice-test", decode_data=False), sock=sock)
    os.write(1, f"{sock.getsockname()[1]}\n".encode())  # one write: the reader may go
    stdin_closed = loop.create_future()

    def on_stdin():
        if not sys.stdin.buffer.read1(4096):
            if not stdin_closed.done():
                stdin_closed.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    await stdin_closed
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
