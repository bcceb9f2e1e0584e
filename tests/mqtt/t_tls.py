#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""gm-mqttd over TLS with a client certificate, against a real mosquitto.

tests/mqtt/broker.sh with TLS_PORT makes a test CA, a server certificate for
localhost/127.0.0.1 and client certificates (and the same client names signed by
another CA), and listens with require_certificate + use_identity_as_username. The
bridge (its mqtt_client.c, libmosquitto's TLS) with:
  - ca_file + its own certificate and key, no password: connects, announces itself
    (online retained, seen by an observer on the plain listener) and the broker
    names it by its certificate's CN ("bridge");
  - ca_file only (no client certificate): the broker refuses the handshake
    ("peer did not return a certificate");
  - a certificate signed by another CA: refused ("certificate verify failed");
  - the right certificate but trusting another CA: the bridge refuses the broker
    (no client ever connected);
  - host "localhost" and "127.0.0.1" both match the server certificate.
meterd runs on a private bus (meterd_env.py): the bridge is online only while it is there.
Usage: t_tls.py PATH/TO/gm-mqttd PATH/TO/meterd. Exit 0, 1 (failures listed) or 77 (no mosquitto,
openssl or paho).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from t_tasmota_sim import HERE, Observer, check, failures, free_port, usage_or_missing  # noqa: E402
from meterd_env import MeterEnv  # noqa: E402

WAIT_S = 5.0    # how long a refused bridge is given to (not) get in: it retries after 1, 2 s


def conf(d, name, port, host, ca, cert=None, key=None):
    path = os.path.join(d, f"{name}.conf")
    with open(path, "w") as f:
        f.write(f"[broker]\nhost = {host}\nport = {port}\nclient_id = bridge-{name}\nkeepalive = 5\n"
                f"ca_file = {ca}\n")
        if cert:
            f.write(f"cert_file = {cert}\nkey_file = {key}\n")
        f.write("\n[homeassistant]\nbase_topic = gridmeter/101\n\n"
                "[plug.washer]\ntype = tasmota\ntopic = plug1\ntelemetry = 10\n")
    return path


def log_since(logf, pos):
    with open(logf, errors="replace") as f:
        f.seek(pos)
        return f.read()


def main():
    status = usage_or_missing(__doc__, ("mosquitto", "openssl", "dbus-daemon", "busctl"))
    if status is not None:
        return status
    exe, meterd = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    d = tempfile.mkdtemp(prefix="gm-tls-")
    os.chmod(d, 0o711)
    port, tport = free_port(), free_port()
    bdir = os.path.join(d, "broker")
    pid = int(subprocess.check_output([os.path.join(HERE, "broker.sh"), bdir, str(port), "bridge:bpw",
                                       "observer:opw"], env=dict(os.environ, TLS_PORT=str(tport))).decode())
    t = os.path.join(bdir, "tls")
    logf = os.path.join(bdir, "mosquitto.log")
    env = MeterEnv(os.path.join(d, "meterd"), meterd, [])
    # The bridge runs as root here; its key files are 0600 like a credential.
    try:
        obs = Observer(port)
        cases = [
            ("cert", "localhost", os.path.join(t, "ca.crt"), "bridge", True, r"New client connected .* u'bridge'"),
            ("cert-ip", "127.0.0.1", os.path.join(t, "ca.crt"), "bridge", True, r"u'bridge'"),
            ("no-cert", "localhost", os.path.join(t, "ca.crt"), None, False, r"peer did not return a certificate"),
            ("other-ca-cert", "localhost", os.path.join(t, "ca.crt"), "other-bridge", False,
             r"certificate verify failed"),
            ("wrong-ca", "localhost", os.path.join(t, "other-ca.crt"), "bridge", False, None),
        ]
        for name, host, ca, who, ok, logre in cases:
            cert = os.path.join(t, f"{who}.crt") if who else None
            key = os.path.join(t, f"{who}.key") if who else None
            pos = os.path.getsize(logf)
            since = len(obs.msgs)
            br = subprocess.Popen([exe, "-c", conf(d, name, tport, host, ca, cert, key)])
            _, m = obs.wait(lambda tp, pl, r: tp == "gridmeter/101/status" and pl == "online",
                            timeout=15.0 if ok else WAIT_S, since=since)
            alive = br.poll() is None
            br.send_signal(signal.SIGTERM)
            try:
                br.wait(10)
            except subprocess.TimeoutExpired:
                br.kill()
                br.wait()
            log = log_since(logf, pos)
            attempted = re.search(rf"New connection from 127\.0\.0\.1:\d+ on port {tport}", log) is not None
            if ok:
                check(m is not None, f"{name}: the bridge is online over TLS with its client certificate")
                check(re.search(logre, log) is not None, f"{name}: the broker knows it by its certificate's CN")
                # its clean stop: offline, retained
                _, m2 = obs.wait(lambda tp, pl, r: tp == "gridmeter/101/status" and pl == "offline",
                                 since=since)
                check(m2 is not None, f"{name}: offline published on SIGTERM")
            else:
                check(m is None and alive, f"{name}: no way in, and the bridge keeps running (retrying)")
                check(attempted, f"{name}: the bridge did reach the TLS port")
                check(not re.search(r"New client connected from .* u'", log),
                      f"{name}: no client connected on the TLS port")
                if logre:
                    check(re.search(logre, log) is not None, f"{name}: the broker says why ('{logre}')")
        obs.stop()
    finally:
        env.close()
        os.kill(pid, signal.SIGTERM)
    if failures:
        print(f"{len(failures)} failures:", *failures, sep="\n  ")
        print(f"(broker log: {logf})")
        return 1
    shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
