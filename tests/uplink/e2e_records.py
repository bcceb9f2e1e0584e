# SPDX-License-Identifier: GPL-2.0
"""The records of the uplink end-to-end test (tests/uplink/e2e.py): meterd's
outbox as it is on a guest's disk, what townd stores of each record, and
the checks that compare them; the tariffs as townctl takes them and meterd
shows them."""
import io
import tarfile

LOST = 7                                # events.type of a lost range


class Failed(Exception):
    """A step's check did not hold (its message says what)."""


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def cbor_array(buf):
    """One CBOR array of integers and byte strings (a gmproto message)."""
    def head(off):
        ib = buf[off]
        major, ai, off = ib >> 5, ib & 31, off + 1
        if ai < 24:
            return major, ai, off
        n = {24: 1, 25: 2, 26: 4, 27: 8}[ai]
        return major, int.from_bytes(buf[off:off + n], "big"), off + n
    major, n, off = head(0)
    if major != 4:
        raise ValueError("not an array")
    out = []
    for _ in range(n):
        major, v, off = head(off)
        if major == 0:
            out.append(v)
        elif major == 1:
            out.append(-1 - v)
        elif major == 2:
            out.append(bytes(buf[off:off + v]))
            off += v
        else:
            raise ValueError(f"major type {major}")
    return out


def record_row(msg):
    """What townd stores for a record message: the row townd's tables hold."""
    t, seq = msg[0], msg[1]
    if t == 1:          # reading: start, interval, import, export, renew, flags
        return seq, ("readings", *msg[2:8])
    if t in (2, 3, 4):  # registers, alarm, alloc-request: time, three values
        return seq, ("events", t, msg[2], msg[3], msg[4], msg[5])
    if t == 5:          # alloc-release: time, req_id
        return seq, ("events", t, msg[2], msg[3], 0, 0)
    if t == 11:         # key-rotate: time
        return seq, ("events", t, msg[2], 0, 0, 0)
    raise ValueError(f"record type {t}")


def outbox_records(tgz):
    """seq -> stored row of every intact record in a tar of outbox segments
    (lib/proto/outbox.c: a7 00 len16 seq64 payload crc32c, little endian)."""
    recs = {}
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read()
            off = 0
            while off + 16 <= len(data) and data[off] == 0xA7 and data[off + 1] == 0:
                n = int.from_bytes(data[off + 2:off + 4], "little")
                end = off + 12 + n
                if end + 4 > len(data) or \
                   crc32c(data[off:end]) != int.from_bytes(data[end:end + 4], "little"):
                    break       # a torn tail (the segment being written)
                seq = int.from_bytes(data[off + 4:off + 12], "little")
                s2, row = record_row(cbor_array(data[off + 12:end]))
                if s2 != seq:
                    raise Failed(f"outbox {m.name}: record {seq} says {s2}")
                recs[seq] = row
                off = end + 4
    return recs


def tariff_args(windows):
    """townctl tariff's MIN:IMPORT:EXPORT arguments (export 4000 milli-pence/kWh)."""
    return [f"{m}:{p}:4000" for m, p in windows]


def tariff_view(windows):
    """How meterd shows such a tariff (Tariff property): its rates and weekday."""
    prices = list(dict.fromkeys(p for _, p in windows))
    rates = ", ".join(f"p{i + 1}:{p // 1000}.{p % 1000:03d}" for i, p in enumerate(prices))
    ends = [m for m, _ in windows[1:]] + [1440]
    day = ", ".join(f"{m // 60:02d}:{m % 60:02d}-{e // 60:02d}:{e % 60:02d} "
                    f"p{prices.index(p) + 1}" for (m, p), e in zip(windows, ends))
    return rates, day


def stored_in_order(town, meter, upto, lost_ok=()):
    """Every record 1..upto stored exactly once, or (the seqs of lost_ok only)
    inside one range the meter reported lost; each table in sequence order."""
    rows = town.records(meter)
    lost = [(a, b) for a, b in town.lost(meter) if a <= upto]
    reported = {s for a, b in lost for s in range(a, b + 1)}
    if reported != set(lost_ok):
        want = f"#{min(lost_ok)}..#{max(lost_ok)}" if lost_ok else "none"
        raise Failed(f"meter {meter}: lost ranges {lost}, expected {want}")
    seqs = [s for _, _, s in rows if s <= upto]
    for a, b in lost:
        seqs += range(a, b + 1)
    seqs.sort()
    if seqs != list(range(1, upto + 1)):
        missing = sorted(set(range(1, upto + 1)) - set(seqs))
        dups = len(seqs) - len(set(seqs))
        raise Failed(f"meter {meter}: {len(seqs)} records stored of 1..{upto}: "
                     f"missing {missing[:10]}{'...' if len(missing) > 10 else ''}, "
                     f"{dups} duplicates (lost ranges {lost})")
    for table in ("readings", "events"):
        order = [s for t, _, s in sorted(rows, key=lambda r: r[1]) if t == table]
        bad = [(a, b) for a, b in zip(order, order[1:]) if b < a]
        if bad:
            raise Failed(f"meter {meter}: {table} stored out of order, e.g. {bad[:3]}")
    return (f"meter {meter}: records 1..{upto} stored once each, in order" +
            (f" (lost ranges {lost})" if lost else ""))


def same_records(town, meter, made, what):
    """Every record of `made` (seq -> row, from the meter's disk) is the one
    townd stored under its seq. Returns how many were compared."""
    stored = town.rows(meter)
    missing = [s for s in made if s not in stored]
    differ = [s for s in made if s in stored and stored[s] != made[s]]
    if missing or differ:
        s0 = (differ or missing)[0]
        raise Failed(f"meter {meter}: of {len(made)} records {what}, {len(missing)} not "
                     f"stored (e.g. {missing[:5]}), {len(differ)} stored with other contents "
                     f"(#{s0}: made {made[s0]}, stored {stored.get(s0)})")
    return len(made)
