# SPDX-License-Identifier: GPL-2.0
"""The parts of the town network test that need the main server and the
town-to-town parts of issue 12 (design12.md). Each check probes for what it
needs and is skipped, with the reason, while that is not in the tree:

- part A: maind and mainctl (server/maind/), scripts/pg-cluster.sh (a
  PostgreSQL 15 primary and a streaming hot standby under build/, unix
  sockets, started in `main` with maind);
- part B: townd's [upstream] section (hours to maind, administrative mode,
  month retention);
- part E: townd's [neighbour] sections (borrowing between towns).
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from netns import sh

TOP = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MAIN_PORT = 7800


def townd_accepts(town, section):
    """townd --check on the town's configuration with `section` added:
    (ok, output). A reader that does not know a section says
    "unknown section [name]"."""
    with open(town.conf) as f:
        base = f.read()
    with tempfile.NamedTemporaryFile("w", dir=town.dir, suffix=".conf", delete=False) as f:
        f.write(base + "\n" + section)
        path = f.name
    saved, town.conf = town.conf, path
    try:
        return town.check_config()
    finally:
        town.conf = saved
        os.unlink(path)


def probe(sc, bindir):
    """What of parts A, B and E this tree has: {part: None, or why not}."""
    have = {}
    if not os.access(os.path.join(bindir, "maind"), os.X_OK):
        have["A"] = "no maind in this tree yet (part A: server/maind/)"
    elif not os.access(os.path.join(TOP, "scripts", "pg-cluster.sh"), os.X_OK):
        have["A"] = "no scripts/pg-cluster.sh in this tree yet (part A)"
    elif not os.access("/usr/lib/postgresql/15/bin/initdb", os.X_OK):
        have["A"] = "postgresql-15 is not installed (scripts/deps.sh installs it)"
    else:
        have["A"] = None
    town = sc.towns[0]
    _ok, out = townd_accepts(town, "[upstream]\naddress = 10.212.1.1:7800\nmain_public_key = "
                             + "00" * 32 + f"\ntown_id = 1\noutbox = {town.dir}/probe\n")
    have["B"] = "townd has no [upstream] yet (part B: unknown section)" \
        if "unknown section [upstream]" in out else None
    _ok, out = townd_accepts(town, "[town]\ngrid_capacity_w = 1000\n")
    have["C"] = "townd has no [town] grid_capacity_w yet (part C)" \
        if "unknown" in out else None
    _ok, out = townd_accepts(town, "[neighbour]\n")
    have["E"] = "townd has no [neighbour] yet (part E: unknown section)" \
        if "unknown section [neighbour]" in out else None
    return have


def psql_bin():
    for p in ("/usr/lib/postgresql/15/bin/psql", "/usr/bin/psql"):
        if os.access(p, os.X_OK):
            return p
    return "psql"


class Main:
    """The main server's host: PostgreSQL primary and hot standby
    (scripts/pg-cluster.sh) and maind, all in the `main` namespace."""

    def __init__(self, sc, bindir, log):
        self.sc, self.net, self.log = sc, sc.net, log
        self.bin = bindir
        self.dir = os.path.join(sc.workdir, "main")
        self.pgdir = os.path.join(self.dir, "pg")
        self.conf = os.path.join(self.dir, "maind.conf")
        self.key = os.path.join(self.dir, "maind.key")
        self.log_path = os.path.join(self.dir, "maind.log")
        self.proc = None
        self.starts = 0
        os.makedirs(self.dir, exist_ok=True)

    def pg(self, *args):
        r = sh(self.net.exec_args("main", [os.path.join(TOP, "scripts", "pg-cluster.sh"),
                                           *args]))
        lines = r.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def setup(self, towns):
        t0 = time.monotonic()
        self.primary = self.pg("start", self.pgdir)
        self.standby = self.pg("standby", self.pgdir)
        self.pubkey = sh([os.path.join(self.bin, "mainctl"), "keygen", self.key]).stdout.strip()
        with open(self.conf, "w") as f:
            f.write(f"""# town network test: the main server
