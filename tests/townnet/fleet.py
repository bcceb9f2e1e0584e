# SPDX-License-Identifier: GPL-2.0
"""A town's simulated meters: tests/server/simfleet run in the town's
meter network (its own namespace, one access link to the town), its
progress followed as it runs, and its record of every reading it made
turned into the sums the test expects."""
import json
import os
import subprocess
import threading
import time

from netns import sh


def month_of(t):
    return time.strftime("%Y-%m", time.gmtime(t))


class Fleet:
    def __init__(self, net, host, town, addr, first, count, seed, bindir):
        self.net, self.host, self.town = net, host, town
        self.addr, self.first, self.count, self.seed = addr, first, count, seed
        self.bin = os.path.join(bindir, "simfleet")
        self.record_path = os.path.join(town.dir, "fleet.rec")
        self.log_path = os.path.join(town.dir, "fleet.log")
        self.progress = []  # (monotonic s, acked, made, conns up, reconnects)
        self.done = None
        self.proc = None
        self.stay = None        # a file: the fleet stays for commands until it exists
        self.extra_args = []    # e.g. the operator keys (commands.py)

    def keys(self):
        out = sh([self.bin, "keys", str(self.seed), str(self.first), str(self.count)]).stdout
        return [(int(a), b) for a, b in (line.split() for line in out.splitlines())]

    def start(self, hours, pace_ms, conns, timeout_s, alloc=None, until_granted=None):
        """alloc: {meter: watts} of the meters that ask (> 0) or offer (< 0);
        until_granted: the base allocation W; the fleet then stays until each
        meter that asked holds base + its request."""
        args = [self.bin, "run", "--town", f"{self.addr}:7700", "--town-pk", self.town.pubkey,
                "--seed", str(self.seed), "--first", str(self.first), "--count", str(self.count),
                "--conns", str(conns), "--hours", ",".join(str(h) for h in hours),
                "--pace-ms", str(pace_ms), "--timeout", str(timeout_s),
                "--record", self.record_path] + self.extra_args
        if alloc:
            args += ["--alloc", ",".join(f"{m}:{w}" for m, w in sorted(alloc.items()))]
            if until_granted is not None:
                args += ["--until-granted", str(until_granted)]
        self.proc = subprocess.Popen(self.net.exec_args(self.host, args), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with open(self.log_path, "w") as log:
            for line in self.proc.stdout:
                log.write(line)
                f = line.split(maxsplit=1)
                if f and f[0] == "P":
                    v = [int(x) for x in f[1].split()]
                    self.progress.append((time.monotonic(), v[1], v[2], v[3], v[4]))
                elif f and f[0] == "D":
                    self.done = json.loads(f[1])

    def wait(self, timeout):
        """The exit status; a fleet that stays for commands: 0 once its
        readings are all acknowledged (it keeps running), 1 if not in time."""
        if self.stay and not os.path.exists(self.stay):
            end = time.monotonic() + timeout
            while time.monotonic() < end and self.done is None and self.proc.poll() is None:
                time.sleep(0.1)
            if self.done is not None:
                return 0 if self.done.get("done") else 1
            return self.proc.poll() if self.proc.poll() is not None else 1
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.reader.join(5)
        return rc

    def acked_at(self, t):
        """Readings acknowledged at monotonic time t (the last report before)."""
        v = 0
        for p in self.progress:
            if p[0] > t:
                break
            v = p[1]
        return v

    def acked_now(self):
        return self.progress[-1][1] if self.progress else 0

    def record(self):
        """What the fleet made: {(meter, seq): (start, interval, import,
        export, renew, flags)} and {meter: acked upto}; its allocation
        requests {(meter, seq): (req_id, watts, duration)} and the watts
        each meter was last granted, {meter: W}, in self.allocs and
        self.granted."""
        readings, acked = {}, {}
        self.allocs, self.granted = {}, {}
        self.signed, self.relay = {}, {}
        with open(self.record_path) as f:
            for line in f:
                v = line.split()
                n = [int(x) for x in v[1:]] if v[0] != "X" else []
                if v[0] == "R":
                    readings[(n[0], n[1])] = tuple(n[2:])
                elif v[0] == "Q":
                    self.allocs[(n[0], n[1])] = tuple(n[2:])
                elif v[0] == "A":
                    acked[n[0]] = n[1]
                    self.granted[n[0]] = n[6]
                    self.relay[n[0]] = n[7]
                elif v[0] == "X":       # METER TSEQ CMD_ID ACTION STATUS
                    self.signed.setdefault(int(v[1]), []).append(
                        (int(v[2]), int(v[3]), v[4], int(v[5])))
        return readings, acked


def month_sums(readings):
    """{(meter, YYYY-MM of start): (import, export, renew, readings)}: what
    a town's month_totals must say (readings with a trusted clock are
    booked at their start)."""
    out = {}
    for (meter, _seq), r in readings.items():
        k = (meter, month_of(r[0]))
        s = out.get(k, (0, 0, 0, 0))
        out[k] = (s[0] + r[2], s[1] + r[3], s[2] + r[4], s[3] + 1)
    return out


def hour_sums(readings):
    """{(meter, hour): (import, export, renew, readings)}: the meter-hours
    the main server must hold (every tariff period summed: the fleet's
    meters have no tariff, so all of it is period 0)."""
    out = {}
    for (meter, _seq), r in readings.items():
        k = (meter, r[0] - r[0] % 3600)
        s = out.get(k, (0, 0, 0, 0))
        out[k] = (s[0] + r[2], s[1] + r[3], s[2] + r[4], s[3] + 1)
    return out
