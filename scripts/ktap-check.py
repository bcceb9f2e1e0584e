#!/usr/bin/env python3
"""Judge a QEMU guest's serial console log (see Documentation/testing.md).

Fails the run on any "not ok", on a guest that did not reach its "done"
marker (crash, hang, timeout), on a kernel taint by a warning, and on any
kernel BUG/WARNING/Oops/GPF/list corruption/sleeping-in-atomic line, even
when every test said ok. Prints the leaf test results and one summary line
"LABEL: N passed, N failed, N skipped".
"""
import re
import sys

KERNEL_PROBLEMS = [
    r"BUG:", r"WARNING:", r"Oops", r"general protection fault",
    r"list_del corruption", r"list_add corruption",
    r"sleeping function called from invalid context",
    r"Kernel panic", r"Call Trace:", r"kernel BUG at", r"UBSAN:",
    r"KASAN:", r"INFO: task .* blocked for more than",
    r"watchdog: BUG: soft lockup", r"rcu: INFO: rcu_.* detected stalls",
    r"unreferenced object",
]
PROBLEM_RE = re.compile("|".join(KERNEL_PROBLEMS))
# Taint flags that mean the kernel itself went wrong (W, D, B, L, M); O and E
# (out-of-tree, unsigned modules) are expected for our modules.
BAD_TAINT = {"W": 9, "D": 7, "B": 5, "L": 14, "M": 4}
# "ok 3 name # SKIP why"; the 6.1 kselftest harness prints a skipped test
# without its name: "ok 1 # SKIP why".
RESULT_RE = re.compile(r"^(\s*)(not ok|ok) (\d+)(?: -)?\s*([^#]*?)\s*(?:#\s*(.*))?$")


def main():
    if len(sys.argv) < 3:
        print("usage: ktap-check.py LOG LABEL [--expect-fail]", file=sys.stderr)
        return 2
    log, label = sys.argv[1], sys.argv[2]
    with open(log, "rb") as f:
        text = f.read().decode("utf-8", "replace").replace("\r", "")
    lines = text.split("\n")

    passed = failed = skipped = 0
    problems = []
    done = False
    tainted = None
    current = None
    for line in lines:
        if "gridmeter-guest: done" in line:
            done = True
        m = re.search(r"gridmeter-guest: tainted=(\d+)", line)
        if m:
            tainted = int(m.group(1))
        m = re.match(r"# selftest: (\S+)", line)
        if m:
            current = m.group(1)
        if PROBLEM_RE.search(line):
            problems.append("kernel: " + line.strip())
            continue
        m = RESULT_RE.match(line)
        if not m:
            continue
        indent, verdict, _, name, directive = m.groups()
        directive = directive or ""
        if indent:  # a leaf test inside a test program
            if verdict == "not ok":
                failed += 1
                print(f"not ok {current}: {name} {directive}".rstrip())
            elif directive.upper().startswith("SKIP"):
                skipped += 1
            else:
                passed += 1
        elif verdict == "not ok":
            # the program failed: count it unless its leaves already did
            print(f"not ok {name} ({directive})")
            problems.append(f"test program {name} failed ({directive})")

    if tainted is not None:
        bad = [k for k, bit in BAD_TAINT.items() if tainted & (1 << bit)]
        if bad:
            problems.append(f"kernel tainted {tainted} ({''.join(bad)})")
    if not done:
        problems.append("guest did not finish (crash, hang or timeout); "
                        f"last test program: {current or 'none'}")

    # Deduplicate kernel lines seen both live and in the dmesg dump.
    seen = set()
    for p in problems:
        key = re.sub(r"^kernel: (# dmesg: )?(\[[ 0-9.]+\] )?", "", p)
        if key in seen:
            continue
        seen.add(key)
        print("FAIL: " + p)
    run_failed = failed + (1 if problems and failed == 0 else 0)
    print(f"{label}: {passed} passed, {run_failed} failed, {skipped} skipped")
    return 1 if (failed or problems) else 0


if __name__ == "__main__":
    sys.exit(main())
