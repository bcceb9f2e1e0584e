#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The simulated Tasmota plug against a real mosquitto: what the bridge will rely on.

Starts tests/mqtt/broker.sh on a free port, one simulated plug, and checks as an
observer: LWT Online retained; the empty cmnd POWER at connect; POWER OFF/ON/toggle
replies on stat RESULT and stat POWER; SENSOR's ENERGY keys in the firmware's order
with Power = the configured load while on and 0 while off; Status 10 without
Period; the relay state surviving a restart (PowerOnState 3); the broker's will
(Offline, retained) when the plug dies (SIGKILL) and when it hangs (SIGSTOP,
after 1.5 x keepalive); a wrong password refused; another plug's topics denied.
Exit 0 on success, 1 with the failures listed, 77 when mosquitto or paho is missing.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

try:
    import paho.mqtt.client as mqtt
except ImportError:
    print("SKIP: python3-paho-mqtt not installed")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meterd_env import stop_procs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ENERGY_ORDER = ["TotalStartTime", "Total", "Yesterday", "Today", "Period", "Power",
                "ApparentPower", "ReactivePower", "Factor", "Voltage", "Current"]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def usage_or_missing(doc, tools):
    """The exit status if the test cannot run (no EXE METERD arguments: 2, a tool missing: 77),
    else None."""
    if len(sys.argv) != 3:
        print(doc)
        return 2
    for tool in tools:
        if not shutil.which(tool):
            print(f"SKIP: {tool} not installed")
            return 77
    return None


def exit_status():
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Observer:
    def __init__(self, port, user="observer", password="opw"):
        self.msgs = []
        self.times = []  # time.monotonic() of each message's arrival, beside msgs
        self.cv = threading.Condition()
        self.rc = None
        self.c = mqtt.Client(client_id=f"obs-{user}-{os.getpid()}")
        self.c.username_pw_set(user, password)
        self.c.on_message = self._msg
        self.c.on_connect = self._conn
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()

    def _conn(self, c, u, f, rc):
        with self.cv:
            self.rc = rc
            self.cv.notify_all()
        if rc == 0:
            c.subscribe("#", 1)

    def _msg(self, c, u, m):
        with self.cv:
            self.msgs.append((m.topic, m.payload.decode("utf-8", "replace"), m.retain))
            self.times.append(time.monotonic())
            self.cv.notify_all()

    def wait(self, pred, timeout=10.0, since=0):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for i in range(since, len(self.msgs)):
                    if pred(*self.msgs[i]):
                        return i, self.msgs[i]
                left = end - time.monotonic()
                if left <= 0:
                    return None, None
                self.cv.wait(left)

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()


