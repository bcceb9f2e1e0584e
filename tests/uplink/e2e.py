#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Uplink end to end: two QEMU guests, meters A and B, report to townd.

    tests/uplink/e2e.py      after make ARCH=x86_64 modules userspace
                             guest-tests initramfs (or make guest-check)

Layout (every process real; only the modems and the sensors simulated):

    townd (host, TCP 127.0.0.1:PORT, SQLite)
      ^ TCP                     ^ TCP                   ^ TCP
    proxy A                   proxy B                 proxy "wired"    recording TCP
      ^ TCP                     ^ TCP                   (injections)   proxies
    sim900sim A (host)        sim900sim B (host)     SIM900 AT dialect,
      ^ ttyS2                   ^ ttyS2              transparent mode
    guest A: meterd  <- ttyS1 -> guest B: meterd     gm_link neighbour line,
                     (relayed and captured here)     bytes recorded both ways
    ttyS3 of each guest: a control line (tests/uplink/guest-agent-uplink.sh)

Guest B boots with its RTC years off (QEMU -rtc base=2016-03-01).

The host drives the scenario of issues 6 and 10 and prints KTAP: A reports
through its own modem; A's modem fails and A's records reach townd through
B's link and B's modem, exactly once and in order, without B being able to
read them; the modem recovers and A is back on its own path; townd is
stopped for a while and A's backlog arrives complete; a replayed, a forged
and a stranger's frame are refused and change nothing; commands reach A; B
sets its clock from the town server's time; a captured tariff frame
replayed after a restart of A's meterd is refused, a tariff A cannot take
is refused and townctl shows why; an operator-signed disconnect queued
with townctl signed-queue opens A's relay, the same file again is refused
as a replay, a copy the town modified is refused by A, and a signed
reconnect arms A until its customer confirms; A's state directory is wiped and A
resynchronises; townd's database is restored from a copy and every record
ends up stored once; no reading is booked outside the test's time; and a
capture of every frame that crossed shows no (key, nonce) pair twice.