[server]
listen = 0.0.0.0:{MAIN_PORT}
key_file = {self.key}
conninfo = {self.primary}
report_conninfo = {self.standby}
""")
        self.ctl("schema")
        for t in towns:
            self.ctl("add-town", str(t.id), t.pubkey, t.host)
        self.sc.times["main: PostgreSQL primary, standby, maind provisioned"] = \
            time.monotonic() - t0

    def ctl(self, *args):
        return sh([os.path.join(self.bin, "mainctl"), "-c", self.conf, *args]).stdout

    def sql(self, q, standby=False):
        r = sh([psql_bin(), self.standby if standby else self.primary, "-XAtq", "-F", " ",
                "-c", q])
        return [line.split(" ") for line in r.stdout.splitlines() if line]

    def start(self):
        log = open(self.log_path, "a")
        log.write(f"--- start {self.starts + 1} at {time.time():.3f}\n")
        log.flush()
        self.proc = subprocess.Popen(
            self.net.exec_args("main", [os.path.join(self.bin, "maind"), "-c", self.conf]),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.starts += 1

    def wait_ready(self, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            with open(self.log_path) as f:
                if f.read().count("maind: ready") >= self.starts:
                    return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None
        try:
            self.pg("stop", self.pgdir)
        except RuntimeError as e:
            self.log(f"pg-cluster stop: {e}")

    # ---- what PostgreSQL holds ---------------------------------------------------
    def meter_hours(self, standby=False):
        """{(town, meter, hour): [import, export, renew, readings, flags, rev, periods]}
        summed over tariff periods."""
        out = {}
        for r in self.sql("SELECT town, meter, extract(epoch FROM hour)::bigint, import_mwh, "
                          "export_mwh, renew_mwh, readings, flags, rev FROM meter_hours",
                          standby):
            k = (int(r[0]), int(r[1]), int(r[2]))
            v = out.setdefault(k, [0, 0, 0, 0, 0, 0, 0])
            for i in range(4):
                v[i] += int(r[3 + i])
            v[4] |= int(r[7])
            v[5] = max(v[5], int(r[8]))
            v[6] += 1
        return out

    def count_hours(self, standby=False):
        return int(self.sql("SELECT count(*) FROM meter_hours", standby)[0][0])


def town_upstream(town, main_addr, main_pk, town_keys=""):
    """The [town] and [upstream] sections a town of the test gets: hours
    sent every second, administrative mode after 2 s without an ack;
    town_keys: more [town] keys."""
    return f"""
[town]
hour_grace = 300
{town_keys}
[upstream]
address = {main_addr}:{MAIN_PORT}
main_public_key = {main_pk}
town_id = {town.id}
outbox = {town.dir}/upstream
interval = 1
admin_after = 2
reconnect_max = 1
"""


# Borrowing (part E, with part C's allocation): town1 asks 5 x 1000 W with
# 1000 W of its own; town2 and town3 have nothing to give; town4 has
# 20 000 W. The chain forces the loan from town4 through town3 and town2.
BORROW_ASK = {1: 1000, 2: 1000, 3: 1000, 4: 1000, 5: 1000}
BORROW_CAPACITY = {1: 1000, 2: 0, 3: 0, 4: 20000}
NEIGHBOUR_PORT = 7710


BASE_W = 10000  # a meter's base allocation: grants are base + share


def town_capacity(town):
    """The [town] keys of the town's allocation: its grid capacity for the
    borrowing test, and the meters' base allocation."""
    return f"grid_capacity_w = {BORROW_CAPACITY.get(town.id, 0)}\nmeter_allocation_w = {BASE_W}\n"


