#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Uplink end to end: two QEMU guests, meters A and B, report to townd.

    tests/uplink/e2e.py      after make guest-check ARCH=x86_64 built the
                             modules, programs and test initramfs

Layout (every process real; only the modems and the sensors simulated):

    townd (host, TCP 127.0.0.1:PORT, SQLite)
      ^ TCP                     ^ TCP
    sim900sim A (host)        sim900sim B (host)     SIM900 AT dialect,
      ^ ttyS2                   ^ ttyS2              transparent mode
    guest A: meterd  <- ttyS1 -> guest B: meterd     gm_link neighbour line,
                     (relayed and captured here)     bytes recorded A->B
    ttyS3 of each guest: a control line (tests/uplink/guest-agent-uplink.sh)

The host drives the scenario of issue 6 and prints KTAP: A reports through
its own modem; A's modem fails and A's records reach townd through B's
link and B's modem, exactly once and in order, without B being able to
read them; the modem recovers and A is back on its own path; townd is
stopped for a while and A's backlog arrives complete; a replayed, a forged
and a stranger's frame are refused and change nothing.

Logs and scratch files: build/x86_64/uplink-e2e/.
"""
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

TOP = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(TOP, "build", "x86_64")
BIN = os.path.join(OUT, "bin")
W = os.path.join(OUT, "uplink-e2e")
IDS = {"a": 101, "b": 102}
PLAN = 14
TIMEOUT = int(os.environ.get("GM_GUEST_TIMEOUT", "900"))


class Failed(Exception):
    pass


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


class Guest:
    """A guest's control line: run a shell command, get (rc, output)."""

    def __init__(self, name, listener):
        self.name, self.listener, self.sock, self.buf = name, listener, None, b""

    def accept(self, timeout):
        self.listener.settimeout(timeout)
        self.sock, _ = self.listener.accept()
        self.sock.settimeout(None)

    def line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise Failed(f"guest {self.name}: no answer on the control line")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            if not data:
                raise Failed(f"guest {self.name}: control line closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

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

    def prop(self, name):
        rc, out = self.run("busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 "
                           f"org.gridmeter.Uplink1 {name}")
        if rc:
            raise Failed(f"guest {self.name}: {name}: {out}")
        sig, _, val = out.strip().partition(" ")
        return val.strip('"') if sig == "s" else int(val) if sig in "qutxi" else val

    def counters(self):
        rc, out = self.run("busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 "
                           "org.gridmeter.Uplink1 Counters")
        words = out.split()
        return {words[i].strip('"'): int(words[i + 1]) for i in range(2, len(words) - 1, 2)}


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
                return
            except OSError:
                time.sleep(0.1)
        raise Failed("townd did not start listening")

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            self.p.wait(20)
        self.p = None

    def q(self, sql, *args):
        db = sqlite3.connect(f"file:{W}/town.db?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def records(self, meter):
        """(table, rowid, seq) of every stored record of the meter."""
        rows = [("readings", r, s) for r, s in
                self.q("SELECT rowid, seq FROM readings WHERE meter = ?", meter)]
        rows += [("events", r, s) for r, s in
                 self.q("SELECT rowid, seq FROM events WHERE meter = ?", meter)]
        return rows

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


METERD_CONF = """\
# meterd in the uplink end-to-end test (tests/uplink/e2e.py)
[meter]
timezone = UTC
interval = 60
sample_interval_ms = 1000

[sensors]
backend = replay
replay_file = /gm-e2e/replay.txt

[relays]
backend = fake

[tariff]
type = flat
currency = GBP
rate = 28.62

[store]
state_dir = /var/lib/gridmeter
runtime_dir = /run/gridmeter

[uplink]
credentials = /etc/gridmeter/uplink.key
report_interval = 1
snapshot_interval = 60
ack_every = 4
ack_timeout_ms = 2000
broken_after = 2

[modem]
device = /dev/ttyS2
apn = internet.test
server = 127.0.0.1:{port}
guard_ms = 100
retry_delay_ms = 1000
command_timeout_ms = 2000
connect_timeout_ms = 5000

[neighbour.peer]
device = /dev/ttyS1
"""

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"""


def guest_initrd(name, port, cred):
    """The test initramfs plus /gm-e2e/ for this guest (cpio archives concatenate)."""
    d = os.path.join(W, f"extra-{name}")
    os.makedirs(os.path.join(d, "gm-e2e"))
    files = {
        "meterd.conf": METERD_CONF.format(port=port),
        "uplink.key": cred,
        "bus.conf": BUS_CONF,
        # 230 V, 5 A, 1150 W at unity power factor, 50 Hz (and for B a little less)
        "replay.txt": "230000 5000 1150000 1000 50000\n" if name == "a"
                      else "230000 4000 920000 1000 50000\n",
    }
    for fn, text in files.items():
        with open(os.path.join(d, "gm-e2e", fn), "w") as f:
            f.write(text)
    os.chmod(os.path.join(d, "gm-e2e", "uplink.key"), 0o600)
    out = os.path.join(W, f"initramfs-{name}.cpio.gz")
    shutil.copyfile(os.path.join(OUT, "initramfs.cpio.gz"), out)
    cpio = subprocess.run("find gm-e2e | cpio -o -H newc --quiet -R 0:0 | gzip -1",
                          shell=True, cwd=d, capture_output=True, check=True).stdout
    with open(out, "ab") as f:
        f.write(cpio)
    return out


def start_guest(name):
    kabi = subprocess.run([os.path.join(TOP, "scripts", "kver.sh")], capture_output=True,
                          text=True, check=True).stdout.strip()
    extra = " ".join([
        f"-chardev socket,id=nb,path={W}/line-{name}.sock,reconnect=1 -serial chardev:nb",
        f"-chardev socket,id=mdm,path={W}/modem-{name}.sock,reconnect=1 -serial chardev:mdm",
        f"-chardev socket,id=ctl,path={W}/ctl-{name}.sock,reconnect=1 -serial chardev:ctl",
    ])
    env = dict(os.environ, GM_QEMU_EXTRA=extra)
    return subprocess.Popen([os.path.join(TOP, "scripts", "guest-run.sh"), "x86_64", kabi,
                             os.path.join(W, f"initramfs-{name}.cpio.gz"),
                             os.path.join(W, f"guest-{name}.log"), str(TIMEOUT),
                             "gm.run=/tests/agent/uplink", f"gm.meter={name}"], env=env)


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


def stored_in_order(town, meter, upto):
    """Every record 1..upto stored exactly once; each table in sequence order."""
    rows = town.records(meter)
    seqs = sorted(s for _, _, s in rows if s <= upto)
    if seqs != list(range(1, upto + 1)):
        missing = sorted(set(range(1, upto + 1)) - set(seqs))
        dups = len(seqs) - len(set(seqs))
        raise Failed(f"meter {meter}: {len(seqs)} records stored of 1..{upto}: "
                     f"missing {missing[:10]}{'...' if len(missing) > 10 else ''}, "
                     f"{dups} duplicates")
    for table in ("readings", "events"):
        order = [s for t, _, s in sorted(rows, key=lambda r: r[1]) if t == table]
        bad = [(a, b) for a, b in zip(order, order[1:]) if b < a]
        if bad:
            raise Failed(f"meter {meter}: {table} stored out of order, e.g. {bad[:3]}")
    return f"meter {meter}: records 1..{upto} stored once each, in order"


def main():
    if not os.path.exists(os.path.join(OUT, "initramfs.cpio.gz")):
        print("e2e: no build/x86_64/initramfs.cpio.gz (run make guest-check ARCH=x86_64)")
        return 1
    shutil.rmtree(W, ignore_errors=True)
    os.makedirs(W)
    t = Test()
    procs, sims = [], {}
    print("KTAP version 1")
    print(f"1..{PLAN}", flush=True)
    port = free_port()
    town = Town(port)
    creds = {n: town.ctl("provision", str(i), f"meter-{n}") for n, i in IDS.items()}
    for n, c in creds.items():
        with open(os.path.join(W, f"uplink-{n}.key"), "w") as f:
            f.write(c)
        os.chmod(os.path.join(W, f"uplink-{n}.key"), 0o600)
    town.start()
    simlog = open(os.path.join(W, "sim900sim.log"), "w")
    for n in IDS:
        sims[n] = Sim(n, os.path.join(W, f"modem-{n}.sock"), simlog)
    relay = Relay(listen_unix(f"{W}/line-a.sock"), listen_unix(f"{W}/line-b.sock"),
                  f"{W}/line-a-to-b.bin", f"{W}/line-b-to-a.bin")
    guests = {n: Guest(n, listen_unix(f"{W}/ctl-{n}.sock")) for n in IDS}
    for n in IDS:
        guest_initrd(n, port, creds[n])
    wait_until("sim900sim listens", lambda: all(os.path.exists(f"{W}/modem-{n}.sock")
                                                 for n in IDS), 10)
    try:
        for n in IDS:
            procs.append(start_guest(n))
        for g in guests.values():
            g.accept(120)
        for g in guests.values():
            g.wait_ready(240)
        a, b = guests["a"], guests["b"]
        sa = sims["a"]

        def up():
            ids = {n: g.prop("MeterId") for n, g in guests.items()}
            if ids != IDS:
                raise Failed(f"meter ids {ids}")
            return f"meterd up with its uplink on A ({ids['a']}) and B ({ids['b']})"
        t.check("meterd runs on both guests with its uplink configured", up)

        def own_modem():
            wait_until("A and B route through their modems",
                       lambda: a.prop("Route") == "modem" and b.prop("Route") == "modem", 120)
            c0, up0 = town.count(101), sa.stats()["up"]
            wait_until("5 more records of A stored", lambda: town.count(101) >= c0 + 5, 60)
            up1 = sa.stats()["up"]
            if up1 <= up0:
                raise Failed("nothing went up A's modem")
            return (f"A: {town.count(101) - c0} records stored through its modem "
                    f"({up1 - up0} bytes up), signal {a.prop('SignalQuality')}, "
                    f"registration {a.prop('Registration')}")
        t.check("A reports to townd through its own SIM900", own_modem)

        # A's modem loses the server and cannot reconnect
        sa.ctl("connect_fail 1000000")
        sa.ctl("drop")
        t0 = time.time()

        def failover():
            wait_until("A routes through its neighbour", lambda: a.prop("Route") == "neighbour", 90)
            why = a.prop("RouteReason")
            if "acknowledgements missed" not in why:
                raise Failed(f"route reason: {why}")
            return f"A failed over after {time.time() - t0:.1f} s: {why}"
        t.check("A's modem fails: A fails over to its neighbour link", failover)

        def through_b():
            c0, up0 = town.count(101), sa.stats()["up"]
            wait_until("10 more records of A stored", lambda: town.count(101) >= c0 + 10, 90)
            if a.prop("Route") != "neighbour":
                raise Failed("A left the neighbour route meanwhile")
            up1 = sa.stats()["up"]
            if up1 != up0:
                raise Failed(f"A's modem carried {up1 - up0} bytes while down")
            return f"{town.count(101) - c0} records of A stored through B"
        t.check("A's records reach townd through B's link and B's modem", through_b)

        def unreadable():
            # the WELCOMEs of A's sessions come back on the B -> A line
            r = subprocess.run([os.path.join(BIN, "uplink_wire"), "inspect",
                                f"{W}/line-a-to-b.bin", f"{W}/townd.key", "101",
                                f"{W}/uplink-a.key", f"{W}/uplink-b.key",
                                f"{W}/line-b-to-a.bin"],
                               capture_output=True, text=True)
            if r.returncode:
                raise Failed(f"uplink_wire: {r.stdout.strip()} {r.stderr.strip()}")
            return "A->B line: " + r.stdout.strip()
        t.check("B cannot open A's frames; the town server can", unreadable)

        sa.ctl("connect_fail 0")
        t0 = time.time()

        def back():
            wait_until("A routes through its modem again", lambda: a.prop("Route") == "modem", 120)
            up0, c0 = sa.stats()["up"], town.count(101)
            wait_until("5 more records of A stored", lambda: town.count(101) >= c0 + 5, 60)
            if sa.stats()["up"] <= up0:
                raise Failed("nothing went up A's modem after the recovery")
            return f"A back on its modem after {time.time() - t0:.1f} s"
        t.check("A's modem recovers: A returns to its own path", back)

        def outage():
            town.stop()
            stopped = a.counters()["next-sequence"]
            time.sleep(20)
            held = a.prop("Backlog")
            if held < 15:
                raise Failed(f"A holds only {held} records after 20 s without townd")
            town.start()
            upto = a.counters()["next-sequence"] - 1
            wait_until(f"A's records up to {upto} acknowledged",
                       lambda: a.prop("Acknowledged") >= upto, 180)
            return (f"townd down 20 s: A held {held} records (from {stopped}); all acknowledged "
                    f"{a.prop('LastAcknowledgement')} after the restart")
        t.check("townd stopped and restarted: A's backlog arrives complete", outage)

        def exactly_once():
            msgs = []
            for n, g in guests.items():
                msgs.append(stored_in_order(town, IDS[n], g.prop("Acknowledged")))
            return "; ".join(msgs)
        t.check("every record of A and B stored exactly once, in order", exactly_once)

        def refused(mode, stat):
            def fn():
                upto = a.prop("Acknowledged")
                before = town.q("SELECT * FROM readings WHERE meter = 101 AND seq <= ? "
                                "ORDER BY seq", upto)
                s0, r0 = town.stat(stat), town.q("SELECT rejected FROM meters WHERE id = 101")
                r = subprocess.run([os.path.join(BIN, "uplink_wire"), "inject",
                                    f"{W}/line-a-to-b.bin", "101", f"127.0.0.1:{port}", mode],
                                   capture_output=True, text=True)
                if r.returncode:
                    raise Failed(f"uplink_wire inject: {r.stderr.strip()}")
                wait_until(f"townd counts it in {stat}", lambda: town.stat(stat) > s0, 20)
                after = town.q("SELECT * FROM readings WHERE meter = 101 AND seq <= ? "
                               "ORDER BY seq", upto)
                if after != before:
                    raise Failed("stored readings changed")
                r1 = town.q("SELECT rejected FROM meters WHERE id = 101")
                # the meter's session is untouched: A goes on being acknowledged
                wait_until("A is acknowledged again", lambda: a.prop("Acknowledged") > upto + 2, 60)
                return (f"{r.stdout.strip()}: {stat} {s0} -> {town.stat(stat)}, "
                        f"meter 101 rejected {r0[0][0]} -> {r1[0][0]}")
            return fn
        t.check("a replayed frame of A is refused and changes nothing",
                refused("replay", "replayed"))
        t.check("a forged frame of A is refused and changes nothing",
                refused("forge", "auth_failed"))
        t.check("a frame from an unprovisioned meter is refused",
                refused("stranger", "unknown_meter"))

        def townctl_show():
            out = town.ctl("show", "101")
            if "101" not in out:
                raise Failed(out)
            return "townctl show 101: " + " ".join(out.split())[:200]
        t.check("townctl shows what A last reported", townctl_show)

        def downlink():
            now = int(time.time())
            town.ctl("grant", "101", "7", "4321", str(now + 3600))
            town.ctl("tariff", "101", str(now - 60), "0:12500:4000", "420:30000:4000",
                     "1320:12500:4000")

            def grant():
                rc, out = a.run("busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 "
                                "org.gridmeter.Meter1 Allocation")
                w = out.replace('"', "").split()
                return dict(zip(w[2::2], w[3::2])).get("grant") == "4321"
            wait_until("A's grant is 4321 W", grant, 60)

            def tariff():
                rc, out = a.run("busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 "
                                "org.gridmeter.Meter1 Tariff")
                return "p1:12.500, p2:30.000" in out and "07:00-22:00 p2" in out
            wait_until("A's tariff is the town server's", tariff, 60)
            rc, out = a.run("busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 "
                            "org.gridmeter.Meter1 CurrentTariffPeriod")
            return f"grant 4321 W and a 3-window tariff in force on A ({out.strip()})"
        t.check("a grant and a tariff queued on townd reach A and take effect", downlink)

        def journal():
            with open(os.path.join(W, "guest-a.log"), errors="replace") as f:
                text = f.read()
            lines = [ln for ln in text.splitlines() if "uplink route:" in ln]
            if not any("-> neighbour" in ln for ln in lines) or \
               not any("neighbour -> modem" in ln for ln in lines):
                raise Failed(f"route journal lines: {lines}")
            rc, rss = a.run("grep VmHWM /proc/$(pidof meterd)/status")
            return f"{len(lines)} route changes in A's journal; meterd on A: {' '.join(rss.split())}"
        t.check("A's route changes are in its journal", journal)
    except Failed as e:
        log(str(e))
    finally:
        for g in guests.values():
            try:
                if g.sock:
                    g.sock.sendall(b"exit\n")
            except OSError:
                pass
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        town.stop()
        for s in sims.values():
            s.p.stdin.close()
            s.p.wait(10)
    while t.n < PLAN:
        t.ok(False, "not reached")
    rc = 0
    for n in IDS:
        r = subprocess.run([os.path.join(TOP, "scripts", "ktap-check.py"),
                            os.path.join(W, f"guest-{n}.log"), f"guest-{n}"])
        rc |= r.returncode
    passed = t.n - t.failed
    print(f"uplink-e2e: {passed} passed, {t.failed} failed, 0 skipped")
    return 1 if t.failed or rc else 0


if __name__ == "__main__":
    sys.exit(main())
