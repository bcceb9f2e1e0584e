#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Whole-gateway power cuts, measured.

    tests/gateway/powercut.py [TRIALS]     after scripts/gateway-check.sh built
                                           the gateway image

The QEMU gateway image (systemd, meterd on the simulated ADC's default
230 V / 10 A line) is booted from a qcow2 overlay of the built image,
opened with cache=none: the guest's writes reach the host only when the
guest writes them out, and nothing QEMU has not written survives. While
meterd meters, QEMU is killed with SIGKILL at a moment chosen by the test
(at random, or in the middle of a burst of disk writes): for the guest that
is a power cut of the whole gateway. The image is then booted again, and
the energy meterd recovered is compared with the energy it had counted at
the moment of the cut:

    counted at the cut = ImportEnergy last read on the control line
                         + active power x time since that read
    recovered          = the import register of meterd's start-up line
                         "store: the recovered state ... registers import N mWh"
    lost               = counted at the cut - recovered

Each cut must lose at most the energy at risk by design (the load for
[store] persist_interval, plus one sample period and the measurement slack
of a few seconds of load), gain nothing, leave no corruption behind, and
meterd's start-up must say that the last stop was unclean and how old the
recovered state is. Prints KTAP (one test per cut) and a table of the
figures; logs in build/gateway/powercut/.
"""
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from ctl_line import ControlLine  # noqa: E402

TOP = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
W = os.path.join(TOP, "build", "gateway", "powercut")
IMG = os.path.join(TOP, "build", "gateway", "gateway-x86_64.img")
# the image's own kernel and initramfs (scripts/mk-gateway-image.sh links them)
KERNEL = os.path.join(TOP, "build", "gateway", "gateway-x86_64.vmlinuz")
INITRD = os.path.join(TOP, "build", "gateway", "gateway-x86_64.initrd")
M = "org.gridmeter.Meter1 /org/gridmeter/Meter1 org.gridmeter.Meter1"
SLACK_S = 4		# s of load: sampling lag, TCG time drift, the read itself


class Failed(Exception):
    pass


def log(msg):
    print("# " + msg, flush=True)


class Gateway(ControlLine):
    """One boot of the image: QEMU, its console log and its control line."""

    def __init__(self, n, overlay):
        self.n = n
        self.console = os.path.join(W, f"boot-{n}.log")
        sock = os.path.join(W, "ctl.sock")
        if os.path.exists(sock):
            os.unlink(sock)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(sock)
        listener.listen(1)
        super().__init__(f"boot {n}", listener, Failed)
        cmd = ["qemu-system-x86_64", "-M", "q35", "-cpu", "max", "-accel", "tcg",
               "-m", "1024", "-smp", "2", "-nographic", "-no-reboot", "-nic", "none",
               "-monitor", "none", "-display", "none",
               "-kernel", KERNEL, "-initrd", INITRD,
               "-append", "console=ttyS0 loglevel=5 panic=-1 oops=panic tsc=reliable root=LABEL=gmroot "
                          "gridmeter.ctl systemd.show_status=false",
               "-drive", f"file={overlay},format=qcow2,if=virtio,cache=none",
               "-serial", f"file:{self.console}",
               "-chardev", f"socket,id=ctl,path={sock},reconnect=1",
               "-serial", "chardev:ctl"]
        self.qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.console + ".qemu", "w"))

    def ready(self, timeout=300):
        self.accept(timeout)
        self.wait_ready(timeout)

    def prop(self, name):
        rc, out = self.run(f"busctl --system get-property {M} {name}")
        if rc:
            raise Failed(f"boot {self.n}: {name}: {out}")
        return out.split(None, 1)[1].strip()

    def cut(self):
        """Power cut: SIGKILL to QEMU."""
        self.qemu.send_signal(signal.SIGKILL)
        self.qemu.wait(30)
        self.close()

    def poweroff(self):
        try:
            self.run("systemctl --no-block poweroff", 20)
        except Failed:
            pass
        try:
            self.qemu.wait(120)
        except subprocess.TimeoutExpired:
            self.qemu.kill()
            self.qemu.wait(30)
        self.close()



def recovered(gw):
    """The import register and the start-up lines of meterd in this boot."""
    deadline = time.time() + 60
    while True:
        rc, out = gw.run("journalctl -b -u meterd --no-pager -o cat")
        m = re.search(r"store: the recovered state was saved.*?registers import (\d+) mWh", out)
        if m:
            return int(m.group(1)), out
        if gw.n == 0 and "store: no stored state" in out:
            return 0, out
        if time.time() > deadline:
            raise Failed(f"boot {gw.n}: no 'store: the recovered state ... registers import N mWh' line in "
                         f"meterd's journal:\n{out[-2000:]}")
        time.sleep(1)


def conf_value(gw, section, key, default):
    rc, out = gw.run(f"awk -v s='[{section}]' -v k='{key}' '/^\\[/ {{ i = ($0 == s); next }} "
                     f"i && $1 == k {{ print $3; exit }}' /etc/gridmeter/meterd.conf")
    return int(out) if rc == 0 and out.strip().isdigit() else default


def main():
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("GM_POWERCUTS", "3"))
    if not all(os.path.exists(f) for f in (IMG, KERNEL, INITRD)):
        print("powercut: no gateway image with its kernel and initramfs "
              "(run scripts/gateway-check.sh first)")
        return 1
    os.makedirs(W, exist_ok=True)
    overlay = os.path.join(W, "disk.qcow2")
    if os.path.exists(overlay):
        os.unlink(overlay)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", IMG, overlay],
                   check=True)
    rng = random.Random(int(os.environ.get("GM_POWERCUT_SEED", str(int(time.time())))))
    # the moments: at random, and in the middle of a burst of disk writes
    kinds = ["random" if i % 2 == 0 else "write-burst" for i in range(trials)]
    print("KTAP version 1")
    print(f"1..{trials + 1}", flush=True)
    n_ok, n_fail, results = 0, 0, []
    prev = None		# (counted at the cut, power W) of the previous boot
    persist_s = sample_ms = None
    for boot in range(trials + 1):
        gw = Gateway(boot, overlay)
        try:
            gw.ready()
            rec, journal = recovered(gw)
            if persist_s is None:
                persist_s = conf_value(gw, "store", "persist_interval", 60)
                sample_ms = conf_value(gw, "meter", "sample_interval_ms", 1000)
            if prev is not None:
                counted, p_w, kind, ran = prev
                lost = counted - rec
                bound = p_w * (persist_s + sample_ms / 1000 + SLACK_S) / 3.6
                slack = p_w * SLACK_S / 3.6
                age = re.search(r"(\d+) s before this start", journal)
                unclean = re.search(r"the last stop was NOT clean", journal)
                corrupt = re.search(r"corrupt", journal, re.I)
                why = []
                if lost > bound:
                    why.append(f"lost {lost:.0f} mWh > bound {bound:.0f} mWh")
                if lost < -slack:
                    why.append(f"gained {-lost:.0f} mWh: energy that was never metered")
                if not unclean:
                    why.append("start-up does not say the last stop was unclean")
                if not age:
                    why.append("start-up does not say how old the recovered state is")
                if corrupt:
                    why.append("the journal reports corruption: " + corrupt.group(0))
                alarms = gw.prop("Alarms")
                if "store-" in alarms:
                    why.append(f"alarms {alarms}")
                secs = lost * 3.6 / p_w
                results.append((boot, kind, ran, p_w, lost, secs, age.group(1) if age else "?"))
                desc = f"power cut {boot} ({kind}, after {ran:.0f} s): energy lost within the bound"
                log(f"cut {boot} ({kind}): counted {counted:.0f} mWh at the cut, recovered {rec} "
                    f"mWh: lost {lost:.0f} mWh = {secs:.1f} s of {p_w:.0f} W "
                    f"(bound {bound:.0f} mWh = {persist_s} s + {sample_ms} ms + {SLACK_S} s); "
                    f"recovered state {age.group(1) if age else '?'} s old")
                if why:
                    n_fail += 1
                    log("; ".join(why))
                    print(f"not ok {boot} {desc}", flush=True)
                else:
                    n_ok += 1
                    print(f"ok {boot} {desc}", flush=True)
            if boot == trials:
                # the last boot only reads what the last cut left
                ok = not re.search(r"corrupt", journal, re.I)
                print(f"{'ok' if ok else 'not ok'} {trials + 1} the store recovered after every "
                      f"cut without corruption", flush=True)
                n_ok, n_fail = n_ok + ok, n_fail + (not ok)
                gw.poweroff()
                break
            # meter for a while, reading the register as often as the line allows:
            # past the first periodic save (the loss is then what came after
            # it), or a short run cut in a burst of writes (all of it at risk)
            if kinds[boot] == "random":
                ran = rng.uniform(persist_s + 2, persist_s + 20)
            else:
                ran = rng.uniform(15, 25)
            t0 = time.time()
            p_w = int(gw.prop("ActivePower").split()[-1]) / 1000
            burst_started = False
            last_e = last_t = None
            while True:
                e = int(gw.prop("ImportEnergy").split()[-1])
                last_e, last_t = e, time.time()
                if kinds[boot] == "write-burst" and not burst_started and \
                        last_t - t0 >= ran - 3:
                    gw.run("nohup dd if=/dev/urandom of=/var/tmp/burst bs=64k count=4000 "
                           "conv=fsync >/dev/null 2>&1 &")
                    burst_started = True
                if last_t - t0 >= ran:
                    break
                time.sleep(0.3)
            p_w = (p_w + int(gw.prop("ActivePower").split()[-1]) / 1000) / 2
            t_cut = time.time()
            gw.cut()
            counted = last_e + p_w * (t_cut - last_t) / 3.6
            prev = (counted, p_w, kinds[boot], t_cut - t0)
        except Failed as e:
            log(str(e))
            gw.qemu.kill()
            gw.close()
            n_fail += 1
            print(f"not ok {boot + 1} boot {boot}", flush=True)
            break
    if results:
        log("cut | moment | metered for | load | lost | lost as load time | state age at boot")
        for r in results:
            log(f"{r[0]} | {r[1]} | {r[2]:.0f} s | {r[3]:.0f} W | {r[4]:.0f} mWh | {r[5]:.1f} s | "
                f"{r[6]} s")
        worst = max(results, key=lambda r: r[4])
        log(f"worst cut: {worst[4]:.0f} mWh ({worst[5]:.1f} s of load)")
    print(f"powercut: {n_ok} passed, {n_fail} failed, 0 skipped")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
