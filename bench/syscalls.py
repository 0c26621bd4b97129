#!/usr/bin/env python3
"""System calls per transaction from one traced pgbench run (stdlib only).

  syscalls.py [--label TEXT] STRACE_SUMMARY T0 T1 PGBENCH_LOG...

bench/run.sh runs pgbench with `-l` (one log line per transaction), waits until its clients
are connected and logged in, then attaches `strace -f -c -p PID` to the proxy (-f with -p
attaches every thread of PID, and any thread it starts later) from T0 to T1 (Unix time,
seconds) and detaches it with SIGINT, so the connection phase is not counted. This prints one
JSON object on stdout:

  {"txns": transactions pgbench logged as completed between T0 and T1,
   "window_s": T1 - T0, "calls": total system calls strace counted,
   "errors": total calls that returned an error (EAGAIN and the like),
   "by_call": {"recvfrom": calls, ...}}

and, with --label, one line for the person watching on stderr.

The per-transaction log line (pgbench 15) is "client_id transaction_no time script_no
time_epoch time_us [...]"; time_epoch + time_us / 1e6 is when the transaction completed.
"""
import json
import sys


def parse_strace(path):
    """strace -c summary -> (total calls, total errors, {syscall: calls})."""
    by_call, total, errors = {}, None, None
    with open(path) as f:
        lines = f.read().splitlines()
    in_table = False
    for line in lines:
        s = line.strip()
        if s.startswith("% time"):
            in_table = True
            continue
        if not in_table or not s or s.startswith("-"):
            continue
        tok = s.split()
        # "% time  seconds  usecs/call  calls  [errors]  syscall"; errors is blank when 0.
        if len(tok) < 5:
            continue
        try:
            calls = int(tok[3])
            errs = int(tok[4]) if len(tok) >= 6 else 0
        except ValueError:
            continue
        name = tok[-1]
        if name == "total":
            total, errors = calls, errs
        else:
            by_call[name] = by_call.get(name, 0) + calls
    if total is None:
        total = sum(by_call.values())
    return total, errors or 0, by_call


def count_txns(paths, t0, t1):
    n = 0
    for p in paths:
        try:
            f = open(p)
        except OSError:
            continue
        with f:
            for line in f:
                tok = line.split()
                if len(tok) < 6:
                    continue
                try:
                    t = int(tok[4]) + int(tok[5]) / 1e6
                except ValueError:
                    continue
                if t0 <= t <= t1:
                    n += 1
    return n


def main():
    args = sys.argv[1:]
    label = None
    if len(args) >= 2 and args[0] == "--label":
        label, args = args[1], args[2:]
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    summary, t0, t1 = args[0], float(args[1]), float(args[2])
    total, errors, by_call = parse_strace(summary)
    txns = count_txns(args[3:], t0, t1)
    print(json.dumps({
        "txns": txns,
        "window_s": round(t1 - t0, 3),
        "calls": total,
        "errors": errors,
        "by_call": dict(sorted(by_call.items(), key=lambda kv: -kv[1])),
    }))
    if label is not None:
        what = f"{total / txns:.2f} calls/txn over {txns} transactions" if txns else "no transactions traced"
        print(f"    strace {label} {what}", file=sys.stderr)


if __name__ == "__main__":
    main()
