#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""gm-mqttd against a real mosquitto, a simulated Tasmota plug and meterd on a private bus.

Checks as an observer: the bridge's availability (online retained, offline on SIGTERM,
the will when it is killed), the retained Home Assistant discovery messages with the
three energy registers as total_increasing kWh, the bridge's empty POWER query on
connect (never retained) answered by the plug, a wrong password keeping it out.
The bridge is online only while meterd is there (tests/mqtt/meterd_env.py starts it).
Usage: t_bridge.py PATH/TO/gm-mqttd PATH/TO/meterd. Exit 0, 1 (failures listed) or 77 (no mosquitto/paho).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from t_tasmota_sim import HERE, Observer, check, exit_status, free_port, usage_or_missing  # noqa: E402
from meterd_env import MeterEnv, stop_procs  # noqa: E402


def bridge_conf(d, port, password):
    pw = os.path.join(d, "bridge.pw")
    with open(pw, "w") as f:
        f.write(password + "\n")
    os.chmod(pw, 0o600)
    conf = os.path.join(d, f"mqtt-{password}.conf")
    with open(conf, "w") as f:
        f.write(f"[broker]\nport = {port}\nusername = bridge\npassword_file = {pw}\nkeepalive = 5\n\n"
                "[homeassistant]\nbase_topic = gridmeter/101\n\n"
                "[plug.washer]\ntype = tasmota\ntopic = plug1\ntelemetry = 10\n")
    return conf


def main():
    status = usage_or_missing(__doc__, ("mosquitto", "dbus-daemon", "busctl"))
    if status is not None:
        return status
    exe, meterd = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    d = tempfile.mkdtemp(prefix="gm-bridge-")
    os.chmod(d, 0o755)
    env = MeterEnv(d, meterd, [("washer", 1000, 1)])
    port = free_port()
    pid = int(subprocess.check_output([os.path.join(HERE, "broker.sh"), d, str(port), "bridge:bpw",
                                       "observer:opw", "plug1:p1pw"]).decode())
    procs = []
    try:
        obs = Observer(port)
        plug = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "tasmota_sim.py"), "--port",
                                 str(port), "--user", "plug1", "--password", "p1pw", "--topic", "plug1",
                                 "--teleperiod", "0"])
        procs.append(plug)
        i, m = obs.wait(lambda t, pl, r: t == "tele/plug1/LWT" and pl == "Online")
        check(m is not None, "plug online")

        before = len(obs.msgs)
        br = subprocess.Popen([exe, "-c", bridge_conf(d, port, "bpw")])
        procs.append(br)
        i, m = obs.wait(lambda t, pl, r: t == "gridmeter/101/status" and pl == "online", since=i)
        check(m is not None and not m[2], "bridge online (live publish)")
        disc = {}
        for t, pl, r in obs.msgs:
            if t.startswith("homeassistant/") and t.endswith("/config"):
                disc[t] = json.loads(pl)
        energy = [c for c in disc.values() if c.get("device_class") == "energy"
                  and c.get("unit_of_measurement") == "kWh" and c.get("state_class") == "total_increasing"]
        check(len(energy) == 3, f"3 energy sensors for the Energy dashboard ({len(disc)} entities)")
        q, m = obs.wait(lambda t, pl, r: t == "cmnd/plug1/POWER" and pl == "", since=before)
        check(m is not None and not m[2], "bridge's empty POWER query, not retained")
        # since `before`: the plug's own empty POWER (unanswered) may come after it too
        _, m = obs.wait(lambda t, pl, r: t == "stat/plug1/POWER", since=before)
        check(m is not None, "plug answered the query")

        with open(f"/proc/{br.pid}/status") as f:
            rss = [ln.split()[1] for ln in f if ln.startswith("VmRSS:")]
        print(f"info gm-mqttd VmRSS {rss[0] if rss else '?'} kB (1 plug, meterd link)")
        # The plug restarts: after its own empty POWER (unanswered, it is not yet
        # subscribed) the bridge asks again, and the plug answers.
        plug.kill()
        plug.wait()
        plug = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "tasmota_sim.py"), "--port",
                                 str(port), "--user", "plug1", "--password", "p1pw", "--topic", "plug1",
                                 "--teleperiod", "0"])
        procs.append(plug)
        i, m = obs.wait(lambda t, pl, r: t == "tele/plug1/LWT" and pl == "Online" and not r, since=i)
        check(m is not None, "plug back online")
        _, m = obs.wait(lambda t, pl, r: t == "stat/plug1/POWER", since=i or 0)
        queries = [x for x in obs.msgs[i or 0:] if x[0] == "cmnd/plug1/POWER" and x[1] == ""]
        check(m is not None and len(queries) >= 2, f"bridge asked the plug back ({len(queries)} queries)")

        late = Observer(port)
        _, m = late.wait(lambda t, pl, r: t.startswith("homeassistant/sensor/gridmeter_101_import_energy/"))
        check(m is not None and m[2], "discovery is retained")
        late.stop()

        br.send_signal(signal.SIGTERM)
        rc = br.wait(10)
        check(rc == 0, f"SIGTERM: exit {rc}")
        i, m = obs.wait(lambda t, pl, r: t == "gridmeter/101/status" and pl == "offline", since=i)
        check(m is not None, "offline published on SIGTERM")

        br = subprocess.Popen([exe, "-c", bridge_conf(d, port, "bpw")])
        procs.append(br)
        i, m = obs.wait(lambda t, pl, r: t == "gridmeter/101/status" and pl == "online", since=i)
        br.kill()
        br.wait()
        i, m = obs.wait(lambda t, pl, r: t == "gridmeter/101/status" and pl == "offline", since=i)
        check(m is not None, "the will (offline) when the bridge is killed")

        br = subprocess.Popen([exe, "-c", bridge_conf(d, port, "wrong")])
        procs.append(br)
        _, m = obs.wait(lambda t, pl, r: t == "gridmeter/101/status" and pl == "online", since=i,
                        timeout=3)
        check(m is None and br.poll() is None, "wrong password: not connected, still retrying")
        obs.stop()
    finally:
        stop_procs(procs)
        env.close()
        os.kill(pid, signal.SIGTERM)
        shutil.rmtree(d, ignore_errors=True)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