def town_borrowing(sc, town):
    """[town_network] and a [neighbour ID] per chain neighbour."""
    out = f"\n[town_network]\nlisten = 0.0.0.0:{NEIGHBOUR_PORT}\nhop_limit = 3\nlease = 10\n"
    for other in sc.towns:
        if abs(other.id - town.id) != 1:
            continue
        link = sc.net.link(town.host, other.host)
        out += f"""
[neighbour {other.id}]
address = {link.addr[other.host]}:{NEIGHBOUR_PORT}
public_key = {other.pubkey}
cost = 1
outbox = {town.dir}/neighbour-{other.id}
"""
    return out


def borrow_alloc(town):
    """The fleet's allocation requests in this town ({meter: W})."""
    return BORROW_ASK if town.id == 1 else {}


def alloc_check(sc, res):
    """town1's meters ask BORROW_ASK with BORROW_CAPACITY[1] of its own:
    without borrowing they share what the town has, max-min fair (equal
    asks: equal shares, to the watt the division leaves), each at most what
    it asked; with borrowing they get all of it. A grant is the meter's
    absolute allocation: base + share."""
    f = sc.fleets[0]
    granted = {m: f.granted.get(m, 0) - BASE_W for m in BORROW_ASK}
    asked = sum(BORROW_ASK.values())
    want = asked if sc.borrowing else min(asked, BORROW_CAPACITY[1])
    over = {m: w for m, w in granted.items() if w > BORROW_ASK[m] or w < 0}
    others = {m: w for m, w in f.granted.items() if m not in BORROW_ASK and w}
    fair = len(set(BORROW_ASK.values())) > 1 or \
        max(granted.values()) - min(granted.values()) <= 1
    res.check("allocation in a town: the meters' requests granted from the town's pool"
              + (" and its loan" if sc.borrowing else ""),
              sum(granted.values()) == want and not over and not others and fair,
              f"{len(BORROW_ASK)} meters asked {asked} W with {BORROW_CAPACITY[1]} W in the pool"
              f": granted base {BASE_W} + {sorted(granted.values())} (sum {sum(granted.values())}"
              f", want {want})"
              + (f"; beyond the request {over}" if over else "")
              + (f"; granted without asking {others}" if others else ""))


def loans(town):
    return town.query("SELECT lender, loan_id, origin, role, phase, end_state, power_w, up, "
                      "down FROM loans")


def borrow_checks(sc, res, main):
    """The loan from town4 to town1 through town3 and town2, as each side
    and maind recorded it."""
    n = len(sc.towns)
    seg = {t.id: loans(t) for t in sc.towns}
    far = sc.towns[-1].id
    mine = [r for r in seg[1] if r[3] == "borrower" and r[0] == far]
    chain_ok = bool(mine)
    detail = []
    for lender, loan_id, _o, _role, phase, _e, power, _u, _d in mine:
        roles = {t.id: [r for r in seg[t.id] if r[0] == lender and r[1] == loan_id]
                 for t in sc.towns}
        want = {1: "borrower", far: "lender", **{i: "relay" for i in range(2, far)}}
        for tid, rows in roles.items():
            if len(rows) != 1 or rows[0][3] != want[tid] or rows[0][6] != power:
                chain_ok = False
                detail.append(f"town{tid}: {rows}")
    # grants are absolute allocations: base + share
    granted = sum(sc.fleets[0].granted.get(m, 0) - BASE_W for m in BORROW_ASK)
    asked = sum(BORROW_ASK.values())
    # what is open is exactly what town1 lacks (a loan cut by the faults
    # ends on every side and is replaced, never added to)
    open_w = sum(r[6] for r in mine if r[4] == "open")
    short = asked - BORROW_CAPACITY[1]
    res.check(f"a town {n - 1} hops away lends through {n - 2} intermediaries",
              chain_ok and granted == asked and open_w == short,
              f"town1 borrows {open_w} W (lacks {short} W) in "
              f"{sum(1 for r in mine if r[4] == 'open')} open loans from town{far} "
              f"({len(mine)} in all), every segment on the chain agreeing; town1's meters "
              f"granted base + {granted} of {asked} W"
              + ("; " + "; ".join(detail[:3]) if detail else ""))
    # every loan: the same phase on every segment, and maind's reports agree
    bad = []
    keys = {(r[0], r[1]) for rows in seg.values() for r in rows if r[4] != "offered"}
    reported = {}
    for r in main.sql("SELECT town, lender, loan_id, state, power_w FROM loans"):
        reported[(int(r[0]), int(r[1]), int(r[2]))] = (int(r[3]), int(r[4]))
    for k in keys:
        rows = {tid: [r for r in rows if (r[0], r[1]) == k] for tid, rows in seg.items()}
        phases = {r[4] for rs in rows.values() for r in rs}
        if len(phases) != 1:
            bad.append(f"loan {k}: phases {rows}")
        for tid, rs in rows.items():
            for r in rs:
                if r[4] not in ("open", "ended"):
                    continue
                rep_ = reported.get((tid, k[0], k[1]))
                state = 0 if r[4] == "open" else r[5]
                if rep_ != (state, r[6]):
                    bad.append(f"loan {k} at town{tid}: {r[4]}/{r[5]} {r[6]} W, maind has "
                               f"{rep_}")
    res.check("loans consistent on every side and at maind after cuts and restarts", not bad,
              "; ".join(bad[:3]) or f"{len(keys)} loans, every segment and report agreeing")