Logs and scratch files: build/x86_64/uplink-e2e/.
"""
import calendar
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time

from e2e_records import Failed, same_records, stored_in_order, tariff_args, tariff_view
from e2e_rig import (BIN, OUT, TOP, W, Guest, Proxy, Relay, Sim, Test, Town, captures,
                     free_port, listen_unix, log, wait_until)

IDS = {"a": 101, "b": 102}
PLAN = 23
TOWN_ID = 1                            # the town of A's [commands] (townd: no town_id)
B_RTC = "2016-03-01T00:00:00"          # guest B's clock at boot (no trusted time)
GMP_CMD = {0: "applied", 1: "applied (the meter had it)", 2: "refused (unsupported)",
           3: "refused (expired)", 4: "refused (invalid)"}
TIMEOUT = int(os.environ.get("GM_GUEST_TIMEOUT", "900"))
STA_UNSYNC, STA_NANO = 0x40, 0x2000    # adjtimex status bits (linux/timex.h)


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
detail = interval
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
retry_max_ms = 8000
retry_reset_ms = 10000

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


COMMANDS_CONF = f"""
[commands]
operator_keys = /etc/gridmeter/operators.keys
town = {TOWN_ID}
"""


def guest_initrd(name, port, cred, operators=None):
    """The test initramfs plus /gm-e2e/ for this guest (cpio archives concatenate)."""
    d = os.path.join(W, f"extra-{name}")
    os.makedirs(os.path.join(d, "gm-e2e"))
    files = {
        "meterd.conf": METERD_CONF.format(port=port) + (COMMANDS_CONF if operators else ""),
        "uplink.key": cred,
        "bus.conf": BUS_CONF,
        # 230 V, 5 A, 1150 W at unity power factor, 50 Hz (and for B a little less)
        "replay.txt": "230000 5000 1150000 1000 50000\n" if name == "a"
                      else "230000 4000 920000 1000 50000\n",
    }
    if operators:
        files["operators.keys"] = operators
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
    if name == "b":
        extra += f" -rtc base={B_RTC}"     # years off, and nothing to correct it but the town
    env = dict(os.environ, GM_QEMU_EXTRA=extra)
    return subprocess.Popen([os.path.join(TOP, "scripts", "guest-run.sh"), "x86_64", kabi,
                             os.path.join(W, f"initramfs-{name}.cpio.gz"),
                             os.path.join(W, f"guest-{name}.log"), str(TIMEOUT),
                             "gm.run=/tests/agent/uplink", f"gm.meter={name}"], env=env)


def gmsign(*args):
    r = subprocess.run([os.path.join(BIN, "gmsign"), *args], capture_output=True, text=True)
    if r.returncode:
        raise Failed(f"gmsign {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def signed_file(name, action, meter, *signers):
    """A command signed by the operators named, in W/name; returns (path, id)."""
    path = os.path.join(W, name)
    cid = int(gmsign("new", action, str(TOWN_ID), str(meter), "--expires", "600", "-o", path))
    for who in signers:
        gmsign("sign", os.path.join(W, f"{who}.sec"), path)
    return path, cid


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
    t_begin = int(time.time())
    port = free_port()
    town = Town(port)
    proxies = {n: Proxy(n, port) for n in ("a", "b", "wired")}
    town.proxies = list(proxies.values())
    wired = f"127.0.0.1:{proxies['wired'].port}"
    creds = {n: town.ctl("provision", str(i), f"meter-{n}") for n, i in IDS.items()}
    for n, c in creds.items():
        with open(os.path.join(W, f"uplink-{n}.key"), "w") as f:
            f.write(c)
        os.chmod(os.path.join(W, f"uplink-{n}.key"), 0o600)
    town.start()
    simlog = open(os.path.join(W, "sim900sim.log"), "w")
    for n in IDS:
        sims[n] = Sim(n, os.path.join(W, f"modem-{n}.sock"), simlog)
    Relay(listen_unix(f"{W}/line-a.sock"), listen_unix(f"{W}/line-b.sock"),
          f"{W}/line-a-to-b.bin", f"{W}/line-b-to-a.bin")
    guests = {n: Guest(n, listen_unix(f"{W}/ctl-{n}.sock")) for n in IDS}
    # two operators' keys (gmsign, as on their own machines); A holds their public keys
    operators = "".join(gmsign("keygen", who, os.path.join(W, f"{who}.sec"))
                        for who in ("alice", "bob"))
    for n in IDS:
        guest_initrd(n, proxies[n].port, creds[n], operators if n == "a" else None)
    wait_until("sim900sim listens", lambda: all(os.path.exists(f"{W}/modem-{n}.sock")
                                                 for n in IDS), 10)
    unauthentic = 0         # frames injected that no key of the town opens
    copy = os.path.join(W, "town-copy.db")
    state = {}
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

        def clock_b():
            # /run/gm-clock: uptime at meterd's start, its wall clock then, uptime at trust
            wait_until("B's clock is trusted",
                       lambda: b.run("test -s /run/gm-clock")[0] == 0, 90)
            msgs = []
            for n, g in guests.items():
                start, wall, trusted = g.run("cat /run/gm-clock")[1].split()
                h0 = time.time()
                rc, out = g.run("adjtimex")     # the kernel's clock and its status
                h1 = time.time()
                kv = dict(map(str.strip, ln.split(":", 1)) for ln in out.splitlines()
                          if ":" in ln)
                status = int(kv["status"].split()[0])
                sub = int(kv["time.tv_usec"].split()[0])
                now = int(kv["time.tv_sec"].split()[0]) + sub / (1e9 if status & STA_NANO else 1e6)
                off = now - (h0 + h1) / 2
                if abs(off) > 2 + (h1 - h0) / 2:
                    raise Failed(f"{n}: its clock is {off:+.2f} s off the host's after the "
                                 f"town server's time was applied")
                if status & STA_UNSYNC:
                    raise Failed(f"{n}: the kernel's clock is still marked unsynchronised "
                                 f"(adjtimex status {status})")
                src, ok = g.mprop("ClockSource"), g.mprop("ClockTrusted")
                if not ok or src != "town":
                    raise Failed(f"{n}: ClockTrusted {ok}, ClockSource {src}")
                state[f"trust-{n}"] = took = float(trusted) - float(start)
                began = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(wall)))
                msgs.append(f"{n}: meterd started at {began} UTC, its clock trusted {took:.1f} s "
                            f"later (source {src}), now {off:+.2f} s from the host's, the "
                            f"kernel's marked synchronised")
            b_rtc = calendar.timegm(time.strptime(B_RTC, "%Y-%m-%dT%H:%M:%S"))
            wall_b = int(b.run("cat /run/gm-clock")[1].split()[1])
            if not b_rtc <= wall_b < b_rtc + 600:
                raise Failed(f"B's clock read {wall_b} at meterd's start, not near {B_RTC}")
            return "; ".join(msgs)
        t.check("B, booted with its clock in 2016, sets it from the town server's time",
                clock_b)

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
            t1 = time.time()
            upto = a.counters()["next-sequence"] - 1
            wait_until(f"A's records up to {upto} acknowledged",
                       lambda: a.prop("Acknowledged") >= upto, 180)
            return (f"townd down 20 s: A held {held} records (from #{stopped}); all "
                    f"acknowledged {time.time() - t1:.1f} s after the restart")
        t.check("townd stopped and restarted: A's backlog arrives complete", outage)

        def exactly_once():
            msgs = []
            for n, g in guests.items():
                msgs.append(stored_in_order(town, IDS[n], g.prop("Acknowledged")))
            # the copy a restore will put back later (while both meters report)
            town.backup(copy)
            db = sqlite3.connect(copy)
            state["copy"] = dict(db.execute("SELECT id, acked_upto FROM meters").fetchall())
            db.close()
            msgs.append(f"copy of town.db taken: A up to #{state['copy'][101]}, "
                        f"B up to #{state['copy'][102]}")
            return "; ".join(msgs)
        t.check("every record of A and B stored exactly once, in order", exactly_once)

        def refused(mode, stat):
            def fn():
                nonlocal unauthentic
                upto = a.prop("Acknowledged")
                before = town.q("SELECT * FROM readings WHERE meter = 101 AND seq <= ? "
                                "ORDER BY seq", upto)
                s0, r0 = town.stat(stat), town.q("SELECT rejected FROM meters WHERE id = 101")
                # replay: a HELLO of A that townd answered (sent through B)
                r = subprocess.run([os.path.join(BIN, "uplink_wire"), "inject",
                                    f"{W}/line-a-to-b.bin", "101", wired, mode,
                                    f"{W}/townd.key", f"{W}/town.db", *captures()],
                                   capture_output=True, text=True)
                if r.returncode:
                    raise Failed(f"uplink_wire inject: {r.stderr.strip()}")
                unauthentic += mode != "replay"
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

        def tariff_is(g, want):
            """Wait until the guest's Tariff property has the rates and weekday of want."""
            def ok():
                state["tariff"] = g.mprop("Tariff")
                return (state["tariff"].get("rates"), state["tariff"].get("weekday")) == want
            wait_until(f"{g.name}'s tariff has {want}", ok, 60)
            return state["tariff"]

        def tariff_diff(x, y):
            """The keys in which two Tariff properties differ. A time-of-use tariff has
            no flat rate: meterd shows "" after the town's update, "0" once reloaded
            from its state directory; either means none."""
            skip = {"rate"} if x.get("type") == y.get("type") == "tou" else set()
            return {k: (x.get(k), y.get(k)) for k in set(x) | set(y)
                    if k not in skip and x.get(k) != y.get(k)}

        # two tariffs for A: (minute of the day, import price), export 4000
        windows1 = [(0, 12500), (420, 30000), (1320, 12500)]
        windows2 = [(0, 15000), (360, 21000), (1380, 15000)]
        tariff1, tariff2 = tariff_view(windows1), tariff_view(windows2)

        def downlink():
            now = int(time.time())
            town.ctl("grant", "101", "7", "4321", str(now + 3600))
            state["grant"] = town.q("SELECT MAX(tseq) FROM outgoing WHERE meter = 101")[0][0]
            town.ctl("tariff", "101", str(now - 60), *tariff_args(windows1))
            state["t1"] = town.q("SELECT MAX(tseq) FROM outgoing WHERE meter = 101")[0][0]

            def grant():
                rc, out = a.run("busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 "
                                "org.gridmeter.Meter1 Allocation")
                w = out.replace('"', "").split()
                return dict(zip(w[2::2], w[3::2])).get("grant") == "4321"
            wait_until("A's grant is 4321 W", grant, 60)
            state["tariff-1"] = tariff_is(a, tariff1)
            return (f"grant 4321 W and a 3-window tariff (command #{state['t1']}) in force on A "
                    f"({a.mprop('CurrentTariffPeriod')})")
        t.check("a grant and a tariff queued on townd reach A and take effect", downlink)

        def journal():
            with open(os.path.join(W, "guest-a.log"), errors="replace") as f:
                text = f.read()
            lines = [ln for ln in text.splitlines() if "uplink route:" in ln]
            if not any("modem -> neighbour (" in ln and "acknowledgements missed" in ln
                       for ln in lines) or not any("neighbour -> modem" in ln for ln in lines):
                raise Failed(f"route journal lines: {lines}")
            changes = a.counters()["route-changes"]
            if changes < 4:
                raise Failed(f"route-changes {changes}: the start, the failover and the return "
                             "make at least 4")
            rc, rss = a.run("grep VmHWM /proc/$(pidof meterd)/status")
            return (f"{len(lines)} route lines in A's journal (repeats of a line are "
                    f"rate-limited), {changes} route changes counted; meterd on A: "
                    f"{' '.join(rss.split())}")
        t.check("A's route changes are in its journal", journal)

        def tariff_replay():
            now = int(time.time())
            town.ctl("tariff", "101", str(now - 60), *tariff_args(windows2))
            state["t2"] = town.q("SELECT MAX(tseq) FROM outgoing WHERE meter = 101")[0][0]
            state["tariff-2"] = tariff_is(a, tariff2)
            # a clean restart: meterd saves, stops, starts again with a new session
            a.meterd_stop("TERM")
            a.meterd_start()
            wait_until("A is back on its modem with a session",
                       lambda: a.prop("Route") == "modem" and
                       a.counters()["acknowledgements"] > 0, 90)
            frame = os.path.join(W, "tariff-replay.bin")
            r = subprocess.run([os.path.join(BIN, "uplink_wire"), "command", f"{W}/townd.key",
                                f"{W}/town.db", "101", str(state["t1"]), frame, *captures()],
                               capture_output=True, text=True)
            if r.returncode:
                raise Failed(f"uplink_wire command: {r.stdout.strip()} {r.stderr.strip()}")
            rej0 = a.counters()["rejected"]
            with open(frame, "rb") as f:
                conn = proxies["a"].inject(f.read())
            wait_until("A counts a rejected frame", lambda: a.counters()["rejected"] > rej0, 30)
            rej1 = a.counters()["rejected"]
            # a frame A accepted would have applied the tariff at once
            acks = a.counters()["acknowledgements"]
            wait_until("A is acknowledged again", lambda: a.counters()["acknowledgements"] > acks,
                       30)
            diff = tariff_diff(state["tariff-2"], a.mprop("Tariff"))
            if diff:
                raise Failed(f"A's tariff changed after the replay (before, after): {diff}")
            return (f"{r.stdout.strip()}; injected on A's connection {conn}: A's rejected "
                    f"{rej0} -> {rej1}, its tariff still command #{state['t2']}'s")
        t.check("a captured tariff frame replayed to A after a restart of its meterd is "
                "refused; A keeps the newer tariff", tariff_replay)

        def refused_tariff():
            now = int(time.time())
            # 7 distinct import prices: meterd keeps at most 6 tariff periods
            town.ctl("tariff", "101", str(now - 60),
                     *tariff_args([(i * 180, 10000 + 1000 * i) for i in range(7)]))
            t3 = town.q("SELECT MAX(tseq) FROM outgoing WHERE meter = 101")[0][0]
            wait_until(f"A settles command #{t3}", lambda: town.q(
                "SELECT status FROM outgoing WHERE meter = 101 AND tseq = ?", t3)[0][0]
                is not None, 60)
            want = {state["grant"]: ("grant", GMP_CMD[0]), state["t1"]: ("tariff", GMP_CMD[0]),
                    state["t2"]: ("tariff", GMP_CMD[0]), t3: ("tariff", GMP_CMD[2])}
            out = town.ctl("commands", "101")
            got = {}
            for ln in out.splitlines():
                # meter 101 #3 tariff, queued 2026-...Z: refused (unsupported) 2026-...Z
                # (the signed commands follow in a list of their own)
                if not ln.startswith("meter "):
                    continue
                head, _, outcome = ln.partition("Z: ")
                w = head.split()
                got[int(w[2].lstrip("#"))] = (w[3].rstrip(","), outcome.rsplit(" ", 1)[0])
            if got != want:
                raise Failed(f"townctl commands 101:\n{out}\nexpected {want}")
            diff = tariff_diff(state["tariff-2"], a.mprop("Tariff"))
            if diff:
                raise Failed(f"A's tariff changed with the refused one (before, after): {diff}")
            return "townctl commands 101: " + "; ".join(out.splitlines())
        t.check("a tariff A cannot take is refused; townctl commands shows every command's "
                "outcome", refused_tariff)

        def signed_recent(g):
            """A's SignedCommands: [(id, action, signers, outcome, at)], newest first."""
            rc, out = g.run("busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 "
                            "org.gridmeter.Uplink1 SignedCommands")
            w = shlex.split(out)
            if rc or not w or w[0] != "a(tsssx)":
                raise Failed(f"SignedCommands: {out}")
            return [(int(w[i]), w[i + 1], w[i + 2], w[i + 3], int(w[i + 4]))
                    for i in range(2, 2 + 5 * int(w[1]), 5)]

        def outcome_of(g, cid):
            def fn():
                got = [r for r in signed_recent(g) if r[0] == cid]
                return got[0] if got else None
            return wait_until(f"A handles signed command {cid}", fn, 90)

        def signed_disconnect():
            if a.mprop("MainRelay") != "closed":
                raise Failed(f"A's main relay is {a.mprop('MainRelay')} before the command")
            path, cid = signed_file("disconnect.cmd", "disconnect", IDS["a"], "alice")
            out = town.ctl("signed-queue", str(IDS["a"]), path).strip()
            got = outcome_of(a, cid)
            if got[1:4] != ("disconnect", "alice", "ok"):
                raise Failed(f"A's SignedCommands: {got}")
            wait_until("A's main relay opens", lambda: a.mprop("MainRelay") == "open", 30)
            # the same file again: the town remembers the id (and A would too)
            try:
                again = town.ctl("signed-queue", str(IDS["a"]), path)
                raise Failed(f"queued again: {again.strip()}")
            except Failed as e:
                if "replay" not in str(e):
                    raise
                again = str(e)
            state["signed"] = path
            return (f"{out}; A: {got[1]} by {got[2]}: {got[3]}, main relay open, remote state "
                    f"{a.mprop('RemoteState')}; again: {again}")
        t.check("an operator-signed disconnect queued at townd opens A's relay; the same file "
                "queued again is refused as a replay", signed_disconnect)

        def signed_modified():
            path, cid = signed_file("reconnect.cmd", "reconnect", IDS["a"], "alice")
            with open(path, "rb") as f:
                blob = bytearray(f.read())
            # the town changes the command's id (its last byte): a command the town has not
            # seen, with the operators' signature of another
            blob[13] ^= 0x01
            forged = os.path.join(W, "reconnect-modified.cmd")
            with open(forged, "wb") as f:
                f.write(blob)
            town.ctl("signed-queue", str(IDS["a"]), forged)
            fid = cid ^ 0x01
            got = outcome_of(a, fid)
            if got[3] != "bad-signature" or a.mprop("RemoteState") != "disconnected":
                raise Failed(f"the modified copy: {got}, remote state {a.mprop('RemoteState')}")
            town.ctl("signed-queue", str(IDS["a"]), path)
            ok = outcome_of(a, cid)
            if ok[3] != "ok" or a.mprop("RemoteState") != "armed" or \
                    a.mprop("MainRelay") != "open":
                raise Failed(f"the reconnect: {ok}, remote state {a.mprop('RemoteState')}, "
                             f"main relay {a.mprop('MainRelay')}")
            rc, out = a.run("busctl call org.gridmeter.Meter1 /org/gridmeter/Meter1 "
                            "org.gridmeter.Meter1 ConfirmReconnect")
            if rc:
                raise Failed(f"ConfirmReconnect: {out}")
            wait_until("A's main relay closes", lambda: a.mprop("MainRelay") == "closed", 30)
            with open(os.path.join(W, "guest-a.log"), errors="replace") as f:
                lines = [ln.strip() for ln in f if "signed command " in ln]
            if len([ln for ln in lines if str(fid) in ln]) != 1:
                raise Failed(f"A's journal: {lines}")
            return (f"modified copy {fid}: {got[3]}; reconnect {cid}: {ok[3]}, armed until "
                    f"confirmed; A's journal: " + " | ".join(lines[-3:]))
        t.check("a copy the town modified is refused by A (bad signature); a signed reconnect "
                "arms A and its relay closes only when the customer confirms", signed_modified)

        def wipe():
            # the town unreachable for a moment: A's newest records exist only on its disk
            town.stop()
            stored0 = town.q("SELECT acked_upto FROM meters WHERE id = 101")[0][0]
            view0 = town.q("SELECT reg_import FROM meters WHERE id = 101")[0][0]
            wait_until("A holds 3 records townd does not have",
                       lambda: a.counters()["next-sequence"] > stored0 + 3, 30)
            a.meterd_stop("9")
            made = a.outbox()           # every record A had made, on the disk to be wiped
            # a reflashed card: the state directory and the runtime snapshots both gone
            rc, out = a.run("rm -rf /var/lib/gridmeter/* /run/gridmeter/* && "
                            "find /var/lib/gridmeter /run/gridmeter -mindepth 1 | wc -l")
            if out.strip() != "0":
                raise Failed(f"rm -rf /var/lib/gridmeter/* /run/gridmeter/*: {out}")
            town.start()
            a.meterd_start()
            top = max(made)
            wait_until(f"A's new records acknowledged above #{top}",
                       lambda: a.prop("Acknowledged") >= top + 5, 120)
            new = a.outbox()            # the records of the new outbox, renumbered
            acked = a.prop("Acknowledged")
            first = min(new)
            upto = first - 1            # what townd held at the first handshake
            before = {s: r for s, r in made.items() if s <= upto}
            only_disk = sorted(s for s in made if s > upto)
            if upto != stored0:
                raise Failed(f"A's new records start at #{first}, townd held #{stored0}")
            n_old = same_records(town, 101, before, "made before the wipe")
            n_new = same_records(town, 101, {s: r for s, r in new.items() if s <= acked},
                                 "made after the wipe")
            order = stored_in_order(town, 101, acked)
            imp, view = a.mprop("ImportEnergy"), town.q(
                "SELECT reg_import FROM meters WHERE id = 101")[0][0]
            if imp < view:
                raise Failed(f"A's ImportEnergy {imp} mWh is below townd's view {view} mWh")
            # and the town's view never went back below what it held before the wipe
            # (a snapshot of the empty registers would have reset it)
            low = town.q("SELECT MIN(a) FROM events WHERE meter = 101 AND type = 2 AND seq > ?",
                         upto)[0][0]
            if low is not None and low < view0:
                raise Failed(f"a snapshot after the wipe says import {low} mWh, below townd's "
                             f"view {view0} mWh before it")
            with open(os.path.join(W, "guest-a.log"), errors="replace") as f:
                raised = [ln.strip() for ln in f if "registers raised to the town server's view"
                          in ln]
            if not raised:
                raise Failed("A's registers came back empty and were not raised to townd's view")
            # the tariff A had applied comes again (townd re-issues it to a meter that
            # lost its command state), and every command ends settled
            tariff_is(a, tariff2)
            wait_until("townd has every command of A settled", lambda: not town.q(
                "SELECT tseq FROM outgoing WHERE meter = 101 AND status IS NULL"), 30)
            cmds = town.ctl("commands", "101").splitlines()
            reissued = [ln for ln in cmds if "superseded" in ln]
            if not reissued:
                raise Failed("townd issued nothing again:\n" + "\n".join(cmds))
            state["wipe"] = (first, made)
            return (f"A had made #1..#{top}; townd held #{upto}; {len(only_disk)} records "
                    f"existed only on the wiped disk (#{only_disk[0]}..#{only_disk[-1]}, "
                    f"gone, nothing of them at townd: their numbers go to new records); A's new records start at #{first}: {n_old} old and "
                    f"{n_new} new records stored as A made them; {order}; ImportEnergy {imp} "
                    f"mWh >= townd's view {view} mWh ({raised[-1][:120]}); {len(reissued)} commands superseded "
                    f"and issued again, the tariff of #{state['t2']} back in force: "
                    + "; ".join(reissued))
        t.check("A's state directory wiped: A resynchronises, its records stored once, "
                "numbered on", wipe)

        def restore():
            def upto(n):
                return town.q("SELECT acked_upto FROM meters WHERE id = ?", IDS[n])[0][0]
            targets = {n: g.counters()["next-sequence"] - 1 for n, g in guests.items()}
            town.restore(copy)
            t1 = time.time()
            for n in guests:
                wait_until(f"townd stores {n}'s records up to #{targets[n]} again",
                           lambda: upto(n) >= targets[n], 180)
            took = time.time() - t1
            # A: the records from before the wipe that the copy holds are A's; those
            # stored after the copy was taken and wiped on A exist nowhere: lost
            first, made = state["wipe"]
            gone = {101: range(state["copy"][101] + 1, first), 102: ()}
            msgs = []
            for n, g in guests.items():
                acked = upto(n)
                msgs.append(stored_in_order(town, IDS[n], acked, gone[IDS[n]]))
                held = g.outbox()
                same_records(town, IDS[n], {s: r for s, r in held.items() if s <= acked},
                             "held on its disk")
                state[f"stored-{n}"] = acked
            same_records(town, 101, {s: r for s, r in made.items()
                                     if s <= state["copy"][101]}, "in the copy")
            state["lost"] = len(gone[101])
            return (f"townd restored to A #{state['copy'][101]}, B #{state['copy'][102]}; "
                    f"both acknowledged again after {took:.1f} s; " + "; ".join(msgs))
        t.check("townd's database restored from a copy: every record of A and B stored "
                "exactly once, in order", restore)

        def booked():
            t_end = int(time.time())
            msgs = []
            for n in IDS:
                rows = town.q("SELECT seq, start, booked, flags FROM readings WHERE meter = ?",
                              IDS[n])
                out = [r for r in rows if not t_begin <= r[2] <= t_end]
                if out:
                    raise Failed(f"{n}: {len(out)} of {len(rows)} readings booked outside "
                                 f"{t_begin}..{t_end}, e.g. {out[:3]}")
                # and none made on the wrong clock without saying so (TIME_UNTRUSTED)
                wrong = [r for r in rows if not r[3] & 2 and not t_begin <= r[1] <= t_end]
                if wrong:
                    raise Failed(f"{n}: {len(wrong)} readings start outside the test's time "
                                 f"and are not flagged untrusted, e.g. {wrong[:3]}")
                flagged = sum(1 for r in rows if r[3] & 6)
                early = min((r[1] for r in rows), default=0)
                msgs.append(f"{n}: {len(rows)} readings booked within the test's "
                            f"{t_end - t_begin} s ({flagged} flagged untrusted or "
                            f"reconstructed, earliest start {early - t_begin:+d} s)")
            return "; ".join(msgs)
        t.check("no reading of A or B is booked outside the test's real time", booked)

        def audit():
            caps = captures()
            r = subprocess.run([os.path.join(BIN, "uplink_wire"), "audit", f"{W}/townd.key",
                                f"{W}/town.db", *caps], capture_output=True, text=True)
            w = r.stdout.split()
            got = {w[i]: w[i + 1] for i in range(len(w) - 1) if w[i + 1].isdigit()}
            if r.returncode or got.get("repeats") != "0":
                raise Failed(f"uplink_wire audit: {r.stdout.strip()} {r.stderr.strip()}")
            if int(got["unattributed"]) != unauthentic:
                raise Failed(f"{got['unattributed']} frames no key opens, {unauthentic} "
                             f"injected: {r.stdout.strip()}")
            state["audit"] = got
            return r.stdout.strip()
        t.check("every frame captured on the A-B line and at townd: no (key, nonce) "
                "pair used twice", audit)
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
    if "audit" in state:
        au = state["audit"]
        log(f"figures: {au['frames']} frames captured, {au['gmproto']} audited, "
            f"{au['repeats']} (key, nonce) repeats; records stored: "
            f"A {state.get('stored-a')} ({state.get('lost')} reported lost after the "
            f"restore), B {state.get('stored-b')}; clock trusted after "
            f"A {state.get('trust-a', 0):.1f} s, B {state.get('trust-b', 0):.1f} s; "
            f"{time.time() - t_begin:.0f} s")
    passed = t.n - t.failed
    print(f"uplink-e2e: {passed} passed, {t.failed} failed, 0 skipped")
    return 1 if t.failed or rc else 0


if __name__ == "__main__":
    sys.exit(main())
