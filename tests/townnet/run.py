#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The town network test (issue 12; Documentation/testing.md, "The town
network test"): hosts in network namespaces, all started here.

    main ---- town1 ---- town2 ---- town3 ---- town4      (a chain: town1 and
      \\________|__________|__________|_________/           town4 three hops apart;
                |          |          |          |          main linked to each town)
             meters1    meters2    meters3    meters4     (each town's meter network)

Each town runs the real townd with its meters provisioned by `townctl add`;
each meter network runs simfleet: a few hundred simulated meters over a few
TCP connections, one hourly reading per meter for each of the last closed
hours and some hours of the previous month. While the readings flow the
test cuts a town's meter link, makes another lossy (netem, or nftables
where the kernel has no netem), kills a townd (SIGKILL) and starts it
again, and cuts the main server's links; then it compares each town's
SQLite with what its fleet says it made.

upper.py adds what needs the other parts of issue 12, each probed and
skipped with the reason while absent: the main server (maind with a
PostgreSQL primary and hot standby in `main`, killed and restarted too),
the hours sent upstream, administrative mode, month retention (part A and
B), allocation in a town (C), borrowing between towns (E).

Environment: GM_TOWNNET_TOWNS (4), GM_TOWNNET_METERS (per town, 300),
GM_TOWNNET_HOLD=S keeps the rig up S seconds before the teardown, for a
look inside (`ip netns exec gmtnPID-town1 ss -tni`); build/townnet/ is
always kept, the namespaces never are.
Prints one line per check and "townnet: N passed, N failed, N skipped".
"""
import os
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
from fleet import Fleet, hour_sums, month_of, month_sums  # noqa: E402
from netns import Net, sh  # noqa: E402
from town import Town  # noqa: E402
import upper  # noqa: E402
import commands  # noqa: E402

TOP = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN = os.path.join(TOP, "build", "x86_64", "bin")
WORK = os.path.join(TOP, "build", "townnet")

NTOWNS = int(os.environ.get("GM_TOWNNET_TOWNS", "4"))
METERS = int(os.environ.get("GM_TOWNNET_METERS", "300"))
CONNS = 4           # TCP connections per fleet
PACE_MS = 700       # a new reading for every meter this often
RECENT = 24         # closed hours before now
PREV_MONTH = 6      # hours of the previous month
SEED = 12


def log(msg):
    print("# " + msg, flush=True)


class Results:
    def __init__(self):
        self.n = self.passed = self.failed = self.skipped = 0

    def check(self, name, ok, detail=""):
        self.n += 1
        if ok:
            self.passed += 1
            print(f"ok {self.n} - {name}" + (f": {detail}" if detail else ""), flush=True)
        else:
            self.failed += 1
            print(f"not ok {self.n} - {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def skip(self, name, reason):
        self.n += 1
        self.skipped += 1
        print(f"ok {self.n} - {name} # SKIP {reason}", flush=True)

    def summary(self):
        print(f"townnet: {self.passed} passed, {self.failed} failed, {self.skipped} skipped",
              flush=True)


def hours_plan(now):
    """The hours each meter reports, oldest first: PREV_MONTH hours of the
    10th of the previous month (UTC), then the RECENT hours that are closed
    for a town (H + 3600 + 300 s grace <= now)."""
    last = (int(now) - 3600 - 300) // 3600 * 3600
    recent = [last - 3600 * i for i in range(RECENT)][::-1]
    t = time.gmtime(now)
    y, m = (t.tm_year, t.tm_mon - 1) if t.tm_mon > 1 else (t.tm_year - 1, 12)
    day10 = int(time.mktime((y, m, 10, 0, 0, 0, 0, 0, 0)) - time.timezone)
    return [day10 + 8 * 3600 + 3600 * i for i in range(PREV_MONTH)] + recent


def build():
    targets = ["townd", "townctl", "simfleet"] + [p for p in ("maind", "mainctl")
                                                   if os.path.isdir(os.path.join(TOP, "server", "maind"))]
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C", TOP] +
                       [os.path.join("build", "x86_64", "bin", t) for t in targets],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        raise RuntimeError("build failed:\n" + r.stdout)


def tcp_probe(net, host, addr, port=7700):
    """A TCP connection from host to addr:port: True when it opens."""
    code = ("import socket,sys\n"
            f"s=socket.create_connection(('{addr}',{port}),timeout=3)\n"
            "s.close()\n")
    r = sh(net.exec_args(host, [sys.executable, "-c", code]), check=False)
    return r.returncode == 0


class Scenario:
    def __init__(self, res):
        self.res = res
        self.net = Net(log)
        self.towns, self.fleets = [], []
        self.marks = {}
        self.times = {}
        self.workdir = WORK
        self.main = None
        self.have = {p: "not probed" for p in "ABCE"}
        self.retained = None
        self.borrowing = False
        self.alloc = False
        self.cmds, self.cmds_why = None, "no main server in this run"

    # ---- setup -------------------------------------------------------------------
    def topology(self):
        t0 = time.monotonic()
        net = self.net
        net.add_host("main")
        for i in range(1, NTOWNS + 1):
            net.add_host(f"town{i}")
            net.add_host(f"meters{i}")
        for i in range(1, NTOWNS + 1):
            net.add_link("main", f"town{i}")
        for i in range(1, NTOWNS):
            net.add_link(f"town{i}", f"town{i + 1}")
        for i in range(1, NTOWNS + 1):
            net.add_link(f"meters{i}", f"town{i}")
        self.times["namespaces and links"] = time.monotonic() - t0

    def provision(self):
        t0 = time.monotonic()
        errors = []

        def one(town, fleet):
            try:
                town.provision(fleet.keys())
            except Exception as e:  # reported below
                errors.append(f"{town.host}: {e}")

        for i in range(1, NTOWNS + 1):
            town = Town(self.net, f"town{i}", i, WORK, BIN)
            town.init_key()
            addr = self.net.link(f"meters{i}", f"town{i}").addr[f"town{i}"]
            self.towns.append(town)
            self.fleets.append(Fleet(self.net, f"meters{i}", town, addr, 1, METERS,
                                     SEED * 100 + i, BIN))
        th = [threading.Thread(target=one, args=(t, f)) for t, f in zip(self.towns, self.fleets)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        counts = [t.meters() for t in self.towns]
        self.times["provisioning (townctl add)"] = time.monotonic() - t0
        self.res.check("provisioning", not errors and counts == [METERS] * NTOWNS,
                       "; ".join(errors) or f"{METERS} meters in each of {NTOWNS} towns by "
                       f"townctl add, {self.times['provisioning (townctl add)']:.1f} s")

    def upper_setup(self):
        """maind with PostgreSQL in main, and the towns' [upstream], when
        parts A and B are in the tree."""
        self.have = upper.probe(self, BIN)
        for part, why in sorted(self.have.items()):
            log(f"part {part}: " + ("present" if why is None else why))
        self.alloc = self.have["C"] is None
        if self.have["A"] or self.have["B"]:
            if self.alloc:
                for t in self.towns:
                    t.extra = "\n[town]\n" + upper.town_capacity(t)
                    t.write_config()
            return True
        self.main = upper.Main(self, BIN, log)
        self.main.setup(self.towns)
        self.borrowing = self.have["E"] is None
        self.cmds_why = commands.probe(self, BIN)
        log("signed commands: " + ("present" if self.cmds_why is None else self.cmds_why))
        cmd_section = ""
        if self.cmds_why is None:
            self.cmds = commands.Commands(self, BIN, log)
            cmd_section = self.cmds.setup()
        for t in self.towns:
            addr = self.net.link("main", t.host).addr["main"]
            t.extra = upper.town_upstream(t, addr, self.main.pubkey,
                                          upper.town_capacity(t) if self.alloc else "")
            if self.borrowing:
                t.extra += upper.town_borrowing(self, t)
            t.extra += cmd_section
            t.write_config()
        self.main.start()
        return self.res.check("maind starts in main", self.main.wait_ready(),
                              f"PostgreSQL primary {self.main.primary!r}, standby "
                              f"{self.main.standby!r}")

    def start_towns(self):
        for t in self.towns:
            t.start()
        bad = [t.host for t in self.towns if not t.wait_ready()]
        self.res.check("townd starts in every town", not bad,
                       f"not ready: {bad}" if bad else f"{NTOWNS} townds listening")
        return not bad

    def links(self):
        """Every link carries TCP: from the meter networks and main to each
        town's townd, and from each town to its neighbour's."""
        bad = []
        for link in self.net.links:
            if link.a.startswith("town") and link.b.startswith("town"):
                src, dst = link.a, link.b
            else:
                src, dst = (link.a, link.b) if link.b.startswith("town") else (link.b, link.a)
            if not tcp_probe(self.net, src, link.addr[dst]):
                bad.append(f"{src}->{dst}")
        self.res.check("every link carries TCP", not bad,
                       f"failed: {bad}" if bad else
                       f"{len(self.net.links)} links, each its own /30")

    # ---- traffic and faults ------------------------------------------------------
    def mark(self, name):
        self.marks[name] = time.monotonic()
        log(f"{name} at +{self.marks[name] - self.marks['traffic']:.1f} s")

    def traffic(self, hours):
        self.hours = hours
        netem_why = self.net.netem_available()
        self.netem_why = netem_why
        # without netem, the loss comes from nftables (no delay then)
        self.nft_why = self.net.nft_available() if netem_why else None
        self.marks["traffic"] = time.monotonic()
        for f in self.fleets:
            if self.cmds:
                # the fleet stays, sessions up, for the signed commands
                f.extra_args = self.cmds.fleet_args(f)
            # with borrowing, town1's fleet stays until its meters hold all
            # they asked (the loan may be cut by the faults and made again)
            f.start(hours, PACE_MS, CONNS, 150 if self.cmds else 90,
                    upper.borrow_alloc(f.town) if self.alloc else None,
                    upper.BASE_W if self.alloc and self.borrowing else None)
        self.dropped = 0

        def impair(on):
            if netem_why is None:
                degraded.netem("loss 10% delay 40ms" if on else None)
            elif self.nft_why is None:
                if not on:
                    self.dropped = degraded.dropped()
                degraded.drop(10 if on else 0)
            else:
                return
            self.mark("impaired" if on else "impaired off")
        cut = self.net.link("meters2", "town2")
        degraded = self.net.link(f"meters{NTOWNS}", f"town{NTOWNS}")
        killed = self.towns[2 % NTOWNS]
        mains = [self.net.link("main", t.host) for t in self.towns]
        main = self.main
        upstream = main is not None
        events = [
            # town1 without the main server from the start: administrative
            # mode, and its past month must stay until acknowledged
            (0.0, lambda: (mains[0].set(False), self.mark("town1 main cut"))),
            (5.0, lambda: impair(True)),
            (6.0, lambda: (cut.set(False), self.mark("cut"))),
            (8.0, lambda: upstream and (main.kill(), self.mark("maind killed"))),
            (10.0, lambda: (cut.set(True), self.mark("restored"))),
            (10.0, lambda: upstream and (main.start(), self.mark("maind restarted"))),
            (11.0, lambda: (killed.kill(), self.mark("killed"))),
            (11.5, lambda: upstream and self.sample_retention()),
            (12.0, lambda: (mains[0].set(True), self.mark("town1 main back"))),
            (14.0, lambda: (killed.start(), self.mark("restarted"))),
            (14.5, lambda: impair(False)),
            (15.0, lambda: ([m.set(False) for m in mains], self.mark("main cut"))),
            (18.5, lambda: ([m.set(True) for m in mains], self.mark("main back"))),
        ]
        for at, fn in events:
            delay = self.marks["traffic"] + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            fn()
        self.cut_town, self.killed_town = 1, self.towns.index(killed)
        rcs = [f.wait(120) for f in self.fleets]
        self.marks["fleets done"] = time.monotonic()
        self.times["traffic (fleets start to last ack)"] = \
            self.marks["fleets done"] - self.marks["traffic"]
        if upstream:
            want = sum(len(hour_sums(f.record()[0])) for f in self.fleets)
            n = upper.wait_pg_complete(self, main, want, 60)
            self.times["traffic to the last meter-hour in PostgreSQL"] = \
                time.monotonic() - self.marks["traffic"]
            log(f"PostgreSQL: {n} of {want} meter-hours")
            # past months go once acknowledged, in bounded steps between batches
            this = time.strftime("%Y-%m", time.gmtime())
            end = time.monotonic() + 30
            while time.monotonic() < end:
                left = sum(t.query("SELECT count(*) FROM readings WHERE strftime('%Y-%m', "
                                   "booked, 'unixepoch') <> ?", (this,))[0][0]
                           for t in self.towns)
                if not left:
                    break
                time.sleep(0.5)
            self.times["traffic to the past month deleted in every town"] = \
                time.monotonic() - self.marks["traffic"]
            log(f"past-month readings left in the towns: {left}")
        for i, (f, rc) in enumerate(zip(self.fleets, rcs)):
            d = f.done or {}
            self.res.check(f"town{i + 1}: every reading acknowledged", rc == 0 and d.get("done"),
                           f"{d.get('acked')}/{d.get('records')} records acked in "
                           f"{d.get('elapsed_ms', 0) / 1000:.1f} s, {d.get('reconnects')} "
                           f"reconnections, {d.get('resends')} go-back-N resends"
                           f" (exit {rc})")

    def sample_retention(self):
        """town1's past-month readings while its main link is down: every
        one its fleet made (they were acknowledged to the meters long ago)."""
        t, f = self.towns[0], self.fleets[0]
        this = time.strftime("%Y-%m", time.gmtime())
        held = t.query("SELECT count(*) FROM readings WHERE strftime('%Y-%m', booked, "
                       "'unixepoch') <> ?", (this,))[0][0]
        released = min(len(self.hours),
                       int((time.monotonic() - self.marks["traffic"]) * 1000 // PACE_MS) + 1)
        made = f.count * sum(1 for h in self.hours[:released] if month_of(h) != this)
        self.retained = (t.host, held, made)
        self.mark(f"retention sampled ({held} of {made})")

    def progressed(self, fleet, a, b):
        """Readings the fleet got acknowledged between marks a and b."""
        return fleet.acked_at(self.marks[b]) - fleet.acked_at(self.marks[a])

    def signed_commands(self):
        """commands.py: mainctl -> maind -> townd -> the fleet's meters."""
        if not self.cmds:
            commands.skip_all(self.res, self.cmds_why)
            return
        try:
            self.cmds.run(self.res)
        finally:
            for f in self.fleets:
                commands.release(f)

    def fault_checks(self):
        R = self.res
        cutf = self.fleets[self.cut_town]
        # settle: what was in flight when the link went down
        self.marks["cut+1"] = self.marks["cut"] + 1.0
        stalled = self.progressed(cutf, "cut+1", "restored")
        others = {f.town.host: self.progressed(f, "cut+1", "restored")
                  for f in self.fleets if f is not cutf}
        R.check("link cut: the cut town's meters stall, then catch up", stalled == 0 and
                cutf.done and cutf.done.get("done"),
                f"{cutf.town.host}: {stalled} readings acknowledged while its meter link was "
                "down, all acknowledged after")
        R.check("link cut: the other towns keep serving their meters",
                all(v > 0 for v in others.values()),
                ", ".join(f"{k} +{v}" for k, v in others.items()))
        kf = self.fleets[self.killed_town]
        self.marks["killed+1"] = self.marks["killed"] + 1.0
        stalled = self.progressed(kf, "killed+1", "restarted")
        others = {f.town.host: self.progressed(f, "killed+1", "restarted")
                  for f in self.fleets if f is not kf}
        rec = kf.done.get("reconnects", 0) if kf.done else 0
        R.check("townd killed and restarted: its meters reconnect and catch up",
                stalled == 0 and rec >= CONNS and kf.done and kf.done.get("done"),
                f"{kf.town.host}: {stalled} acknowledged while townd was down, {rec} "
                "reconnections, all acknowledged after")
        R.check("townd killed: the other towns keep serving their meters" +
                (" (it relays a loan)" if self.borrowing else ""),
                all(v > 0 for v in others.values()),
                ", ".join(f"{k} +{v}" for k, v in others.items()))
        df = self.fleets[-1]
        complete = bool(df.done and df.done.get("done"))
        if self.netem_why and self.nft_why:
            R.skip("loss on a town's meter link", f"{self.netem_why}; {self.nft_why}")
        else:
            v = self.progressed(df, "impaired", "impaired off")
            how = "netem" if self.netem_why is None else \
                f"nftables, {self.dropped} packets dropped (no netem here)"
            R.check("10 % loss on a town's meter link: readings keep coming",
                    v > 0 and complete and (self.netem_why is None or self.dropped > 0),
                    f"{df.town.host}: +{v} acknowledged under loss ({how}), all after")
        if self.netem_why:
            R.skip("40 ms delay (netem) on a town's meter link", self.netem_why)
        else:
            v = self.progressed(df, "impaired", "impaired off")
            R.check("40 ms delay (netem) on a town's meter link: readings keep coming",
                    v > 0 and complete, f"{df.town.host}: +{v} acknowledged under delay")
        self.marks["main cut+0.5"] = self.marks["main cut"] + 0.5
        served = {f.town.host: self.progressed(f, "main cut+0.5", "main back")
                  for f in self.fleets}
        R.check("main server unreachable: every town keeps serving its meters",
                all(v > 0 for v in served.values()),
                ", ".join(f"{k} +{v}" for k, v in served.items()))

    def storage_checks(self):
        R = self.res
        for t, f in zip(self.towns, self.fleets):
            rc = t.stop()
            R.check(f"{t.host}: townd stops cleanly", rc == 0, f"exit {rc}")
        this = time.strftime("%Y-%m", time.gmtime())
        for t, f in zip(self.towns, self.fleets):
            made, acked = f.record()
            if self.main:
                # past months go once the main server acknowledged them (checked in upper)
                made = {k: v for k, v in made.items() if month_of(v[0]) == this}
            stored, rows = t.readings()
            missing = [k for k in made if k not in stored]
            extra = [k for k in stored if k not in made]
            differ = [k for k in made if k in stored and stored[k] != made[k]]
            R.check(f"{t.host}: every reading stored exactly once, as made",
                    rows == len(made) and not missing and not extra and not differ,
                    f"{len(made)} made, {rows} rows; missing {missing[:3]}, extra {extra[:3]}, "
                    f"different {differ[:3]}")
            want, got = month_sums(made), t.month_totals()
            bad = [k for k in set(want) | set(got) if want.get(k) != got.get(k)]
            R.check(f"{t.host}: month totals are the sums of the readings", not bad,
                    f"{len(want)} (meter, month) totals over "
                    f"{len({k[1] for k in want})} months" if not bad else
                    f"differ at {sorted(bad)[:3]}: want {[want.get(k) for k in sorted(bad)[:3]]}"
                    f" got {[got.get(k) for k in sorted(bad)[:3]]}")

    def teardown(self):
        for f in self.fleets:
            if f.proc and f.proc.poll() is None:
                f.proc.kill()
        for t in self.towns:
            t.kill()
        upper.stop(self)
        self.net.teardown()