def journal(town, like):
    return town.query("SELECT at, what FROM journal WHERE what LIKE ? ORDER BY rowid", (like,))


def wait_pg_complete(sc, main, want, timeout):
    """Poll PostgreSQL until it holds `want` meter-hours (or timeout)."""
    end = time.monotonic() + timeout
    n = 0
    while time.monotonic() < end:
        n = main.count_hours()
        if n >= want:
            break
        time.sleep(0.5)
    return n


def checks(sc, res, log):
    """The checks of the parts beyond the towns' own storage."""
    have = sc.have
    a, b, e = have["A"], have["B"], have["E"]
    ab = a or b
    main = sc.main
    if a:
        res.skip("PostgreSQL primary and streaming hot standby in main", a)
    else:
        rep = main.sql("SELECT state FROM pg_stat_replication")
        rec = main.sql("SELECT pg_is_in_recovery()", standby=True)
        res.check("PostgreSQL primary and streaming hot standby in main",
                  rep == [["streaming"]] and rec == [["t"]],
                  f"primary's replication: {rep}, standby in recovery: {rec}")
    if ab:
        for name in ("every meter-hour in PostgreSQL exactly once, equal to the fleets' sums",
                     "every town's record sequence stored once, without gap (received)",
                     "the hot standby holds the same meter-hours as the primary",
                     "administrative mode while the main link is down; backlog complete after",
                     "a past month kept while not acknowledged, deleted after"):
            res.skip(name, ab)
    else:
        upstream_checks(sc, res, log, main)
    if ab or e:
        n = len(sc.towns)
        res.skip(f"a town {n - 1} hops away lends through {n - 2} intermediaries", e or ab)
        res.skip("loans consistent on every side and at maind after cuts and restarts",
                 e or ab)
    else:
        borrow_checks(sc, res, main)


