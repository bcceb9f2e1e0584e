# SPDX-License-Identifier: GPL-2.0
"""A private system bus and meterd for the bridge's tests (tests/mqtt/).

Starts dbus-daemon with a permissive private configuration (as
tests/web/dashboard-run.sh does) and meterd with the replay sensor, the fake
relay backend and --test-hooks, so that a test sets the house's measured
power (org.gridmeter.Meter1.Test.InjectReading) and the town's grant
(SetGridAllocation). Properties are read and methods called with busctl.
Group authorisation: the tests run as root, whom meterd always allows.
"""
import json
import os
import subprocess
import time

M = ["org.gridmeter.Meter1", "/org/gridmeter/Meter1"]
IFACE = "org.gridmeter.Meter1"
TEST = "org.gridmeter.Meter1.Test"

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><listen>unix:path={d}/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/>
<allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>
"""


def stop_procs(procs, grace=None):
    """Stop those of procs still running: SIGTERM and grace seconds before SIGKILL, or at once
    SIGKILL (grace None)."""
    for p in procs:
        if p.poll() is not None:
            continue
        if grace is not None:
            p.terminate()
            try:
                p.wait(grace)
                continue
            except subprocess.TimeoutExpired:
                pass
        p.kill()
        p.wait()


class MeterEnv:
    """dbus-daemon + meterd in directory d; loads: [(name, watts, priority)] switch = external."""

    def __init__(self, d, meterd, loads, grant_w=8000, settle=1, restore_delay=2, margin=200,
                 stale_after=10, currency="GBP"):
        self.d = d
        self.meterd_exe = meterd
        self.procs = []
        self.meterd = None
        os.makedirs(os.path.join(d, "state"), mode=0o755, exist_ok=True)
        os.makedirs(os.path.join(d, "run"), exist_ok=True)
        with open(os.path.join(d, "bus.conf"), "w") as f:
            f.write(BUS_CONF.format(d=d))
        r, w = os.pipe()
        bus = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile", f"--print-address={w}",
                                "--config-file", os.path.join(d, "bus.conf")], pass_fds=(w,),
                               stderr=open(os.path.join(d, "dbus.log"), "w"))
        os.close(w)
        self.procs.append(bus)
        with os.fdopen(r) as f:
            self.address = f.readline().strip()
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        with open(os.path.join(d, "replay"), "w") as f:
            f.write("230000 20000 4600000 1000 50000\n")
        conf = [
            "[meter]", "timezone = UTC", "interval = 900", "sample_interval_ms = 100", "clock = system",
            "[sensors]", "backend = replay", f"replay_file = {d}/replay",
            "[protection]", "reclose_delay = 1", "lockout_trips = 5", "lockout_window = 60",
            "over_current = 100",
            "[relays]", "backend = fake",
            "[allocation]", f"grid_allocation = {grant_w}", f"settle = {settle}",
            f"restore_delay = {restore_delay}", f"restore_margin = {margin}",
            "[tariff]", "type = tou", f"currency = {currency}",
            "rates = peak:35.5, offpeak:12.25, shoulder:24",
            "weekday = 00:00-07:00 offpeak, 07:00-16:00 shoulder, 16:00-19:00 peak, 19:00-24:00 shoulder",
            "weekend = 00:00-24:00 offpeak",
            "[store]", f"state_dir = {d}/state", f"runtime_dir = {d}/run",
            "[dbus]", "property_interval_ms = 1000", "authorization = group",
        ]
        for name, watts, prio in loads:
            conf += [f"[load.{name}]", "switch = external", f"load = {watts}", f"priority = {prio}",
                     f"stale_after = {stale_after}"]
        self.conf = os.path.join(d, "meterd.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.start_meterd()

    def start_meterd(self):
        self.meterd = subprocess.Popen([self.meterd_exe, "-c", self.conf, "--test-hooks"],
                                       stderr=open(os.path.join(self.d, "meterd.log"), "a"))
        self.procs.append(self.meterd)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if self.prop("MainRelay") is not None:
                return
            time.sleep(0.1)
        raise RuntimeError("meterd did not appear on the bus: see " + os.path.join(self.d, "meterd.log"))

    def stop_meterd(self):
        self.meterd.terminate()
        self.meterd.wait(10)

    def busctl(self, *args):
        return subprocess.run(["busctl", f"--address={self.address}", *args], capture_output=True,
                              text=True, timeout=10)

    def prop(self, name):
        r = self.busctl("--json=short", "get-property", *M, IFACE, name)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)["data"]

    def loads(self):
        """{name: dict(switch, state, wanted_on, shed, reachable, measured_w)}."""
        v = self.prop("Loads") or []
        keys = ("switch", "state", "wanted_on", "shed", "reachable", "measured_w")
        return {x[0]: dict(zip(keys, x[1:])) for x in v}

    def inject_power(self, watts):
        amps_ma = int(watts * 1000 / 230)
        r = self.busctl("call", *M, TEST, "InjectReading", "a{sx}", "5", "voltage_mv", "230000",
                        "current_ma", str(amps_ma), "power_mw", str(int(watts * 1000)), "pf_milli", "1000",
                        "frequency_mhz", "50000")
        if r.returncode != 0:
            raise RuntimeError("InjectReading: " + r.stderr)

    def set_grant(self, watts):
        r = self.busctl("call", *M, TEST, "SetGridAllocation", "x", str(watts))
        if r.returncode != 0:
            raise RuntimeError("SetGridAllocation: " + r.stderr)

    def wait(self, pred, timeout=10.0, step=0.1):
        """Poll pred() until it is true: the value, or None after timeout."""
        end = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() >= end:
                return None
            time.sleep(step)

    def close(self):
        stop_procs(reversed(self.procs), grace=5)
