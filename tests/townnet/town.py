# SPDX-License-Identifier: GPL-2.0
"""One town of the town network test: a real townd (build/x86_64/bin) in
its namespace, its configuration, key and SQLite database in its own
directory, its meters provisioned with `townctl add`."""
import os
import signal
import sqlite3
import subprocess
import time

from netns import sh

PORT = 7700


class Town:
    def __init__(self, net, host, town_id, workdir, bindir):
        self.net, self.host, self.id = net, host, town_id
        self.dir = os.path.join(workdir, host)
        self.bin = bindir
        self.conf = os.path.join(self.dir, "townd.conf")
        self.db_path = os.path.join(self.dir, "town.db")
        self.key = os.path.join(self.dir, "townd.key")
        self.log_path = os.path.join(self.dir, "townd.log")
        self.proc = None
        self.starts = 0
        self.extra = ""  # [upstream], [neighbour] sections, once their parts exist
        os.makedirs(self.dir, exist_ok=True)

    def write_config(self):
        with open(self.conf, "w") as f:
            f.write(f"""# town network test: {self.host} (town id {self.id})
[server]
listen = 0.0.0.0:{PORT}
database = {self.db_path}
key_file = {self.key}
stats_interval = 1
{self.extra}""")

    def ctl(self, *args, check=True):
        r = sh([os.path.join(self.bin, "townctl"), "-c", self.conf, *args], check=check)
        return r.stdout

    def init_key(self):
        self.write_config()
        self.ctl("init-key")
        self.pubkey = self.ctl("pubkey").strip()
        return self.pubkey

    def provision(self, keys):
        """keys: [(meter id, public key hex)], the meters' own keys, added as
        an installer enrols a street of meters: townctl add-list, one
        transaction (1200 townctl add calls took 8-39 s)."""
        path = os.path.join(self.dir, "meters.list")
        with open(path, "w") as f:
            for mid, pk in keys:
                f.write(f"{mid} {pk} {self.host}-m{mid}\n")
        self.ctl("add-list", path)

    def check_config(self):
        """townd --check on the current configuration: (ok, output)."""
        r = sh(self.net.exec_args(self.host, [os.path.join(self.bin, "townd"), "-c", self.conf,
                                               "--check"]), check=False)
        return r.returncode == 0, r.stdout.strip()

    def start(self):
        log = open(self.log_path, "a")
        log.write(f"--- start {self.starts + 1} at {time.time():.3f}\n")
        log.flush()
        self.proc = subprocess.Popen(
            self.net.exec_args(self.host, [os.path.join(self.bin, "townd"), "-c", self.conf]),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.starts += 1

    def wait_ready(self, timeout=10):
        """townd logs "ready" once it listens."""
        end = time.time() + timeout
        while time.time() < end:
            with open(self.log_path) as f:
                if f.read().count("townd: ready") >= self.starts:
                    return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def kill(self):
        """A crash: SIGKILL, nothing flushed."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self, timeout=10):
        """SIGTERM, as systemd stops it; exit status (None: had to kill)."""
        if not self.proc:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        rc, self.proc = self.proc.returncode, None
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def query(self, sql, args=()):
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def meters(self):
        return self.query("SELECT COUNT(*) FROM meters")[0][0]

    def readings(self):
        """{(meter, seq): (start, interval, import, export, renew, flags)} and
        the number of rows (a key twice would make them differ)."""
        rows = self.query("SELECT meter, seq, start, interval_s, import_mwh, export_mwh, "
                          "renew_mwh, flags FROM readings")
        return {(r[0], r[1]): tuple(r[2:]) for r in rows}, len(rows)

    def month_totals(self):
        return {(r[0], r[1]): tuple(r[2:]) for r in self.query(
            "SELECT meter, month, import_mwh, export_mwh, renew_mwh, readings FROM month_totals")}