def main():
    if not shutil.which("mosquitto") or not shutil.which("mosquitto_passwd"):
        print("SKIP: mosquitto not installed")
        return 77
    d = tempfile.mkdtemp(prefix="gm-mqtt-")
    port = free_port()
    pid = int(subprocess.check_output([os.path.join(HERE, "broker.sh"), d, str(port), "bridge:bpw",
                                       "observer:opw", "plug1:p1pw", "plug2:p2pw"]).decode())
    sims = []

    def sim(*extra):
        p = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "tasmota_sim.py"), "--port",
                              str(port), "--user", "plug1", "--password", "p1pw", "--topic", "plug1",
                              "--load-w", "1800", "--teleperiod", "1", "--keepalive", "2",
                              "--state-file", os.path.join(d, "plug1.state"), *extra])
        sims.append(p)
        return p

    try:
        obs = Observer(port)
        bridge = mqtt.Client(client_id="bridge-test")
        bridge.username_pw_set("bridge", "bpw")
        bridge.connect("127.0.0.1", port, 30)
        bridge.loop_start()
        p = sim()
        i, m = obs.wait(lambda t, pl, r: t == "tele/plug1/LWT" and pl == "Online")
        check(m is not None, "LWT Online at connect")
        i2, m = obs.wait(lambda t, pl, r: t == "cmnd/plug1/POWER" and pl == "", since=i or 0)
        check(m is not None, "the plug's empty cmnd POWER after Online")

        i, m = obs.wait(lambda t, pl, r: t == "tele/plug1/SENSOR")
        e = json.loads(m[1])["ENERGY"] if m else {}
        check(list(e) == ENERGY_ORDER, f"SENSOR ENERGY keys in the firmware's order ({list(e)})")
        check(e.get("Power") == 1800, "Power = load while on (PowerOnState 3, initial ON)")
        check(abs(e.get("Current", 0) - 1800 / 230) < 0.001, "Current = P / (V x PF)")

        bridge.publish("cmnd/plug1/POWER", "off", qos=1)
        i, m = obs.wait(lambda t, pl, r: t == "stat/plug1/RESULT", since=i)
        check(m is not None and json.loads(m[1]) == {"POWER": "OFF"}, "RESULT {\"POWER\":\"OFF\"}")
        i, m = obs.wait(lambda t, pl, r: t == "stat/plug1/POWER", since=i)
        check(m is not None and m[1] == "OFF", "stat POWER OFF")
        i, m = obs.wait(lambda t, pl, r: t == "tele/plug1/SENSOR", since=i)
        check(m is not None and json.loads(m[1])["ENERGY"]["Power"] == 0, "Power 0 while off")

        bridge.publish("cmnd/plug1/Status", "10", qos=1)
        i, m = obs.wait(lambda t, pl, r: t == "stat/plug1/STATUS10", since=i)
        e = json.loads(m[1])["StatusSNS"]["ENERGY"] if m else {}
        check(list(e) == [k for k in ENERGY_ORDER if k != "Period"], "STATUS10 without Period")

        # Restart: PowerOnState 3 keeps OFF.
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        i, m = obs.wait(lambda t, pl, r: t == "tele/plug1/LWT" and pl == "Offline", since=i)
        check(m is not None, "will Offline when the plug's process ends without DISCONNECT")
        p = sim()
        i, m = obs.wait(lambda t, pl, r: t == "tele/plug1/STATE", since=i)
        check(m is not None and json.loads(m[1])["POWER"] == "OFF", "OFF kept over a restart")

        bridge.publish("cmnd/plug1/POWER", "TOGGLE", qos=1)
        i, m = obs.wait(lambda t, pl, r: t == "stat/plug1/POWER", since=i)
        check(m is not None and m[1] == "ON", "TOGGLE -> ON")

        # A late subscriber gets the retained LWT; Wi-Fi lost (SIGSTOP): the broker's will.
        late = Observer(port)
        _, m = late.wait(lambda t, pl, r: t == "tele/plug1/LWT")
        check(m is not None and m[1] == "Online" and m[2], "LWT Online is retained")
        late.stop()
        p.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        i, m = obs.wait(lambda t, pl, r: t == "tele/plug1/LWT" and pl == "Offline", since=i, timeout=15)
        dt = time.monotonic() - t0
        check(m is not None, f"will Offline {dt:.1f} s after the plug hung (keepalive 2 s)")
        p.send_signal(signal.SIGKILL)
        p.wait(10)

        bad = Observer(port, "bridge", "wrong")
        with bad.cv:
            bad.cv.wait_for(lambda: bad.rc is not None, 10)
        check(bad.rc == 5, f"wrong password refused (CONNACK {bad.rc}: not authorised)")
        bad.stop()

        # plug2's credentials cannot speak for plug1 (ACL: dropped silently).
        p2 = mqtt.Client(client_id="plug2")
        p2.username_pw_set("plug2", "p2pw")
        p2.connect("127.0.0.1", port, 30)
        p2.loop_start()
        p2.publish("stat/plug1/POWER", "ON", qos=1).wait_for_publish()
        p2.publish("stat/plug2/POWER", "ON", qos=1).wait_for_publish()
        _, m = obs.wait(lambda t, pl, r: t == "stat/plug2/POWER", since=i)
        check(m is not None, "plug2 may publish its own stat")
        _, m = obs.wait(lambda t, pl, r: t == "stat/plug1/POWER", since=i, timeout=1)
        check(m is None, "plug2 may not publish plug1's stat")
        p2.loop_stop()
        bridge.loop_stop()
        obs.stop()
    finally:
        stop_procs(sims)
        os.kill(pid, signal.SIGTERM)
        shutil.rmtree(d, ignore_errors=True)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
