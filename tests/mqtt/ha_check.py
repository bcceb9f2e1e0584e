#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Home Assistant MQTT discovery checker: a module and a command.

Checks what a publisher announces to Home Assistant against HA's documented schema
(sources: /Documentation/mqtt.md "Home Assistant"; HA's mqtt.markdown for the topic
layout, abbreviations, availability and device block; developers.home-assistant
docs/core/entity/sensor.md and core's sensor/const.py for device classes, units and
state classes; energy/validate.py for the Energy dashboard):

- config topics <prefix>/<component>/[<node_id>/]<object_id>/config, ids of
  [a-zA-Z0-9_-]; an empty payload removes the entity; the payload a JSON object,
  abbreviations expanded, "~" substituted;
- required keys (state_topic for sensor and binary_sensor, command_topic for
  switch), topics without wildcards, unique_id present and unique across the run,
  a device block with identifiers or connections (it needs unique_id), origin with
  a name when given, availability (availability_topic or an availability list,
  never both) unless require_availability=False;
- sensor device_class / unit_of_measurement / state_class combinations: the
  classes of the research table are checked unit by unit and with their allowed
  state classes; enum has options and neither unit nor state class; monetary has an
  ISO 4217 code; a sensor without device_class may have any unit;
- binary_sensor device classes, and no unit or state class;
- state messages: each entity's value (value_template "{{ value_json.KEY }}" or the
  whole payload) is "None" (unknown) or a number for numeric sensors, within the
  plausible range of the announced unit (230000 "V" is a mV value sent as V), one of
  the options for enum sensors, payload_on/payload_off for binary sensors; every
  energy or total_increasing sensor never decreases; availability payloads are the
  announced ones.

Module use:  c = Checker("homeassistant"); c.feed(topic, payload, retain) ...;
             problems = c.check()   (a list of strings, empty when all is well)
Command:     ha_check.py --port P --user U --password PW [--base gridmeter/101]
                         [--prefix homeassistant] [--seconds 5] [--cafile ..]
                         (prints "ha_check: listening" once subscribed, then
                         collects for --seconds)
             ha_check.py --file DUMP   (lines "topic<TAB>payload[<TAB>r]")
