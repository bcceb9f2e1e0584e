# SPDX-License-Identifier: GPL-2.0
"""Hosts and links of the town network test, in network namespaces.

Every host is a namespace named PREFIX + host; every link is a veth pair
created straight into its two namespaces, with its own /30 subnet
(10.212.K.0/30: .1 on end A, .2 on end B), so one link can be cut
(`ip link set down`) or degraded (`tc qdisc ... netem`) alone, and no
traffic is ever routed: a host reaches only its direct neighbours. The
interface at each end is named after the host at the other end.

PREFIX is "gmtn" + the test's pid + "-": runs of the test side by side do
not meet, and a run that sees namespaces of a pid that no longer exists
(an earlier run that crashed) kills what runs in them and deletes them.
"""
import os
import re
import signal
import subprocess
import time

STALE = re.compile(r"^gmtn(\d+)-")


def sh(args, check=True, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, **kw)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {r.stdout.strip()}")
    return r


def tools_missing():
    """What of iproute2 this test needs and cannot find (empty: all there)."""
    return [t for t in ("ip", "tc") if not any(
        os.access(os.path.join(d, t), os.X_OK)
        for d in os.environ.get("PATH", "/usr/sbin:/usr/bin").split(":") + ["/usr/sbin", "/sbin"])]


def ns_list():
    r = sh(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def ns_kill_all(ns):
    r = sh(["ip", "netns", "pids", ns], check=False)
    pids = [int(p) for p in r.stdout.split() if p.isdigit()]
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def clean_stale(log):
    """Namespaces of earlier runs whose process is gone: their processes
    killed, the namespaces deleted."""
    for ns in ns_list():
        m = STALE.match(ns)
        if not m:
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and os.path.exists(f"/proc/{pid}"):
            continue  # a run still going
        pids = ns_kill_all(ns)
        sh(["ip", "netns", "del", ns], check=False)
        log(f"removed stale namespace {ns} (killed {len(pids)} processes)")


class Link:
    def __init__(self, net, k, a, b):
        self.net, self.k, self.a, self.b = net, k, a, b
        self.addr = {a: f"10.212.{k}.1", b: f"10.212.{k}.2"}
        self.ifname = {a: b[:15], b: a[:15]}  # named after the other end
        self.impaired = False

    def name(self):
        return f"{self.a}-{self.b}"

    def peer_addr(self, host):
        """The address host reaches its neighbour at over this link."""
        return self.addr[self.b if host == self.a else self.a]

    def set(self, up):
        """Cut (False) or restore (True) the link: the interface at end A
        down; the veth peer then has no carrier either."""
        self.net.ip(self.a, "link", "set", "dev", self.ifname[self.a], "up" if up else "down")

    def netem(self, spec):
        """netem on both ends (e.g. "loss 10% delay 40ms"); None removes it."""
        for h in (self.a, self.b):
            if spec is None:
                self.net.tc(h, "qdisc", "del", "dev", self.ifname[h], "root", check=False)
            else:
                self.net.tc(h, "qdisc", "replace", "dev", self.ifname[h], "root", "netem",
                            *spec.split())
        self.impaired = spec is not None

    def drop(self, percent):
        """Random loss without netem: nftables drops percent % of what each
        end receives over this link (the input hook, as loss on the wire
        would look to the receiver); 0 removes it."""
        for h in (self.a, self.b):
            table = f"gmtn_{self.ifname[h]}"
            self.net.nft(h, "delete", "table", "inet", table, check=False)
            if percent:
                self.net.nft(h, script=f"""table inet {table} {{
  chain input {{
    type filter hook input priority 0; policy accept;
    iifname "{self.ifname[h]}" numgen random mod 100 < {percent} counter drop
  }}
}}""")
        self.impaired = bool(percent)

    def dropped(self):
        """Packets the nftables loss dropped at both ends so far."""
        n = 0
        for h in (self.a, self.b):
            r = self.net.nft(h, "list", "table", "inet", f"gmtn_{self.ifname[h]}", check=False)
            m = re.search(r"counter packets (\d+)", r.stdout)
            n += int(m.group(1)) if m else 0
        return n


class Net:
    def __init__(self, log):
        self.log = log
        self.prefix = f"gmtn{os.getpid()}-"
        self.hosts, self.links = [], []

    def ns(self, host):
        return self.prefix + host

    def ip(self, host, *args, check=True):
        return sh(["ip", "-n", self.ns(host), *args], check=check)

    def tc(self, host, *args, check=True):
        return sh(["tc", "-n", self.ns(host), *args], check=check)

    def nft(self, host, *args, script=None, check=True):
        """nft in host's namespace: a command (args) or a script (nft -f -)."""
        if script is not None:
            return sh(self.exec_args(host, ["nft", "-f", "-"]), check=check, input=script)
        return sh(self.exec_args(host, ["nft", *args]), check=check)

    def exec_args(self, host, args):
        """A command line that runs args in host's namespace."""
        return ["ip", "netns", "exec", self.ns(host), *args]

    def add_host(self, host):
        sh(["ip", "netns", "add", self.ns(host)])
        self.hosts.append(host)
        self.ip(host, "link", "set", "dev", "lo", "up")

    def add_link(self, a, b):
        link = Link(self, len(self.links) + 1, a, b)
        sh(["ip", "link", "add", "name", link.ifname[a], "netns", self.ns(a), "type", "veth",
            "peer", "name", link.ifname[b], "netns", self.ns(b)])
        for h in (a, b):
            self.ip(h, "addr", "add", link.addr[h] + "/30", "dev", link.ifname[h])
            self.ip(h, "link", "set", "dev", link.ifname[h], "up")
        self.links.append(link)
        return link

    def link(self, a, b):
        for link in self.links:
            if {link.a, link.b} == {a, b}:
                return link
        raise KeyError(f"no link {a}-{b}")

    def netem_available(self):
        """None when netem works here, else why not."""
        if not self.links:
            return "no link"
        link = self.links[0]
        r = self.tc(link.a, "qdisc", "add", "dev", link.ifname[link.a], "root", "netem",
                    "delay", "1ms", check=False)
        if r.returncode:
            return ("tc netem refused (" + r.stdout.strip().splitlines()[-1] +
                    "): this kernel has no sch_netem (CONFIG_NET_SCH_NETEM) and cannot load it")
        self.tc(link.a, "qdisc", "del", "dev", link.ifname[link.a], "root", check=False)
        return None

    def nft_available(self):
        """None when nftables can drop packets here, else why not."""
        if not any(os.access(os.path.join(d, "nft"), os.X_OK)
                   for d in ("/usr/sbin", "/sbin", "/usr/bin")):
            return "no nft (nftables; scripts/deps.sh installs it)"
        link = self.links[0]
        try:
            link.drop(1)
            link.drop(0)
        except RuntimeError as e:
            return f"nftables refused: {e}"
        return None

    def teardown(self):
        """Every process in our namespaces killed, the namespaces deleted
        (the veth pairs go with them)."""
        for host in self.hosts:
            ns_kill_all(self.ns(host))
        time.sleep(0.1)
        for host in self.hosts:
            sh(["ip", "netns", "del", self.ns(host)], check=False)
        self.hosts = []
