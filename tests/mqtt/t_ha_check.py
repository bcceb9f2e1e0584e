#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The Home Assistant checker (ha_check.py) against what the bridge's C code builds.

Builds tests/mqtt/ha_dump.c with agent/bridge/ha_discovery.c and ha_state.c (every
discovery payload of the meter, two plugs, a gas and a temperature home sensor, and
a run of state messages in which meterd's import register goes down once), checks
that the checker finds nothing in it, then that each of a list of broken variants
(one schema rule or value rule broken each, a decreasing energy value among them)
is reported with the expected words. Last, the same through a real mosquitto: the
checker's command line subscribed as an observer while the payloads are published
as the bridge, once clean (exit 0) and once with a decreasing energy value (exit 1).
Exit 0, 1 (failures listed) or 77 (no compiler, mosquitto or paho).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import ha_check  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def build_dump(d):
    exe = os.path.join(d, "ha_dump")
    subprocess.check_call(["cc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
                           "-I" + os.path.join(ROOT, "agent/bridge"), "-o", exe,
                           os.path.join(HERE, "ha_dump.c")] +
                          [os.path.join(ROOT, "agent/bridge", f) for f in ("json_out.c", "ha_discovery.c", "ha_state.c")])
    out = subprocess.check_output([exe]).decode()
    return [tuple(ln.split("\t")) for ln in out.splitlines()]


def run(lines):
    c = ha_check.Checker("homeassistant")
    for t, p, r in lines:
        c.feed(t, p, r == "r")
    return c.check()


def edit_config(lines, uid_suffix, fn):
    """A copy of lines with fn applied to the config of the entity whose unique_id ends so."""
    out, hit = [], 0
    for t, p, r in lines:
        if t.endswith(f"/gridmeter_101_{uid_suffix}/config"):
            cfg = json.loads(p)
            fn(cfg)
            p = json.dumps(cfg, ensure_ascii=False)
            hit += 1
        out.append((t, p, r))
    assert hit == 1, uid_suffix
    return out


def edit_state(lines, index, key, value):
    out, k = [], 0
    for t, p, r in lines:
        if t == "gridmeter/101/state":
            if k == index:
                doc = json.loads(p)
                doc[key] = value
                p = json.dumps(doc)
            k += 1
        out.append((t, p, r))
    return out


def state_value(lines, index, key):
    states = [json.loads(p) for t, p, r in lines if t == "gridmeter/101/state"]
    return states[index][key]


def main():
    if not shutil.which("cc"):
        print("SKIP: no C compiler")
        return 77
    d = tempfile.mkdtemp(prefix="gm-hacheck-")
    lines = build_dump(d)
    nconf = sum(1 for t, _, _ in lines if t.endswith("/config"))
    nstate = sum(1 for t, _, _ in lines if t == "gridmeter/101/state")
    check(nconf > 30 and nstate > 3, f"ha_dump: {nconf} discovery payloads, {nstate} state messages")
    probs = run(lines)
    check(probs == [], "the C code's payloads pass: " + "; ".join(probs[:3]))

    def pop(k):
        return lambda c: c.pop(k)

    def put(k, v):
        return lambda c: c.__setitem__(k, v)

    v0 = state_value(lines, 0, "import_energy")
    broken = [
        ("energy goes down", edit_state(lines, 3, "import_energy", str(float(v0) - 0.5)), "went down"),
        ("energy total as measurement", edit_config(lines, "import_energy", put("state_class", "measurement")),
         "impossible for device_class energy"),
        ("power in kWh", edit_config(lines, "power", put("unit_of_measurement", "kWh")), "not accepted"),
        ("cost total_increasing", edit_config(lines, "cost", put("state_class", "total_increasing")),
         "impossible for device_class monetary"),
        ("cost in euros spelled out", edit_config(lines, "cost", put("unit_of_measurement", "euro")),
         "ISO 4217"),
        ("no state_topic", edit_config(lines, "voltage", pop("state_topic")), "required key 'state_topic'"),
        ("no unique_id", edit_config(lines, "frequency", pop("unique_id")), "no unique_id"),
        ("no availability", edit_config(lines, "current", pop("availability_topic")), "no availability"),
        ("availability twice", edit_config(lines, "current", put("availability", [{"topic": "x/y"}])),
         "availability_topic and availability together"),
        ("no device", edit_config(lines, "relay", pop("device")), "no device block"),
        ("device without ids", edit_config(lines, "relay", lambda c: c["device"].pop("identifiers")),
         "neither identifiers nor connections"),
        ("binary sensor with a unit", edit_config(lines, "plug_washer", put("unit_of_measurement", "W")),
         "no unit or state_class"),
        ("unknown binary class", edit_config(lines, "alarm_gas", put("device_class", "methane")),
         "binary_sensor device_class 'methane' unknown"),
        ("gas concentration as gas class", edit_config(lines, "home_kitchen_gas", put("device_class", "gas")),
         "not accepted for device_class gas"),
        ("temperature in C", edit_config(lines, "home_hall", put("unit_of_measurement", "C")),
         "not accepted for device_class temperature"),
        ("enum without options", edit_config(lines, "tariff_period", pop("options")), "options"),
        ("enum with a unit", edit_config(lines, "tariff_period", put("unit_of_measurement", "h")),
         "not accepted for device_class enum"),
        ("voltage sent in mV", edit_state(lines, 1, "voltage", "229600.000"), "plausible"),
        ("power not a number", edit_state(lines, 2, "power", "12,5"), "not a number"),
        ("binary lower case", edit_state(lines, 2, "relay", "on"), "none of"),
        ("period not an option", edit_state(lines, 0, "tariff_period", "weekend"), "not one of the options"),
        ("availability word", lines + [("gridmeter/101/status", "Online", "r")], "availability payload"),
        ("state not JSON", lines + [("gridmeter/101/state", "import_energy=3", "-")], "not JSON"),
        ("wildcard topic", edit_config(lines, "power", put("state_topic", "gridmeter/+/state")), "not a topic"),
    ]
    dup = [ln for ln in lines if ln[0].endswith("_power/config")][0]
    broken.append(("unique_id twice", lines + [(dup[0].replace("_power/", "_power2/"), dup[1], "r")],
                   "announced twice"))
    for what, variant, words in broken:
        probs = run(variant)
        check(any(words in p for p in probs), f"broken: {what} -> '{words}'"
              + ("" if any(words in p for p in probs) else f" (got {probs[:2]})"))

    # Still clean: abbreviated keys, an entity removed by an empty payload, HA's "None".
    def abbreviate(c):
        for long_, short in (("state_topic", "stat_t"), ("unit_of_measurement", "unit_of_meas"),
                             ("device_class", "dev_cla"), ("state_class", "stat_cla"), ("unique_id", "uniq_id")):
            c[short] = c.pop(long_)
        c["dev"] = c.pop("device")
        c["dev"]["ids"] = c["dev"].pop("identifiers")
    clean = edit_config(lines, "voltage", abbreviate)
    clean = edit_state(clean, 0, "voltage", "None")
    rm = [ln for ln in lines if ln[0].endswith("_frequency/config")][0]
    clean = clean + [(rm[0], "", "r"), ("gridmeter/101/state", json.dumps({"frequency": "x"}), "-")]
    probs = run(clean)
    check(probs == [], "abbreviations, None and a removed entity are accepted: " + "; ".join(probs[:3]))

    live(d, lines)
    shutil.rmtree(d, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failures:", *failures, sep="\n  ")
        return 1
    return 0


def live(d, lines):
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        print("skip live part: python3-paho-mqtt not installed")
        return
    if not shutil.which("mosquitto"):
        print("skip live part: mosquitto not installed")
        return
    from t_tasmota_sim import free_port
    port = free_port()
    os.chmod(d, 0o711)     # mosquitto runs as its own user when started as root
    bdir = os.path.join(d, "broker")
    pid = int(subprocess.check_output([os.path.join(HERE, "broker.sh"), bdir, str(port), "bridge:bpw",
                                       "observer:opw"]).decode())
    try:
        for what, variant, want in (("clean", lines, 0),
                                    ("decreasing", edit_state(lines, 4, "export_energy", "0.000"), 1)):
            chk = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "ha_check.py"), "--port", str(port),
                                    "--user", "observer", "--password", "opw", "--base", "gridmeter/101",
                                    "--seconds", "2"], stdout=subprocess.PIPE, text=True)
            first = chk.stdout.readline()
            pub = mqtt.Client(client_id=f"pub-{what}")
            pub.username_pw_set("bridge", "bpw")
            pub.connect("127.0.0.1", port, 30)
            pub.loop_start()
            infos = [pub.publish(t, p, 1, r == "r") for t, p, r in variant]
            for i in infos:
                i.wait_for_publish()
            rest = chk.stdout.read()
            rc = chk.wait(30)
            pub.loop_stop()
            pub.disconnect()
            print(rest, end="")
            check(first.startswith("ha_check: listening") and rc == want,
                  f"live {what}: ha_check exit {rc} (want {want})")
            # clear the retained configs so that the next round starts empty
            clr = mqtt.Client(client_id=f"clr-{what}")
            clr.username_pw_set("bridge", "bpw")
            clr.connect("127.0.0.1", port, 30)
            clr.loop_start()
            for i in [clr.publish(t, "", 1, True) for t, p, r in variant if r == "r"]:
                i.wait_for_publish()
            clr.loop_stop()
            clr.disconnect()
    finally:
        os.kill(pid, 15)


if __name__ == "__main__":
    sys.exit(main())
