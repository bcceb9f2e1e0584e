# SPDX-License-Identifier: GPL-2.0
"""The host side of the uplink end-to-end test (tests/uplink/e2e.py): the
A-B serial line relay, the recording proxies in front of townd, the guests'
control lines, sim900sim, townd and its database, KTAP output."""
import base64
import glob
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from ctl_line import ControlLine  # noqa: E402
from e2e_records import LOST, Failed, outbox_records  # noqa: E402

TOP = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(TOP, "build", "x86_64")
BIN = os.path.join(OUT, "bin")
W = os.path.join(OUT, "uplink-e2e")


def log(msg):
    print("# " + msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listen_unix(path):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return s


class Relay:
    """The serial line between A and B: bytes pass through and are recorded."""

    def __init__(self, la, lb, cap_ab, cap_ba):
        self.la, self.lb = la, lb
        self.caps = (open(cap_ab, "wb"), open(cap_ba, "wb"))
        self.lock = threading.Lock()
        threading.Thread(target=self.run, daemon=True).start()

    def pump(self, src, dst, cap):
        while True:
            try:
                data = src.recv(4096)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                cap.write(data)
                cap.flush()
            try:
                dst.sendall(data)
            except OSError:
                return

    def run(self):
        a, _ = self.la.accept()
        b, _ = self.lb.accept()
        threading.Thread(target=self.pump, args=(a, b, self.caps[0]), daemon=True).start()
        threading.Thread(target=self.pump, args=(b, a, self.caps[1]), daemon=True).start()


class Proxy:
    """A recording TCP proxy in front of townd, one per path to it.

    Each connection gets a connection to townd of its own; the bytes of
    each direction are forwarded and appended to a capture file of that
    connection (tcp-NAME-N-up.bin, tcp-NAME-N-down.bin). While townd is
    stopped the proxy does not listen either, so that a modem's connection
    is refused as it would be by the town server's host. inject() writes a
    frame to the meter on the newest connection, between two frames of
    townd's, and records it in that connection's capture."""

    def __init__(self, name, town_port):
        self.name, self.town_port = name, town_port
        self.ls, self.conns, self.n = None, [], 0
        self.lock = threading.Lock()
        self.port = 0
        self.listen()

    def listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        self.port = s.getsockname()[1]
        s.listen(16)
        self.ls = s
        threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def close(self):
        """townd stops: refuse connections, close the open ones."""
        s, self.ls = self.ls, None
        if s:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        with self.lock:
            for c in self.conns:
                for sk in (c["client"], c["town"]):
                    try:
                        sk.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def serve(self, ls):
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                town = socket.create_connection(("127.0.0.1", self.town_port), timeout=5)
                town.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.n += 1
                base = os.path.join(W, f"tcp-{self.name}-{self.n}")
                c = {"client": client, "town": town, "open": True, "boundary": True,
                     "up": open(base + "-up.bin", "wb"), "down": open(base + "-down.bin", "wb")}
                self.conns.append(c)
            threading.Thread(target=self.pump, args=(c, client, town, c["up"], False),
                             daemon=True).start()
            threading.Thread(target=self.pump, args=(c, town, client, c["down"], True),
                             daemon=True).start()

    def pump(self, c, src, dst, cap, down):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with self.lock:
                if not data:
                    c["open"] = False
                    for sk in (src, dst):
                        try:
                            sk.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                    return
                cap.write(data)
                cap.flush()
                try:
                    dst.sendall(data)
                except OSError:
                    pass
                if down:
                    # a link frame ends with 0x00: after one, a frame can go in between
                    c["boundary"] = data[-1] == 0

    def inject(self, frame, timeout=10):
        """Write a link frame (bytes) to the meter on the newest open connection."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                live = [c for c in self.conns if c["open"]]
                if live and live[-1]["boundary"]:
                    c = live[-1]
                    c["client"].sendall(frame)
                    c["down"].write(frame)
                    c["down"].flush()
                    return self.conns.index(c) + 1
            time.sleep(0.05)
        raise Failed(f"proxy {self.name}: no open connection to inject into")


def captures():
    """Every capture file: the A <-> B line and every TCP connection to townd."""
    return sorted(glob.glob(os.path.join(W, "line-*.bin")) +
                  glob.glob(os.path.join(W, "tcp-*.bin")))


class Guest(ControlLine):
    """A guest's control line: run a shell command, get (rc, output)."""

    def __init__(self, name, listener):
        super().__init__(f"guest {name}", listener, Failed)
        self.name = name

    def prop(self, name):
        rc, out = self.run("busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 "
                           f"org.gridmeter.Uplink1 {name}")
        if rc:
            raise Failed(f"guest {self.name}: {name}: {out}")
        sig, _, val = out.strip().partition(" ")
        return val.strip('"') if sig == "s" else int(val) if sig in "qutxi" else val

    def mprop(self, name):
        """An org.gridmeter.Meter1 property: str, int, bool, or the raw text."""
        rc, out = self.run("busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 "
                           f"org.gridmeter.Meter1 {name}")
        if rc:
            raise Failed(f"guest {self.name}: {name}: {out}")
        sig, _, val = out.strip().partition(" ")
        if sig == "s":
            return val.strip('"')
        if sig == "b":
            return val == "true"
        if sig == "a{sv}":      # a dictionary of strings: {key: value}
            w = shlex.split(val)[1:]
            return {w[i]: w[i + 2] for i in range(0, len(w) - 2, 3)}
        return int(val) if sig in "qutxi" else out.strip()

    def counters(self):
        rc, out = self.run("busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 "
                           "org.gridmeter.Uplink1 Counters")
        words = out.split()
        return {words[i].strip('"'): int(words[i + 1]) for i in range(2, len(words) - 1, 2)}

    def outbox(self):
        """seq -> row of every record in meterd's outbox on this guest."""
        rc, out = self.run("cd /var/lib/gridmeter/outbox && tar -czf - seg-*.log | base64",
                           timeout=120)
        if rc:
            raise Failed(f"guest {self.name}: reading the outbox: {out[-300:]}")
        return outbox_records(base64.b64decode("".join(out.split())))

    def meterd_stop(self, sig):
        rc, out = self.run(f"kill -{sig} $(pidof meterd); i=0; "
                           "while pidof meterd >/dev/null && [ $i -lt 200 ]; do "
                           "sleep 0.1; i=$((i + 1)); done; ! pidof meterd")
        if rc:
            raise Failed(f"guest {self.name}: meterd did not stop on SIG{sig}: {out}")

    def meterd_start(self):
        rc, out = self.run("/run/gm-meterd", timeout=90)
        if rc:
            raise Failed(f"guest {self.name}: meterd did not start again: {out}")


class Sim:
    """sim900sim: its control commands on stdin, answers on stdout."""

    def __init__(self, name, sock, logf):
        self.name = name
        self.p = subprocess.Popen([os.path.join(BIN, "sim900sim"), "--unix", sock,
                                   "--guard-ms", "100"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=logf, text=True, bufsize=1)

    def ctl(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        ans = self.p.stdout.readline().strip()
        if ans.startswith("error"):
            raise Failed(f"sim900sim {self.name}: {cmd}: {ans}")
        return ans

    def stats(self):
        w = self.ctl("stats").split()
        return {w[i]: int(w[i + 1]) for i in range(0, len(w) - 1, 2)}


class Town:
    def __init__(self, port):
        self.port, self.p = port, None
        self.proxies = []
        self.conf = os.path.join(W, "townd.conf")
        with open(self.conf, "w") as f:
            f.write(f"[server]\nlisten = 127.0.0.1:{port}\n"
                    f"database = {W}/town.db\nkey_file = {W}/townd.key\n")
        self.ctl("init-key")

    def ctl(self, *args):
        r = subprocess.run([os.path.join(BIN, "townctl"), "-c", self.conf, *args],
                           capture_output=True, text=True)
        if r.returncode:
            raise Failed(f"townctl {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def start(self):
        self.logf = open(os.path.join(W, "townd.log"), "a")
        self.p = subprocess.Popen([os.path.join(BIN, "townd"), "-c", self.conf],
                                  stdout=self.logf, stderr=self.logf)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                for p in self.proxies:
                    if not p.ls:
                        p.listen()
                return
            except OSError:
                time.sleep(0.1)
        raise Failed("townd did not start listening")

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            self.p.wait(20)
        self.p = None
        for p in self.proxies:
            p.close()

    def q(self, sql, *args):
        db = sqlite3.connect(f"file:{W}/town.db?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def records(self, meter):
        """(table, rowid, seq) of every stored record of the meter (not lost ranges)."""
        rows = [("readings", r, s) for r, s in
                self.q("SELECT rowid, seq FROM readings WHERE meter = ?", meter)]
        rows += [("events", r, s) for r, s in
                 self.q("SELECT rowid, seq FROM events WHERE meter = ? AND type != ?",
                        meter, LOST)]
        return rows

    def rows(self, meter):
        """seq -> the row townd stored, as record_row() gives it."""
        out = {s: ("readings", *r) for s, *r in self.q(
            "SELECT seq, start, interval_s, import_mwh, export_mwh, renew_mwh, flags "
            "FROM readings WHERE meter = ?", meter)}
        out.update({s: ("events", *r) for s, *r in self.q(
            "SELECT seq, type, time, COALESCE(a, 0), COALESCE(b, 0), COALESCE(c, 0) "
            "FROM events WHERE meter = ? AND type != ?", meter, LOST)})
        return out

    def lost(self, meter):
        return self.q("SELECT a, b FROM events WHERE meter = ? AND type = ? ORDER BY a",
                      meter, LOST)

    def backup(self, path):
        """A copy of the live database (SQLite's online backup)."""
        src = sqlite3.connect(f"file:{W}/town.db?mode=ro", uri=True, timeout=10)
        dst = sqlite3.connect(path)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()

    def restore(self, path):
        """townd stopped, its database replaced by the copy, started again."""
        self.stop()
        for ext in ("-wal", "-shm"):
            if os.path.exists(f"{W}/town.db{ext}"):
                os.unlink(f"{W}/town.db{ext}")
        shutil.copyfile(path, f"{W}/town.db")
        self.start()

    def count(self, meter):
        return len(self.records(meter))

    def stat(self, name):
        r = self.q("SELECT value FROM stats WHERE name = ?", name)
        return r[0][0] if r else 0


def wait_until(what, fn, timeout, step=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    raise Failed(f"timed out after {timeout} s waiting until {what}")


class Test:
    def __init__(self):
        self.n, self.failed = 0, 0

    def ok(self, cond, desc, detail=""):
        self.n += 1
        if detail:
            log(detail)
        print(f"{'ok' if cond else 'not ok'} {self.n} {desc}", flush=True)
        if not cond:
            self.failed += 1
        return cond

    def check(self, desc, fn):
        try:
            detail = fn()
            return self.ok(True, desc, detail or "")
        except Failed as e:
            return self.ok(False, desc, str(e))
        except (OSError, ValueError, KeyError, IndexError, sqlite3.Error) as e:
            # a step that met something it could not read fails alone
            return self.ok(False, desc, f"{type(e).__name__}: {e}")
