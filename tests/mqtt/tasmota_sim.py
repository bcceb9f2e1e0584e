#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A simulated Tasmota power-monitoring plug (one relay), for the MQTT bridge's tests.

It publishes and obeys as the firmware does with its default settings
(FullTopic %prefix%/%topic%/, SetOption4 0: replies on stat/<t>/RESULT, plus
the stat/<t>/POWER feedback Tasmota always sends). Sources, as collected in
/work/notes/issue15-research.md and to be cited in Documentation/mqtt.md:
  - command flow and replies: tasmota docs MQTT.md ("cmnd/tasmota_switch/Power")
  - LWT and connect order: firmware xdrv_02_9_mqtt.ino MqttReconnect/MqttConnected
    (will "Offline" QoS 1 retained; "Online" retained; an empty cmnd/<t>/POWER
    published before subscribing to cmnd/<t>/#)
  - STATE keys: docs ADC.md example; SENSOR ENERGY key order and number formats:
    firmware EnergyShow() and the documented captures (3 decimals for kWh and A,
    2 for Factor, whole W and V)
  - Status 10 -> stat/<t>/STATUS10 {"StatusSNS":{...}} without Period (CmndStatus)
  - Power parameters 0/off/false, 1/on/true, 2/toggle, empty or "?" = query;
    TelePeriod 0 | 1 (default 300) | 10..3600, empty = show and send telemetry now
Not simulated: Wi-Fi, web UI, rules, multi-relay devices, SetOption26/4/59.

To make it "go silent" as a plug whose Wi-Fi dropped, a test stops it with
SIGSTOP (the broker sends its will after 1.5 x keepalive); SIGKILL is a plug
that lost power with its TCP connection reset (the will goes out at once).
--silent-after N is a hung firmware whose network stack still answers the
broker's PINGs: after N s it publishes nothing more (no telemetry, no
replies), yet it stays connected, so no will is sent.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt

CMD_WORDS = {"0": 0, "off": 0, "false": 0, "1": 1, "on": 1, "true": 1, "2": 2, "toggle": 2}