def upstream_checks(sc, res, log, main):
    from fleet import hour_sums
    want = {}
    for t, f in zip(sc.towns, sc.fleets):
        made, _acked = f.record()
        for (meter, hour), v in hour_sums(made).items():
            want[(t.id, meter, hour)] = v
    got = main.meter_hours()
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    differ = [k for k in want if k in got and tuple(got[k][:4]) != want[k]]
    revs = [k for k in got if got[k][5] != 0 or got[k][6] != 1]
    res.check("every meter-hour in PostgreSQL exactly once, equal to the fleets' sums",
              not missing and not extra and not differ and not revs,
              f"{len(want)} meter-hours expected, {len(got)} held; missing {len(missing)} "
              f"{sorted(missing)[:2]}, extra {len(extra)} {sorted(extra)[:2]}, different "
              f"{len(differ)} {[(k, got[k][:4], want[k]) for k in sorted(differ)[:2]]}, "
              f"revised or split {len(revs)}")
    if missing or extra or differ:
        for r in main.sql("SELECT t.id, t.upto, t.last_seen, t.hello_upto, t.hello_next_seq, "
                          "(SELECT count(*) FROM meter_hours h WHERE h.town = t.id) "
                          "FROM towns t ORDER BY t.id"):
            log("maind: town {} upto {} last_seen {} hello_upto {} hello_next_seq {} "
                "meter-hours {}".format(*r))
        for t in sc.towns:
            log(f"{t.host}: " + " ".join(
                line.strip() for line in t.ctl("stats", check=False).splitlines()
                if any(w in line for w in ("upstream", "admin", "hour", "outbox"))))
    gaps = []
    for t in sc.towns:
        rows = main.sql(f"SELECT first_seq, last_seq FROM received WHERE town = {t.id} "
                        "ORDER BY first_seq")
        upto = main.sql(f"SELECT upto FROM towns WHERE id = {t.id}")
        nxt = 1
        for r in rows:
            if int(r[0]) != nxt:
                gaps.append(f"{t.host}: {nxt}..{int(r[0]) - 1} at {r}")
            nxt = int(r[1]) + 1
        if not upto or int(upto[0][0]) != nxt - 1:
            gaps.append(f"{t.host}: upto {upto} but ranges end at {nxt - 1}")
    res.check("every town's record sequence stored once, without gap (received)", not gaps,
              "; ".join(gaps[:4]) or f"{len(sc.towns)} towns, ranges contiguous from 1 to upto")
    end = time.monotonic() + 15
    while time.monotonic() < end and main.count_hours(standby=True) != len(got):
        time.sleep(0.5)
    sb = main.meter_hours(standby=True)
    res.check("the hot standby holds the same meter-hours as the primary", sb == got,
              f"{len(sb)} on the standby, {len(got)} on the primary")
    # administrative mode: town1's main link was down from the start to
    # "town1 main back"; every main link in "main cut" .. "main back"
    bad = []
    for t in sc.towns:
        ent = journal(t, "administrative mode: entered%")
        left = journal(t, "administrative mode: left%")
        since = t.query("SELECT value FROM meta WHERE name = 'admin_since'")
        if not ent or not left or len(left) < len(ent) or (since and since[0][0]):
            bad.append(f"{t.host}: entered {len(ent)}, left {len(left)}, admin_since {since}")
    res.check("administrative mode while the main link is down; backlog complete after",
              not bad and not missing,
              "; ".join(bad) or f"every town entered and left it ({sc.towns[0].host}: "
              f"{len(journal(sc.towns[0], 'administrative mode: entered%'))} times); "
              "every meter-hour in PostgreSQL after")
    # retention: sampled while town1's main link was down
    held = sc.retained
    now_month = time.strftime("%Y-%m", time.gmtime())
    left = {t.host: t.query("SELECT count(*) FROM readings WHERE strftime('%Y-%m', booked, "
                            "'unixepoch') <> ?", (now_month,))[0][0] for t in sc.towns}
    res.check("a past month kept while not acknowledged, deleted after",
              held is not None and held[1] == held[2] and all(v == 0 for v in left.values()),
              f"{sc.towns[0].host} held {held[1] if held else '?'} of its "
              f"{held[2] if held else '?'} past-month readings while its main link was down; "
              f"past-month readings left at the end: {left}")


def stop(sc):
    if sc.main:
        sc.main.stop()


def clean(sc):
    if sc.main:
        shutil.rmtree(sc.main.pgdir, ignore_errors=True)
