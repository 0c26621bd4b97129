#!/usr/bin/env python3
"""Counts the CPU time used by processes that are NOT part of the benchmark (stdlib only).

  cpuwatch.py OUT_FILE OWNER_PID [--interval 0.5] [--max-seconds 7200]

Every interval it reads utime+stime of every process in /proc and adds up the increase of
those that are foreign: not OWNER_PID or its descendants, not run by the postgres user (the
throwaway cluster and PgBouncer), not kernel threads. OUT_FILE always holds one line:
"<foreign clock ticks since start> <foreign ticks in the last 2 s>", rewritten atomically.
bench/run.sh reads it before and after each pgbench run, waits for a quiet machine before a
run, and flags runs during which something else (say, a compiler) used the CPU. Exits when
OWNER_PID is gone or after --max-seconds.
"""
import argparse
import os
import pwd
import time


def read_procs():
    """pid -> (ppid, uid, ticks, is_kernel_thread)"""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                data = f.read()
            st = os.stat(f"/proc/{name}")
        except OSError:
            continue
        rest = data.rsplit(")", 1)[1].split()
        ppid = int(rest[1])
        flags = int(rest[6])
        ticks = int(rest[11]) + int(rest[12])
        out[int(name)] = (ppid, st.st_uid, ticks, bool(flags & 0x00200000))  # PF_KTHREAD
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("owner", type=int)
    p.add_argument("--interval", type=float, default=0.5)
    p.add_argument("--max-seconds", type=float, default=7200)
    a = p.parse_args()
    try:
        pg_uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        pg_uid = -1
    me = os.getpid()
    last = {}
    total = 0
    recent = []  # (time, ticks) of the last samples
    deadline = time.monotonic() + a.max_seconds
    while time.monotonic() < deadline and os.path.exists(f"/proc/{a.owner}"):
        procs = read_procs()
        ours = {a.owner, me}
        # Descendants of the owner (parents listed before children is not guaranteed: iterate).
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _, _, _) in procs.items():
                if ppid in ours and pid not in ours:
                    ours.add(pid)
                    changed = True
        step = 0
        for pid, (ppid, uid, ticks, kthread) in procs.items():
            prev = last.get(pid)
            # A process first seen now counts from now on.
            delta = ticks - prev if prev is not None else 0
            if pid not in ours and uid != pg_uid and not kthread and delta > 0:
                step += delta
        last = {pid: v[2] for pid, v in procs.items()}
        total += step
        now = time.monotonic()
        recent.append((now, step))
        recent = [(t, s) for t, s in recent if now - t <= 2.0]
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{total} {sum(s for _, s in recent)}\n")
        os.replace(tmp, a.out)
        time.sleep(a.interval)


if __name__ == "__main__":
    main()