Exit 0 when nothing was found, 1 with the problems listed, 2 on usage errors.
"""
import argparse
import json
import re
import sys
import threading
import time
from decimal import Decimal, InvalidOperation

# HA mqtt.markdown abbreviation list (the ones discovery publishers use).
ABBREVIATIONS = {
    "avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template", "cmd_t": "command_topic", "cmd_tpl": "command_template",
    "dev": "device", "dev_cla": "device_class", "en": "enabled_by_default", "ent_cat": "entity_category",
    "exp_aft": "expire_after", "frc_upd": "force_update", "ic": "icon", "json_attr_t": "json_attributes_topic",
    "json_attr_tpl": "json_attributes_template", "name": "name", "o": "origin", "obj_id": "object_id",
    "off_dly": "off_delay", "ops": "options", "pl_avail": "payload_available", "pl_not_avail": "payload_not_available",
    "pl_off": "payload_off", "pl_on": "payload_on", "qos": "qos", "ret": "retain", "stat_cla": "state_class",
    "stat_off": "state_off", "stat_on": "state_on", "stat_t": "state_topic", "stat_tpl": "state_template",
    "sug_dsp_prc": "suggested_display_precision", "t": "topic", "uniq_id": "unique_id",
    "unit_of_meas": "unit_of_measurement", "val_tpl": "value_template",
}
DEVICE_ABBREVIATIONS = {
    "cu": "configuration_url", "cns": "connections", "ids": "identifiers", "name": "name",
    "mf": "manufacturer", "mdl": "model", "mdl_id": "model_id", "hw": "hw_version",
    "sw": "sw_version", "sa": "suggested_area", "sn": "serial_number", "via_device": "via_device",
}
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}

# device_class: (accepted units, None meaning "no unit"; allowed state classes, None = none)
# research 3.3: sensor.md units, const.py DEVICE_CLASS_STATE_CLASSES.
SENSOR_RULES = {
    "energy": ({"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal",
                "Mcal", "Gcal"}, {"total", "total_increasing"}),
    "power": ({"mW", "W", "kW", "MW", "GW", "TW"}, {"measurement"}),
    "voltage": ({"V", "mV", "µV", "kV", "MV"}, {"measurement"}),
    "current": ({"A", "mA"}, {"measurement"}),
    "power_factor": ({None, "%"}, {"measurement"}),
    "frequency": ({"mHz", "Hz", "kHz", "MHz", "GHz"}, {"measurement"}),
    "monetary": ("ISO4217", {"total"}),
    "temperature": ({"°C", "°F", "K"}, {"measurement"}),
    "gas": ({"L", "m³", "ft³", "CCF", "MCF"}, {"total", "total_increasing"}),
    "enum": ({None}, {None}),
}
# Other sensor device classes HA knows (not checked unit by unit here).
OTHER_SENSOR_CLASSES = {
    "apparent_power", "aqi", "area", "atmospheric_pressure", "battery", "blood_glucose_concentration",
    "carbon_dioxide", "carbon_monoxide", "conductivity", "data_rate", "data_size", "date", "distance",
    "duration", "energy_distance", "energy_storage", "humidity", "illuminance", "irradiance", "moisture",
    "nitrogen_dioxide", "nitrogen_monoxide", "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25",
    "precipitation", "precipitation_intensity", "pressure", "reactive_energy", "reactive_power",
    "signal_strength", "sound_pressure", "speed", "sulphur_dioxide", "timestamp",
    "volatile_organic_compounds", "volatile_organic_compounds_parts", "volume", "volume_flow_rate",
    "volume_storage", "water", "weight", "wind_direction", "wind_speed",
}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
BINARY_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door",
    "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug",
    "power", "presence", "problem", "running", "safety", "smoke", "sound", "tamper", "update",
    "vibration", "window",
}
REQUIRED = {"sensor": ["state_topic"], "binary_sensor": ["state_topic"], "switch": ["command_topic"]}
# Plausible magnitudes of a house meter's values in the announced unit: a value
# outside is a unit mistake (mV published as V, W as kW...).
RANGES = {
    ("voltage", "V"): (0, 1000), ("voltage", "mV"): (0, 1000000),
    ("current", "A"): (-1000, 1000), ("current", "mA"): (-1000000, 1000000),
    ("frequency", "Hz"): (0, 1000), ("power_factor", None): (-1, 1), ("power_factor", "%"): (-100, 100),
    ("power", "W"): (-1000000, 1000000), ("power", "kW"): (-1000, 1000),
    ("temperature", "°C"): (-100, 300), ("temperature", "K"): (0, 600), ("energy", "kWh"): (0, 1e12),
    ("energy", "Wh"): (0, 1e15),
}
ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
TEMPLATE_RE = re.compile(r"^\{\{\s*value_json(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[['\"]([^'\"]+)['\"]\])\s*\}\}$")


def _expand(d, table):
    return {table.get(k, k): v for k, v in d.items()}


def _topic_ok(t):
    return isinstance(t, str) and t != "" and "+" not in t and "#" not in t and "\0" not in t


def _number(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return Decimal(str(v))
    if isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


class Entity:
    def __init__(self, topic, component, cfg):
        self.topic, self.component, self.cfg = topic, component, cfg
        self.uid = cfg.get("unique_id")
        self.key = None
        self.raw = False
        tpl = cfg.get("value_template")
        if tpl is None:
            self.raw = True
        elif isinstance(tpl, str):
            m = TEMPLATE_RE.match(tpl.strip())
            if m:
                self.key = m.group(1) or m.group(2)

    @property
    def name(self):
        return self.uid or self.topic


class Checker:
    def __init__(self, prefix="homeassistant", require_availability=True, object_id_is_unique_id=True):
        self.prefix = prefix
        self.require_availability = require_availability
        self.object_id_is_unique_id = object_id_is_unique_id
        self.msgs = []
        self.lock = threading.Lock()

    def feed(self, topic, payload, retain=False):
        if isinstance(payload, (bytes, bytearray)):
            payload = bytes(payload).decode("utf-8", "replace")
        with self.lock:
            self.msgs.append((topic, payload, bool(retain)))

    # -- discovery payloads -----------------------------------------------------------
    def _config(self, topic, payload, out):
        levels = topic[len(self.prefix) + 1:].split("/")
        if len(levels) not in (3, 4) or levels[-1] != "config":
            out.append(f"{topic}: not <prefix>/<component>/[<node_id>/]<object_id>/config")
            return None
        component, object_id = levels[0], levels[-2]
        for lv in levels[1:-1]:
            if not ID_RE.match(lv):
                out.append(f"{topic}: node_id/object_id '{lv}' not [a-zA-Z0-9_-]")
        if payload == "":
            return "removed"
        try:
            cfg = json.loads(payload)
        except ValueError as e:
            out.append(f"{topic}: payload is not JSON ({e})")
            return None
        if not isinstance(cfg, dict):
            out.append(f"{topic}: payload is not a JSON object")
            return None
        cfg = _expand(cfg, ABBREVIATIONS)
        base = cfg.get("~")
        if isinstance(base, str):
            for k, v in list(cfg.items()):
                if k.endswith("_topic") and isinstance(v, str):
                    if v.startswith("~"):
                        cfg[k] = base + v[1:]
                    elif v.endswith("~"):
                        cfg[k] = v[:-1] + base
        p = f"{topic}:"
        if component not in REQUIRED:
            out.append(f"{p} component '{component}' not checked by this tool")
            return None
        for k in REQUIRED[component]:
            if k not in cfg:
                out.append(f"{p} required key '{k}' missing")
        for k, v in cfg.items():
            if k.endswith("_topic") and not _topic_ok(v):
                out.append(f"{p} {k} {v!r} is not a topic one can publish to")
        uid = cfg.get("unique_id")
        if not isinstance(uid, str) or not uid:
            out.append(f"{p} no unique_id (the device block and UI settings need one)")
        elif self.object_id_is_unique_id and uid != object_id:
            out.append(f"{p} object_id '{object_id}' is not the unique_id '{uid}' (HA's best practice)")
        if not isinstance(cfg.get("name"), (str, type(None))):
            out.append(f"{p} name is not a string")
        dev = cfg.get("device")
        if dev is None:
            out.append(f"{p} no device block")
        elif not isinstance(dev, dict):
            out.append(f"{p} device is not an object")
        else:
            dev = _expand(dev, DEVICE_ABBREVIATIONS)
            ids, cns = dev.get("identifiers"), dev.get("connections")
            if not ids and not cns:
                out.append(f"{p} device has neither identifiers nor connections")
            if ids is not None and not (isinstance(ids, str) or (isinstance(ids, list) and ids and
                                                                 all(isinstance(i, str) for i in ids))):
                out.append(f"{p} device identifiers must be a string or a list of strings")
            for k in ("name", "manufacturer", "model", "sw_version", "hw_version"):
                if k in dev and not isinstance(dev[k], str):
                    out.append(f"{p} device {k} is not a string")
        org = cfg.get("origin")
        if org is not None:
            org = _expand(org, ORIGIN_ABBREVIATIONS) if isinstance(org, dict) else None
            if not org or not isinstance(org.get("name"), str) or not org["name"]:
                out.append(f"{p} origin needs a name")
        at, al = cfg.get("availability_topic"), cfg.get("availability")
        if at is not None and al is not None:
            out.append(f"{p} availability_topic and availability together")
        if al is not None:
            if not isinstance(al, list) or not al or not all(isinstance(a, dict) and _topic_ok(a.get("topic"))
                                                              for a in al):
                out.append(f"{p} availability must be a list of objects with a topic")
        elif at is None and self.require_availability:
            out.append(f"{p} no availability (the entity would never show unavailable)")
        for k in ("payload_available", "payload_not_available", "payload_on", "payload_off"):
            if k in cfg and not isinstance(cfg[k], str):
                out.append(f"{p} {k} is not a string")
        dc, unit, sc = cfg.get("device_class"), cfg.get("unit_of_measurement"), cfg.get("state_class")
        if component == "sensor":
            if sc is not None and sc not in STATE_CLASSES:
                out.append(f"{p} state_class '{sc}' unknown")
            if dc is None:
                pass
            elif dc in SENSOR_RULES:
                units, classes = SENSOR_RULES[dc]
                if units == "ISO4217":
                    if not (isinstance(unit, str) and re.match(r"^[A-Z]{3}$", unit)):
                        out.append(f"{p} monetary unit '{unit}' is not an ISO 4217 code")
                elif unit not in units:
                    out.append(f"{p} unit '{unit}' not accepted for device_class {dc}")
                if sc not in classes:
                    out.append(f"{p} state_class '{sc}' impossible for device_class {dc}")
                if dc == "enum":
                    ops = cfg.get("options")
                    if not isinstance(ops, list) or not ops or not all(isinstance(o, str) for o in ops):
                        out.append(f"{p} enum sensor needs a non-empty options list of strings")
            elif dc not in OTHER_SENSOR_CLASSES:
                out.append(f"{p} sensor device_class '{dc}' unknown")
        elif component == "binary_sensor":
            if dc is not None and dc not in BINARY_CLASSES:
                out.append(f"{p} binary_sensor device_class '{dc}' unknown")
            if unit is not None or sc is not None:
                out.append(f"{p} a binary_sensor has no unit or state_class")
        e = Entity(topic, component, cfg)
        if cfg.get("value_template") is not None and e.key is None:
            out.append(f"{p} value_template {cfg.get('value_template')!r} not understood by this checker")
        return e

    # -- the whole run ----------------------------------------------------------------
    def check(self):
        """All problems of the messages fed so far (configs: the last one per topic)."""
        out = []
        with self.lock:
            msgs = list(self.msgs)
        configs = {}
        cfg_prefix = self.prefix + "/"
        for topic, payload, _ in msgs:
            if topic.startswith(cfg_prefix) and topic.endswith("/config"):
                e = self._config(topic, payload, out)
                if e == "removed":
                    configs.pop(topic, None)
                elif e is not None:
                    configs[topic] = e
        seen = {}
        for e in configs.values():
            if e.uid in seen:
                out.append(f"unique_id {e.uid} announced twice: {seen[e.uid]} and {e.topic}")
            seen[e.uid] = e.topic
        by_state, by_avail = {}, {}
        for e in configs.values():
            st = e.cfg.get("state_topic")
            if isinstance(st, str):
                by_state.setdefault(st, []).append(e)
            at = e.cfg.get("availability_topic")
            avl = [at] if isinstance(at, str) else [a.get("topic") for a in e.cfg.get("availability") or []
                                                   if isinstance(a, dict)]
            for a in avl:
                by_avail.setdefault(a, []).append(e)
        last = {}
        self.states_checked = 0
        for topic, payload, _ in msgs:
            for e in by_avail.get(topic, []):
                ok = {e.cfg.get("payload_available", "online"), e.cfg.get("payload_not_available", "offline")}
                if payload not in ok:
                    out.append(f"{topic}: availability payload {payload!r} is none of {sorted(ok)} ({e.name})")
                    break
            ents = by_state.get(topic)
            if not ents:
                continue
            self.states_checked += 1
            doc = None
            if any(not e.raw for e in ents):
                try:
                    doc = json.loads(payload)
                except ValueError:
                    out.append(f"{topic}: state payload is not JSON: {payload[:80]!r}")
                    continue
                if not isinstance(doc, dict):
                    out.append(f"{topic}: state payload is not a JSON object")
                    continue
            for e in ents:
                if e.raw:
                    v = payload
                elif e.key is None or e.key not in doc:
                    continue        # HA renders nothing and keeps the last state
                else:
                    v = doc[e.key]
                self._value(e, topic, v, last, out)
        return out

    def _value(self, e, topic, v, last, out):
        cfg = e.cfg
        p = f"{topic} {e.key or ''} ({e.name}):"
        if e.component == "binary_sensor":
            ok = {cfg.get("payload_on", "ON"), cfg.get("payload_off", "OFF"), "None"}
            if v not in ok:
                out.append(f"{p} {v!r} is none of {sorted(ok)}")
            return
        if e.component != "sensor" or v == "None":
            return
        dc, unit, sc = cfg.get("device_class"), cfg.get("unit_of_measurement"), cfg.get("state_class")
        if dc == "enum":
            if v not in (cfg.get("options") or []):
                out.append(f"{p} {v!r} is not one of the options {cfg.get('options')}")
            return
        if dc is None and unit is None and sc is None:
            return          # a text sensor
        n = _number(v)
        if n is None:
            out.append(f"{p} {v!r} is not a number")
            return
        r = RANGES.get((dc, unit))
        if r and not r[0] <= n <= r[1]:
            out.append(f"{p} {v} is not a plausible value in {unit or 'no unit'} for {dc}")
        if dc == "energy" or sc == "total_increasing":
            prev = last.get(e.name)
            if prev is not None and n < prev:
                out.append(f"{p} went down from {prev} to {n}")
            last[e.name] = n if prev is None else max(prev, n)


def _read_dump(path, c):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) < 2:
                raise SystemExit(f"{path}: line without a tab: {line[:60]!r}")
            c.feed(parts[0], parts[1], len(parts) > 2 and parts[2] == "r")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check Home Assistant discovery and state messages.")
    ap.add_argument("--file", help="lines 'topic<TAB>payload[<TAB>r]' instead of a broker")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--cafile")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--prefix", default="homeassistant")
    ap.add_argument("--base", action="append", default=[], help="state topics to watch, e.g. gridmeter/101")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--min-configs", type=int, default=1)
    a = ap.parse_args(argv)
    c = Checker(a.prefix)
    if a.file:
        _read_dump(a.file, c)
    else:
        import paho.mqtt.client as mqtt
        cl = mqtt.Client(client_id=f"ha-check-{time.monotonic_ns()}")
        if a.user:
            cl.username_pw_set(a.user, a.password)
        if a.cafile:
            cl.tls_set(ca_certs=a.cafile, certfile=a.cert, keyfile=a.key)
        subs = [a.prefix + "/#"] + [b + "/#" for b in a.base]

        def on_connect(cl_, u, f, rc):
            if rc == 0:
                for s in subs:
                    cl_.subscribe(s, 1)
            else:
                print(f"ha_check: broker refused the connection: {mqtt.connack_string(rc)}", file=sys.stderr)

        acked = threading.Event()
        nacks = [0]

        def on_subscribe(cl_, u, mid, qos):
            nacks[0] += 1
            if nacks[0] == len(subs):
                print("ha_check: listening", flush=True)
                acked.set()

        cl.on_connect = on_connect
        cl.on_subscribe = on_subscribe
        cl.on_message = lambda cl_, u, m: c.feed(m.topic, m.payload, m.retain)
        cl.connect(a.host, a.port, 30)
        cl.loop_start()
        if not acked.wait(10):
            print("ha_check: no subscription acknowledged within 10 s", file=sys.stderr)
            cl.loop_stop()
            return 2
        time.sleep(a.seconds)   # counted from the subscription: what arrives meanwhile
        cl.loop_stop()
        cl.disconnect()
    problems = c.check()
    nconf = sum(1 for t, _, _ in c.msgs if t.startswith(a.prefix + "/") and t.endswith("/config"))
    if nconf < a.min_configs:
        problems.append(f"only {nconf} discovery messages seen (expected at least {a.min_configs})")
    for pr in problems:
        print("ha_check: " + pr)
    print(f"ha_check: {len(c.msgs)} messages, {nconf} discovery, {getattr(c, 'states_checked', 0)} states, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