def main():
    res = Results()
    t_start = time.monotonic()
    why = None
    if os.geteuid() != 0:
        why = "needs root for network namespaces"
    elif netns.tools_missing():
        why = f"iproute2 missing ({netns.tools_missing()}): scripts/deps.sh installs it"
    if why:
        res.skip("town network", why)
        res.summary()
        return 0
    subprocess.run(["rm", "-rf", WORK])
    os.makedirs(WORK)
    netns.clean_stale(log)
    sc = Scenario(res)
    try:
        t0 = time.monotonic()
        build()
        sc.times["build"] = time.monotonic() - t0
        sc.topology()
        sc.provision()
        if sc.upper_setup() and sc.start_towns():
            sc.links()
            hours = hours_plan(time.time())
            log(f"{METERS} meters per town, {len(hours)} hourly readings each, from "
                f"{time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime(hours[0]))} to "
                f"{time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime(hours[-1]))}")
            sc.traffic(hours)
            sc.signed_commands()
            sc.fault_checks()
            sc.storage_checks()
            if sc.alloc:
                upper.alloc_check(sc, res)
            else:
                res.skip("allocation in a town: the meters' requests granted from the "
                         "town's pool", sc.have["C"])
        upper.checks(sc, res, log)
    except Exception:
        res.check("town network scenario", False, "raised:\n" + traceback.format_exc())
    finally:
        hold = int(os.environ.get("GM_TOWNNET_HOLD", "0"))
        if hold:
            log(f"GM_TOWNNET_HOLD: the rig stays up {hold} s (namespaces {sc.net.prefix}*)")
            time.sleep(hold)
        t0 = time.monotonic()
        sc.teardown()
        sc.times["teardown"] = time.monotonic() - t0
        left = [n for n in netns.ns_list() if n.startswith(sc.net.prefix)]
        res.check("teardown: no namespace left", not left, f"left: {left}" if left else "")
    for k, v in sc.times.items():
        log(f"time: {k}: {v:.1f} s")
    log(f"time: whole stage: {time.monotonic() - t_start:.1f} s")
    res.summary()
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