class Plug:
    def __init__(self, a):
        self.a = a
        self.t = a.topic
        self.lock = threading.Lock()
        self.on = self._power_on_state()
        self.start = time.time()
        self.t0 = time.monotonic()
        self.start_text = self._now_text(self.start)
        self.total_wh = a.total_wh  # float internally, sent as kWh with 3 decimals
        self.today_wh = 0.0
        self.period_wh = 0.0
        self.last = time.monotonic()
        self.teleperiod = a.teleperiod
        self.next_tele = time.monotonic() + min(10, self.teleperiod or 10)
        self.client = mqtt.Client(client_id="DVES_" + self.t[-6:].upper(), clean_session=True)
        if a.user:
            self.client.username_pw_set(a.user, a.password)
        self.client.will_set(f"tele/{self.t}/LWT", "Offline", qos=1, retain=True)
        self.client.on_connect = self.on_connect
        self.client.on_message = self.on_message

    # PowerOnState 3 (default): the last saved state; 0 off, 1 on.
    def _power_on_state(self):
        if self.a.power_on_state == 3:
            if self.a.state_file and os.path.exists(self.a.state_file):
                with open(self.a.state_file) as f:
                    return f.read().strip() == "ON"
            return self.a.initial == "ON"
        return self.a.power_on_state == 1

    def _save(self):
        if self.a.state_file:
            tmp = self.a.state_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("ON" if self.on else "OFF")
            os.replace(tmp, self.a.state_file)

    @staticmethod
    def _now_text(t=None):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t if t is not None else time.time()))

    def _integrate(self):
        now = time.monotonic()
        wh = self.power_w() * (now - self.last) / 3600.0
        self.last = now
        self.total_wh += wh
        self.today_wh += wh
        self.period_wh += wh

    def power_w(self):
        return self.a.load_w if self.on else 0

    def word(self):
        return "ON" if self.on else "OFF"

    def silent(self):
        return self.a.silent_after is not None and time.monotonic() - self.t0 >= self.a.silent_after

    def pub(self, topic, payload, retain=False):
        if self.silent():
            return
        self.client.publish(topic, payload, qos=0, retain=retain)
        if self.a.verbose:
            print(f"sim {self.t}: {topic} {payload}", file=sys.stderr, flush=True)

    def energy(self, with_period):
        p = self.power_w()
        v = self.a.voltage
        pf = self.a.factor if p else 0.0
        s = p / pf if pf else 0.0
        q = (s * s - p * p) ** 0.5 if s else 0.0
        i = s / v if v else 0.0
        e = [("TotalStartTime", self.start_text), ("Total", round(self.total_wh / 1000, 3)),
             ("Yesterday", 0.0), ("Today", round(self.today_wh / 1000, 3))]
        # Tasmota prints these with fixed decimals; json.dumps would not.
        fmt = {"Total": 3, "Yesterday": 3, "Today": 3, "Factor": 2, "Current": 3}
        if with_period:
            e.append(("Period", int(round(self.period_wh))))
            self.period_wh = 0.0
        e += [("Power", int(round(p))), ("ApparentPower", int(round(s))),
              ("ReactivePower", int(round(q))), ("Factor", pf), ("Voltage", int(round(v))),
              ("Current", i)]
        parts = []
        for k, val in e:
            if isinstance(val, str):
                parts.append(f'"{k}":{json.dumps(val)}')
            elif k in fmt:
                parts.append(f'"{k}":{val:.{fmt[k]}f}')
            else:
                parts.append(f'"{k}":{val}')
        return '"ENERGY":{' + ",".join(parts) + "}"

    def send_state(self):
        up = int(time.time() - self.start)
        self.pub(f"tele/{self.t}/STATE",
                 '{"Time":"%s","Uptime":"%dT%02d:%02d:%02d","UptimeSec":%d,"Heap":28,'
                 '"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"POWER":"%s",'
                 '"Wifi":{"AP":1,"SSId":"Tasmota","BSSId":"00:00:00:00:00:00","Channel":13,'
                 '"RSSI":100,"LinkCount":1,"Downtime":"0T00:00:06"}}'
                 % (self._now_text(), up // 86400, up // 3600 % 24, up // 60 % 60, up % 60, up,
                    self.word()))

    def send_sensor(self):
        self.pub(f"tele/{self.t}/SENSOR", '{"Time":"%s",%s}' % (self._now_text(), self.energy(True)))

    def telemetry(self):
        with self.lock:
            self._integrate()
            self.send_state()
            self.send_sensor()

    def on_connect(self, client, userdata, flags, rc):
        if rc != 0:
            print(f"sim {self.t}: connect refused: {mqtt.connack_string(rc)}", file=sys.stderr, flush=True)
            return
        self.pub(f"tele/{self.t}/LWT", "Online", retain=True)
        self.pub(f"cmnd/{self.t}/POWER", "")  # "Satisfy iobroker (#299)", before subscribing
        client.subscribe(f"cmnd/{self.t}/#", qos=0)

    def reply_power(self):
        self.pub(f"stat/{self.t}/RESULT", '{"POWER":"%s"}' % self.word())
        self.pub(f"stat/{self.t}/POWER", self.word())

    def on_message(self, client, userdata, msg):
        if self.silent():
            return  # hung: neither obeys nor answers
        cmd = msg.topic.rsplit("/", 1)[-1].lower()
        arg = msg.payload.decode("utf-8", "replace").strip()
        with self.lock:
            self._integrate()
            if cmd in ("power", "power1"):
                w = CMD_WORDS.get(arg.lower())
                if w == 0 or w == 1:
                    changed = self.on != bool(w)
                    self.on = bool(w)
                elif w == 2:
                    self.on = not self.on
                    changed = True
                else:  # empty, "?" or a word it does not know: a status query
                    changed = False
                if changed:
                    self._save()
                self.reply_power()
            elif cmd == "teleperiod":
                if arg in ("", "?"):
                    self.pub(f"stat/{self.t}/RESULT", '{"TelePeriod":%d}' % self.teleperiod)
                    self.send_state()
                    self.send_sensor()
                    return
                try:
                    n = int(arg)
                except ValueError:
                    n = -1
                if n == 1:
                    n = 300
                if n == 0 or 10 <= n <= 3600:
                    self.teleperiod = n
                    self.next_tele = time.monotonic() + n if n else float("inf")
                self.pub(f"stat/{self.t}/RESULT", '{"TelePeriod":%d}' % self.teleperiod)
            elif cmd == "status" and arg in ("8", "10"):
                self.pub(f"stat/{self.t}/STATUS{arg}",
                         '{"StatusSNS":{"Time":"%s",%s}}' % (self._now_text(), self.energy(False)))
            else:
                self.pub(f"stat/{self.t}/RESULT", '{"Command":"Unknown"}')

    def run(self):
        self.client.connect(self.a.host, self.a.port, keepalive=self.a.keepalive)
        self.client.loop_start()
        try:
            while True:
                time.sleep(0.1)
                if self.teleperiod and time.monotonic() >= self.next_tele:
                    self.next_tele += self.teleperiod
                    self.telemetry()
        finally:
            self.client.loop_stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--user")
    ap.add_argument("--password", default=os.environ.get("SIM_MQTT_PASSWORD"))
    ap.add_argument("--topic", required=True, help="Tasmota %%topic%%, e.g. tasmota_A1B2C3")
    ap.add_argument("--load-w", type=float, default=1000.0, help="active power drawn while on (W)")
    ap.add_argument("--voltage", type=float, default=230.0)
    ap.add_argument("--factor", type=float, default=1.0, help="power factor while on")
    ap.add_argument("--total-wh", type=float, default=0.0, help="energy counter at start")
    ap.add_argument("--teleperiod", type=int, default=300, help="TelePeriod, s (0: none)")
    ap.add_argument("--keepalive", type=int, default=30, help="MqttKeepAlive, s")
    ap.add_argument("--power-on-state", type=int, choices=(0, 1, 3), default=3)
    ap.add_argument("--initial", choices=("ON", "OFF"), default="ON",
                    help="the saved state before any state file exists")
    ap.add_argument("--state-file", help="where the relay state survives a restart (PowerOnState 3)")
    ap.add_argument("--silent-after", type=float, help="publish nothing after this many s (still connected)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    # The firmware takes 0 or 10..3600; shorter periods are allowed here so that tests stay short.
    if not 0 <= a.teleperiod <= 3600:
        ap.error("--teleperiod: 0 to 3600")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    Plug(a).run()


if __name__ == "__main__":
    main()
