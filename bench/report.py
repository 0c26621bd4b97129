#!/usr/bin/env python3
"""Write BENCHMARKS.md from bench/run.sh's raw results (stdlib only).

  report.py PGBENCH_TSV MEMORY_JSONL OUT_MD [SYSCALLS_JSONL]

Run settings and versions come from BENCH_* environment variables set by bench/run.sh.
Per cell and target: TPS and latency are the median over the rounds; CPU per transaction
(user, system and their sum) is the proxy's CPU time over all rounds divided by all
transactions of those rounds; errors are failed transactions plus aborted clients (and failed
connections) over all rounds. "qcp2" is a second qcp with worker_threads: 2, run only in
the cells of BENCH_QCP2_CELLS, compared with qcp (1 thread) from the same rounds.
"pgbouncer_tls" and "qcp_tls" are a PgBouncer and a qcp with TLS on both sides (clients and
server), run only in the cells of BENCH_TLS_CELLS and compared with each other; the other
proxies are clear text on both sides. System calls per transaction come from the separate
traced runs (SYSCALLS_JSONL, one line per cell and proxy, written by bench/run.sh with
bench/syscalls.py). MEMORY_JSONL has the idle-client and login tests (of every proxy, the TLS
ones with TLS clients) and, as "server_tls", which server connections of each proxy
pg_stat_ssl showed encrypted.
"""
import csv
import datetime
import json
import os
import platform
import statistics
import sys
from collections import defaultdict

E = os.environ.get
TARGETS = ["direct", "pgbouncer", "qcp", "qcp2", "pgbouncer_tls", "qcp_tls"]
NAMES = {"direct": "direct", "pgbouncer": "PgBouncer", "qcp": "qcp", "qcp2": "qcp, 2 threads",
         "pgbouncer_tls": "PgBouncer, TLS", "qcp_tls": "qcp, TLS"}
QCP2_MAX = 1.10  # target: worker_threads 2 costs at most 10% more CPU per transaction than 1
TLS_CPU_MAX = 1.0  # target (issue 12): qcp's CPU per transaction with TLS ≤ PgBouncer's with TLS
TLS_IDLE_MAX = 8.0  # target (issue 12): RSS growth per idle TLS client, KB, beyond the arena
MEM_TARGETS = ["pgbouncer", "qcp", "pgbouncer_tls", "qcp_tls"]


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def fmt(v, digits=0, none="n/a"):
    if v is None:
        return none
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def load_pgbench(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows.append(r)
    return rows


def aggregate(rows):
    cells = {}  # (wl, mode, clients) -> target -> dict
    order = []
    groups = defaultdict(list)
    for r in rows:
        key = (r["workload"], r["mode"], int(r["clients"]))
        if key not in order:
            order.append(key)
        groups[(key, r["target"])].append(r)
    clk = float(E("BENCH_CLK_TCK") or 100)
    for key in order:
        cells[key] = {}
        for t in TARGETS:
            rs = groups.get((key, t), [])
            if not rs:
                continue
            if all(r["exit"] == "na" for r in rs):
                cells[key][t] = {"na": rs[0]["note"]}
                continue
            rs = [r for r in rs if r["exit"] != "na"]
            # Runs during which other processes used over 5% of the CPU count only if there
            # is no other run of the cell.
            clean = [r for r in rs if (num(r.get("foreign_pct")) or 0) <= 5]
            disturbed = len(rs) - len(clean)
            if clean:
                rs = clean
            tps = [num(r["tps"]) or 0.0 for r in rs]
            lat = [num(r["latency_ms"]) for r in rs if num(r["latency_ms"]) is not None]
            txns = sum(int(r["txns"] or 0) for r in rs)
            errors = sum(int(r["failed"] or 0) + int(r["aborted"] or 0) for r in rs)
            bad_exit = sum(1 for r in rs if r["exit"] not in ("0", ""))
            cpu = [num(r["cpu_ticks"]) for r in rs if r["cpu_ticks"] != ""]
            cpu_us = None
            if cpu and txns > 0:
                cpu_us = sum(cpu) / clk * 1e6 / txns
            # User and system time separately (older raw files have only their sum).
            ut = [num(r.get("utime_ticks")) for r in rs]
            st = [num(r.get("stime_ticks")) for r in rs]
            user_us = sys_us = None
            if cpu_us is not None and None not in ut and None not in st:
                user_us = sum(ut) / clk * 1e6 / txns
                sys_us = sum(st) / clk * 1e6 / txns
            notes = sorted({r["note"] for r in rs if r["note"]})
            cells[key][t] = {
                "tps": statistics.median(tps) if tps else None,
                "lat": statistics.median(lat) if lat else None,
                "txns": txns,
                "errors": errors,
                "bad_exit": bad_exit,
                "cpu_us": cpu_us,
                "user_us": user_us,
                "sys_us": sys_us,
                "notes": notes,
                "runs": len(rs),
                "disturbed": disturbed,
                "used_disturbed": not clean,
            }
    return order, cells


def wname(wl):
    return "-S (select only)" if wl == "S" else "tpcb-like"


def cval(c, t, f):
    d = c.get(t)
    return None if d is None or "na" in d else d.get(f)


def cell_getter(c):
    def g(t, f, digits=0):
        d = c.get(t)
        if d is None:
            return "—"
        if "na" in d:
            return "n/a"
        return fmt(d.get(f), digits)
    return g


def sys_get(sysc, key, t):
    e = sysc.get(key, {}).get(t)
    return None if e is None else e["calls_txn"]


def sys_cell(sysc, key, t, c):
    e = sysc.get(key, {}).get(t)
    if e is None:
        d = c.get(t)
        return "n/a" if d is not None and "na" in d else "—"
    if e["calls_txn"] is None:
        return "failed"
    return f"{e['calls_txn']:.2f}"


def load_memory(path):
    """idle: target -> result; logins: target -> [result per round]; server_tls: target -> check."""
    idle, logins, server_tls = {}, defaultdict(list), {}
    if not os.path.exists(path):
        return idle, logins, server_tls
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            if d["test"] == "idle":
                idle[d["target"]] = d["result"]
            elif d["test"] == "server_tls":
                server_tls[d["target"]] = d["result"]
            else:
                logins[d["target"]].append(d["result"])
    return idle, logins, server_tls


def idle_growth(d):
    """RSS growth per idle client in KB, or None."""
    if not d or not d.get("ok") or d.get("rss_after_kb") is None or d.get("rss_before_kb") is None:
        return None
    return (d["rss_after_kb"] - d["rss_before_kb"]) / d["ok"]


def server_tls_text(e):
    """'20 of 20 encrypted (TLSv1.3 TLS_AES_256_GCM_SHA384)' from a server_tls check."""
    if e is None:
        return "not checked"
    if e.get("error"):
        return e["error"]
    if not e.get("conns"):
        return "no server connection open"
    params = ", ".join(f"{k}" + (f" ×{v}" if v != e.get("tls") else "") for k, v in (e.get("params") or {}).items())
    return f"{e.get('tls', 0)} of {e['conns']} encrypted" + (f" ({params})" if params else "")


def client_tls_text(idle, logins, t):
    """What bench/pgclient.py --tls negotiated with proxy t (every connection of its tests)."""
    seen = defaultdict(int)
    for r in [idle.get(t)] + list(logins.get(t, [])):
        for k, v in ((r or {}).get("tls") or {}).items():
            seen[k] += v
    return ", ".join(seen) if seen else "not recorded"


def load_syscalls(path):
    """(workload, mode, clients) -> target -> traced run: calls_txn, top [(call, per txn)], ..."""
    out = defaultdict(dict)
    if not path or not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            res = d.get("result") or {}
            key = (d["workload"], d["mode"], int(d["clients"]))
            txns = res.get("txns") or 0
            e = {
                "txns": txns,
                "window_s": res.get("window_s"),
                "calls": res.get("calls"),
                "error": res.get("error"),
                "ended_early": d.get("ended_early", False),
                "exit": d.get("pgbench_exit"),
                "calls_txn": None,
                "errors_txn": None,
                "top": [],
            }
            if txns and res.get("calls") is not None:
                e["calls_txn"] = res["calls"] / txns
                e["errors_txn"] = (res.get("errors") or 0) / txns
                by = sorted((res.get("by_call") or {}).items(), key=lambda kv: -kv[1])
                e["top"] = [(k, v / txns) for k, v in by]
            elif not e["error"]:
                e["error"] = "no transactions completed while strace was attached"
            out[key][d["target"]] = e
    return out


def top_calls(e, n=6, floor=0.01):
    """'recvfrom 2.00, sendto 2.00, epoll_wait 0.16' (the n most frequent, each ≥ floor/txn)."""
    parts = [f"{k} {v:.2f}" for k, v in e["top"][:n] if v >= floor]
    rest = sum(v for _, v in e["top"][n:])
    if rest >= floor:
        parts.append(f"others {rest:.2f}")
    return ", ".join(parts)


def main():
    raw_path, mem_path, out_path = sys.argv[1:4]
    sys_path = sys.argv[4] if len(sys.argv) > 4 else None
    rows = load_pgbench(raw_path)
    order, cells = aggregate(rows)
    idle, logins, server_tls = load_memory(mem_path)
    sysc = load_syscalls(sys_path)
    for key in sysc:
        if key not in order:
            order.append(key)
            cells[key] = {}
    pgb_prepared = E("BENCH_PGB_PREPARED") == "1"
    arena = int(E("BENCH_QCP_ARENA_BYTES") or 0)
    out = []
    w = out.append
    quick = E("BENCH_QUICK") == "1"

    w("# QCP benchmarks")
    w("")
    w("Generated by `bench/run.sh` (issue #6); do not edit by hand, run it again. "
      "qcp (relay_mode Smart) and PgBouncer (pool_mode transaction) run side by side in front of "
      "the same throwaway PostgreSQL 15 cluster, with the same pool size and SCRAM-SHA-256 "
      "client auth; pgbench runs against PostgreSQL directly, PgBouncer and qcp, target after "
      "target, over several rounds. All traffic is on 127.0.0.1, and pgbench, the proxies and "
      "PostgreSQL share the machine's cores. The main rows are clear text on both sides; the "
      "TLS rows (issue 12) compare a PgBouncer and a qcp with TLS on both sides.")
    if quick:
        w("")
        w("**This is a quick run (`BENCH_QUICK=1`): a subset of the cells, one short round. "
          "Run `bench/run.sh` for the full set.**")
    w("")
    w("## Machine and versions")
    w("")
    w(f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    w(f"- CPU: {cpu_model()}, {os.cpu_count()} cores; memory {mem_total()}")
    w(f"- Kernel: {platform.system()} {platform.release()}")
    w(f"- PostgreSQL: {E('BENCH_PG_VERSION', '?')} (max_connections = {E('BENCH_PG_MAX_CONN', '?')}, "
      "fsync off, synchronous_commit off)")
    w(f"- PgBouncer: {E('BENCH_PGB_VERSION', '?')} (`{E('BENCH_PGB_BIN', '?')}`)")
    w(f"- qcp: {E('BENCH_QCP_VERSION', '?')} (release build)")
    w(f"- pgbench: {E('BENCH_PGBENCH_VERSION', '?')}")
    w("")
    w("## Settings")
    w("")
    tls_on = E("BENCH_TLS") == "1"
    w(f"- pgbench: scale {E('BENCH_SCALE')}, `-T {E('BENCH_SECONDS')}` per cell and target, "
      f"{E('BENCH_ROUNDS')} round(s), targets interleaved and their order rotated every round; "
      "`-n`, `-j 2` (`-j 1` for 1 client); connection string with `sslmode=disable` "
      "(`sslmode=require` for the TLS proxies), user qcp_scram (SCRAM).")
    w(f"- Every proxy: pool size {E('BENCH_POOL_SIZE')}, auth scram-sha-256 with the server's "
      "SCRAM secret (SCRAM pass-through to the server), connection logging off.")
    w("- Clear text: the cluster has `ssl = on`, so PgBouncer, qcp (and qcp with 2 threads) are "
      "told to talk clear text to it (`server_tls_sslmode = disable`, `tls: {mode: disable}`); "
      "their clients connect with `sslmode=disable`: every row not marked TLS is clear text on "
      "both sides.")
    tc = [c for c in E("BENCH_TLS_CELLS", "none").split() if c != "none"]
    if tls_on:
        w("- TLS on both sides (\"PgBouncer, TLS\" and \"qcp, TLS\"): one more PgBouncer and qcp, "
          "the same configs (their own ports and logs), running alongside from the start; towards "
          "clients PgBouncer `client_tls_sslmode = require` and qcp `client_tls: {mode: require}` "
          "with the same certificate and key (the test cluster's, an EC key, for `localhost`), "
          "towards PostgreSQL PgBouncer `server_tls_sslmode = require` and qcp "
          "`tls: {mode: require}` (encrypted, the server's certificate not checked, on both); "
          "pgbench connects with `sslmode=require` (and libpq's default `channel_binding=prefer`: "
          "it logs in to qcp with SCRAM-SHA-256-PLUS, to PgBouncer, which has no channel binding, "
          "with SCRAM-SHA-256; likewise towards PostgreSQL, which offers -PLUS over TLS, qcp binds "
          "its logins and PgBouncer does not; bench/pgclient.py uses SCRAM-SHA-256 with both). "
          "Two more targets, interleaved and rotated with "
          "the others every round, in "
          + (", ".join('`' + c + '`' for c in tc) if tc else "no pgbench cell of this run")
          + "; not traced; in the memory and login tests with TLS clients (bench/pgclient.py "
          "`--tls`).")
        w("- Encryption as found after the timed runs (a short pgbench run against each proxy, "
          "then pg_stat_ssl for the backends of its server connections): "
          + "; ".join(f"{NAMES[t]} {server_tls_text(server_tls.get(t))}"
                      for t in ("pgbouncer", "qcp", "qcp2", "pgbouncer_tls", "qcp_tls") if t in server_tls)
          + ". Clients to the TLS proxies (bench/pgclient.py): "
          + "; ".join(f"{NAMES[t]} {client_tls_text(idle, logins, t)}" for t in ("pgbouncer_tls", "qcp_tls"))
          + ".")
    else:
        w("- TLS on both sides: not run (`BENCH_TLS_CELLS=none`).")
        if server_tls:
            w("- Encryption as found after the timed runs (pg_stat_ssl for the backends of each "
              "proxy's server connections): "
              + "; ".join(f"{NAMES[t]} {server_tls_text(e)}" for t, e in server_tls.items()) + ".")
    w(f"- qcp: relay_mode Smart, worker_threads 1 (the default), log_level Warn, arena "
      f"{E('BENCH_QCP_CHUNK_SIZE')} x {E('BENCH_QCP_CHUNKS')} chunks = {arena / 1048576:.0f} MiB "
      "(allocated and touched at start).")
    q2 = [c for c in E("BENCH_QCP2_CELLS", "none").split() if c != "none"]
    if q2:
        w("- qcp, 2 threads: a second qcp, the same config plus `worker_threads: 2` (its own port "
          "and control socket), running alongside from the start; one more target, interleaved and "
          f"rotated with the others every round, in {', '.join('`' + c + '`' for c in q2)} only, "
          "and stopped after the timed runs (not traced, not in the memory and login tests).")
    else:
        w("- qcp, 2 threads (`worker_threads: 2`): not run (`BENCH_QCP2_CELLS` has no cell of this run).")
    if pgb_prepared:
        w(f"- PgBouncer: pool_mode transaction, max_prepared_statements = {E('BENCH_PGB_MAX_PREPARED')} "
          "(qcp's default limits.max_prepared_statements), defaults otherwise (pkt_buf 4096, "
          "listen_backlog 128), run as the postgres user.")
    else:
        w("- PgBouncer: pool_mode transaction, defaults otherwise (pkt_buf 4096, listen_backlog 128), "
          "run as the postgres user. It has no prepared statements in transaction pooling (1.21 "
          "added them, `max_prepared_statements`), so its `-M prepared` cells are n/a: build "
          "PgBouncer 1.21 or later from its source release and run "
          "`PGBOUNCER_BIN=/path/to/pgbouncer bench/run.sh` to fill them (the script then sets "
          "max_prepared_statements = 200, qcp's default).")
    w("- Medians over the rounds for TPS and latency; CPU/txn = proxy CPU time from "
      "/proc/PID/stat (user = utime, system = stime, total = both; all threads; including the "
      "pgbench connection phase) over all rounds / transactions of those rounds; errors = failed "
      "transactions + aborted clients + failed connections, over all rounds.")
    sc = E("BENCH_STRACE_CELLS", "none")
    if sc and sc != "none":
        w(f"- System calls/txn: after the timed runs, on the same proxies, one separate pgbench run "
          f"per proxy and cell ({', '.join('`' + c + '`' for c in sc.split())}), with `-l`; once "
          f"its clients are connected and logged in, `strace -f -c -p PID` (every thread of the "
          f"proxy) is attached for {E('BENCH_STRACE_SECONDS')} s; calls / transactions pgbench "
          "logged as completed in that window (so logins are not counted). strace slows the proxy "
          "down several times, which is why the timed runs are not traced, and a slower proxy "
          "finds more work per wake-up, so waits (epoll_wait and the like) may be somewhat fewer "
          "per transaction than untraced.")
    else:
        w("- System calls/txn: not measured in this run (`BENCH_STRACE_CELLS=none`).")
    w("")

    if order:
        w("## Throughput and latency (pgbench)")
        w("")
        w("| workload | mode | clients | direct TPS | PgBouncer TPS | qcp TPS | qcp/PgBouncer | qcp/direct "
          "| direct lat ms | PgBouncer lat ms | qcp lat ms | errors PgBouncer | errors qcp |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for key in order:
            wl, mode, clients = key
            c = cells[key]
            g = cell_getter(c)

            def errs(t):
                d = c.get(t)
                if d is None:
                    return "—"
                if "na" in d:
                    return "n/a"
                s = str(d["errors"])
                if d["bad_exit"]:
                    s += f" (exit≠0 in {d['bad_exit']}/{d['runs']})"
                return s

            r_pgb = ratio(cval(c, "qcp", "tps"), cval(c, "pgbouncer", "tps"))
            r_dir = ratio(cval(c, "qcp", "tps"), cval(c, "direct", "tps"))
            w(f"| {wname(wl)} | {mode} | {clients} | {g('direct', 'tps')} | {g('pgbouncer', 'tps')} | "
              f"{g('qcp', 'tps')} | {fmt(r_pgb, 2)} | {fmt(r_dir, 2)} | {g('direct', 'lat', 3)} | "
              f"{g('pgbouncer', 'lat', 3)} | {g('qcp', 'lat', 3)} | {errs('pgbouncer')} | {errs('qcp')} |")
        w("")
        w("## CPU and system calls per transaction (proxies)")
        w("")
        w("CPU in µs per transaction, from the timed runs above; system calls per transaction from "
          "the separate traced runs (see Settings; — where that cell was not traced).")
        w("")
        w("| workload | mode | clients | PgBouncer user | PgBouncer sys | PgBouncer total | qcp user "
          "| qcp sys | qcp total | CPU qcp/PgBouncer | PgBouncer calls/txn | qcp calls/txn "
          "| calls qcp − PgBouncer |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for key in order:
            wl, mode, clients = key
            c = cells[key]
            g = cell_getter(c)
            r_cpu = ratio(cval(c, "qcp", "cpu_us"), cval(c, "pgbouncer", "cpu_us"))
            sp, sq = sys_get(sysc, key, "pgbouncer"), sys_get(sysc, key, "qcp")
            diff = None if sp is None or sq is None else sq - sp
            w(f"| {wname(wl)} | {mode} | {clients} | {g('pgbouncer', 'user_us', 1)} | "
              f"{g('pgbouncer', 'sys_us', 1)} | {g('pgbouncer', 'cpu_us', 1)} | {g('qcp', 'user_us', 1)} | "
              f"{g('qcp', 'sys_us', 1)} | {g('qcp', 'cpu_us', 1)} | {fmt(r_cpu, 2)} | "
              f"{sys_cell(sysc, key, 'pgbouncer', c)} | {sys_cell(sysc, key, 'qcp', c)} | "
              f"{fmt(diff, 2, none='—') if diff is None or diff < 0 else '+' + fmt(diff, 2)} |")
        w("")
        q2keys = [k for k in order if cells[k].get("qcp2")]
        if q2keys:
            w("## qcp: worker_threads 2 vs 1")
            w("")
            w("The 1-thread qcp (the default) and a second qcp with `worker_threads: 2`, in the same "
              "rounds of the same cells; TPS median over the rounds, CPU in µs per transaction "
              "(proxy CPU over all rounds / their transactions, all threads).")
            w("")
            w("| workload | mode | clients | 1 thread TPS | 2 threads TPS | 1 thread user | 1 thread sys "
              "| 1 thread total | 2 threads user | 2 threads sys | 2 threads total | CPU 2/1 threads "
              "| errors 2 threads |")
            w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for key in q2keys:
                wl, mode, clients = key
                c = cells[key]
                g = cell_getter(c)
                r2 = ratio(cval(c, "qcp2", "cpu_us"), cval(c, "qcp", "cpu_us"))
                e2 = cval(c, "qcp2", "errors")
                w(f"| {wname(wl)} | {mode} | {clients} | {g('qcp', 'tps')} | {g('qcp2', 'tps')} | "
                  f"{g('qcp', 'user_us', 1)} | {g('qcp', 'sys_us', 1)} | {g('qcp', 'cpu_us', 1)} | "
                  f"{g('qcp2', 'user_us', 1)} | {g('qcp2', 'sys_us', 1)} | {g('qcp2', 'cpu_us', 1)} | "
                  f"{fmt(r2, 2)} | {e2 if e2 is not None else 'n/a'} |")
            w("")
        if sysc:
            w("### System calls per transaction, by call (strace -f -c)")
            w("")
            w("The most frequent calls, per transaction, in each traced run (\"others\": the rest "
              "together); errors = calls that returned an error (EAGAIN and the like), per "
              "transaction.")
            w("")
            w("| workload | mode | clients | proxy | traced s | transactions | calls/txn | errors/txn | top calls per txn |")
            w("|---|---|---:|---|---:|---:|---:|---:|---|")
            for key in order:
                if key not in sysc:
                    continue
                wl, mode, clients = key
                for t in ("pgbouncer", "qcp"):
                    e = sysc[key].get(t)
                    if e is None:
                        continue
                    if e["calls_txn"] is None:
                        w(f"| {wname(wl)} | {mode} | {clients} | {NAMES[t]} | {fmt(e['window_s'], 1, none='—')} | "
                          f"{e['txns']:,} | — | — | {e['error']} |")
                        continue
                    flag = " (pgbench ended before strace detached)" if e["ended_early"] else ""
                    w(f"| {wname(wl)} | {mode} | {clients} | {NAMES[t]} | {fmt(e['window_s'], 1)} | "
                      f"{e['txns']:,} | {e['calls_txn']:.2f} | {e['errors_txn']:.2f} | {top_calls(e)}{flag} |")
            w("")
        notes = []
        for key in order:
            for t in TARGETS:
                d = cells[key].get(t)
                if d and "na" in d:
                    continue
                if d and (d["errors"] or d["bad_exit"]) and d["notes"]:
                    wl, mode, clients = key
                    notes.append(f"- {NAMES[t]}, {'-S' if wl == 'S' else 'tpcb-like'} {mode} "
                                 f"{clients} clients: `{d['notes'][0]}`")
        dist = []
        for key in order:
            for t in TARGETS:
                d = cells[key].get(t)
                if d and "na" not in d and d["disturbed"]:
                    wl, mode, clients = key
                    dist.append(f"{NAMES[t]} {'-S' if wl == 'S' else 'tpcb-like'} {mode} {clients} "
                                f"({d['disturbed']} run(s){', used anyway: no other' if d['used_disturbed'] else ', left out'})")
        if dist:
            notes.insert(0, None)
        nas = sorted({d["na"] for key in order for d in cells[key].values() if "na" in d})
        if nas or notes:
            w("Notes:")
            w("")
            for n in nas:
                w(f"- {n}")
            if dist:
                w("- Runs disturbed by other processes on the machine (over 5% of the CPU, "
                  "after one repeat): " + "; ".join(dist) + ".")
            notes = [n for n in notes if n]
            if notes:
                w("- First error reported by pgbench, where there were errors:")
                for n in notes:
                    w("  " + n)
            w("")
    if order and E("BENCH_PGB_HWM"):
        w("Peak RSS (VmHWM) after the pgbench runs: "
          f"PgBouncer {fmt(num(E('BENCH_PGB_HWM')) and num(E('BENCH_PGB_HWM')) / 1024, 1)} MiB, "
          f"qcp {fmt(num(E('BENCH_QCP_HWM')) and num(E('BENCH_QCP_HWM')) / 1024, 1)} MiB"
          + (f", qcp with 2 threads {fmt(num(E('BENCH_QCP2_HWM')) / 1024, 1)} MiB" if num(E("BENCH_QCP2_HWM")) else "")
          + (f", PgBouncer with TLS {fmt(num(E('BENCH_PGB_TLS_HWM')) / 1024, 1)} MiB" if num(E("BENCH_PGB_TLS_HWM")) else "")
          + (f", qcp with TLS {fmt(num(E('BENCH_QCP_TLS_HWM')) / 1024, 1)} MiB" if num(E("BENCH_QCP_TLS_HWM")) else "")
          + f" (of which the arena: {arena / 1048576:.0f} MiB each qcp).")
        w("")

    tlskeys = [k for k in order if cells.get(k, {}).get("qcp_tls") or cells.get(k, {}).get("pgbouncer_tls")]
    if tlskeys:
        w("## TLS on both sides: qcp vs PgBouncer")
        w("")
        w("PgBouncer and qcp with TLS towards the clients (pgbench `sslmode=require`) and towards "
          "PostgreSQL (see Settings), in the same rounds as the clear-text targets; TPS and latency "
          "median over the rounds, CPU in µs per transaction (proxy CPU over all rounds / their "
          "transactions, all threads, including the connection phase with its TLS handshakes).")
        w("")
        w("| workload | mode | clients | PgBouncer TPS | qcp TPS | qcp/PgBouncer | PgBouncer lat ms "
          "| qcp lat ms | PgBouncer user | PgBouncer sys | PgBouncer total | qcp user | qcp sys "
          "| qcp total | CPU qcp/PgBouncer | errors PgBouncer | errors qcp |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for key in tlskeys:
            wl, mode, clients = key
            c = cells[key]
            g = cell_getter(c)
            r_tps = ratio(cval(c, "qcp_tls", "tps"), cval(c, "pgbouncer_tls", "tps"))
            r_cpu = ratio(cval(c, "qcp_tls", "cpu_us"), cval(c, "pgbouncer_tls", "cpu_us"))

            def terrs(t):
                d = c.get(t)
                if d is None:
                    return "—"
                if "na" in d:
                    return "n/a"
                return str(d["errors"]) + (f" (exit≠0 in {d['bad_exit']}/{d['runs']})" if d["bad_exit"] else "")

            w(f"| {wname(wl)} | {mode} | {clients} | {g('pgbouncer_tls', 'tps')} | {g('qcp_tls', 'tps')} | "
              f"{fmt(r_tps, 2)} | {g('pgbouncer_tls', 'lat', 3)} | {g('qcp_tls', 'lat', 3)} | "
              f"{g('pgbouncer_tls', 'user_us', 1)} | {g('pgbouncer_tls', 'sys_us', 1)} | "
              f"{g('pgbouncer_tls', 'cpu_us', 1)} | {g('qcp_tls', 'user_us', 1)} | {g('qcp_tls', 'sys_us', 1)} | "
              f"{g('qcp_tls', 'cpu_us', 1)} | {fmt(r_cpu, 2)} | {terrs('pgbouncer_tls')} | {terrs('qcp_tls')} |")
        w("")
        w("What TLS costs each proxy in those cells: CPU per transaction with TLS on both sides / "
          "clear text on both sides, from the same rounds.")
        w("")
        w("| workload | mode | clients | PgBouncer clear µs | PgBouncer TLS µs | PgBouncer TLS/clear "
          "| qcp clear µs | qcp TLS µs | qcp TLS/clear |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for key in tlskeys:
            wl, mode, clients = key
            c = cells[key]
            g = cell_getter(c)
            w(f"| {wname(wl)} | {mode} | {clients} | {g('pgbouncer', 'cpu_us', 1)} | {g('pgbouncer_tls', 'cpu_us', 1)} | "
              f"{fmt(ratio(cval(c, 'pgbouncer_tls', 'cpu_us'), cval(c, 'pgbouncer', 'cpu_us')), 2)} | "
              f"{g('qcp', 'cpu_us', 1)} | {g('qcp_tls', 'cpu_us', 1)} | "
              f"{fmt(ratio(cval(c, 'qcp_tls', 'cpu_us'), cval(c, 'qcp', 'cpu_us')), 2)} |")
        w("")

    if idle or logins:
        w("## Memory: idle authenticated clients")
        w("")
        w("Freshly started proxies, one login first (so the first server connection is counted "
          "before); then the clients log in (SCRAM, 100 at a time), stay open and silent for 3 s, "
          "and RSS (VmRSS) is read again. Growth per client = (after − before) / clients."
          + (" The TLS proxies' clients log in over TLS (SSLRequest, the handshake as "
             "`sslmode=require`, then SCRAM), so their growth includes each connection's TLS state."
             if any(t.endswith("_tls") for t in idle) else ""))
        w("")
        w("| proxy | clients held | login time s | RSS before MiB | RSS after MiB | growth per client KB | peak RSS MiB |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        for t in MEM_TARGETS:
            d = idle.get(t)
            if not d:
                continue
            b, a = d.get("rss_before_kb"), d.get("rss_after_kb")
            per = (a - b) / d["ok"] if (a is not None and b is not None and d.get("ok")) else None
            held = f"{d.get('alive', d.get('ok', 0)):,} of {d.get('clients', 0):,}"
            w(f"| {NAMES[t]} | {held} | {fmt(d.get('login_secs'), 2)} | {fmt(b and b / 1024, 1)} | "
              f"{fmt(a and a / 1024, 1)} | {fmt(per, 2)} | {fmt(d.get('hwm_after_kb') and d['hwm_after_kb'] / 1024, 1)} |")
            if d.get("errors"):
                w(f"|  | errors: {json.dumps(d['errors'])[:200]} | | | | | |")
        w("")
        w(f"qcp's arena ({arena / 1048576:.0f} MiB) is allocated and touched at start, so it is "
          "part of \"before\" and not of the growth.")
        w("")
        w(f"## SCRAM logins: {logins_n(logins)} clients, {E('BENCH_LOGIN_CONCURRENCY')} at a time")
        w("")
        w("Each client connects, logs in with SCRAM-SHA-256, waits for ReadyForQuery and "
          "disconnects (bench/pgclient.py; the client caches PBKDF2 per salt, so the time is the "
          "proxy's)."
          + (" Against the TLS proxies each client first does the TLS handshake (`--tls`), whose "
             "client side (in Python, on the same cores) is part of the time for both."
             if any(t.endswith("_tls") for t in logins) else "")
          + " Median over the rounds; the proxies of a pair take turns, their order swapped every round.")
        w("")
        w("| proxy | rounds | time s (median) | logins/s | proxy CPU ms per login | failed logins |")
        w("|---|---:|---:|---:|---:|---:|")
        clk = float(E("BENCH_CLK_TCK") or 100)
        for t in MEM_TARGETS:
            rs = logins.get(t)
            if not rs:
                continue
            secs = statistics.median([r.get("secs", 0) or 0 for r in rs])
            n = rs[0].get("clients", 0)
            cpu = sum(r.get("proxy_cpu_ticks", 0) for r in rs) / clk * 1000 / max(1, sum(r.get("ok", 0) for r in rs))
            failed = sum(r.get("failed", 0) for r in rs)
            w(f"| {NAMES[t]} | {len(rs)} | {secs:.3f} | {fmt(n / secs if secs else None)} | {cpu:.3f} | {failed} |")
        w("")

    w("## Targets (issue #6)")
    w("")
    w("| target | result | numbers |")
    w("|---|---|---|")
    for line in targets(cells, idle, logins):
        w(line)
    w("")
    w("## Targets (CPU and system calls per transaction)")
    w("")
    w("Ratios within this run, against the PgBouncer above (same pool, SCRAM); the "
      "worker_threads line compares the 2-thread qcp with the 1-thread qcp of the same rounds.")
    w("")
    w("| target | result | numbers |")
    w("|---|---|---|")
    for line in targets_cpu(cells, sysc, pgb_prepared):
        w(line)
    w("")
    w("## Targets (TLS on both sides, issue 12)")
    w("")
    if tls_on:
        w("PgBouncer and qcp, both with TLS towards clients and towards PostgreSQL (see Settings), "
          "in the same run.")
        w("")
        w("| target | result | numbers |")
        w("|---|---|---|")
        for line in targets_tls(order, cells, idle, logins, server_tls):
            w(line)
    else:
        w("Not run (`BENCH_TLS_CELLS=none`).")
    w("")

    if rows:
        w("## Raw pgbench results")
        w("")
        w("<details><summary>every run</summary>")
        w("")
        w(f"| round | workload | mode | clients | target | TPS | latency ms | transactions | failed | aborted "
          f"| proxy CPU ticks (1/{E('BENCH_CLK_TCK', '100')} s) | user | system | exit | others' CPU % |")
        w("|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        for r in rows:
            if r["exit"] == "na":
                continue
            w(f"| {r['round']} | {r['workload']} | {r['mode']} | {r['clients']} | {r['target']} | {r['tps']} | "
              f"{r['latency_ms']} | {r['txns']} | {r['failed']} | {r['aborted']} | {r['cpu_ticks']} | "
              f"{r.get('utime_ticks') or ''} | {r.get('stime_ticks') or ''} | {r['exit']} | "
              f"{r.get('foreign_pct', '')} |")
        w("")
        w("</details>")
        w("")
    with open(out_path, "w") as f:
        f.write("\n".join(out))


def logins_n(logins):
    for rs in logins.values():
        if rs:
            return f"{rs[0].get('clients', 0):,}"
    return "0"


def targets(cells, idle, logins):
    res = []

    def get(wl, mode, clients, t, f):
        d = cells.get((wl, mode, clients), {}).get(t)
        if d is None or "na" in d:
            return None
        return d.get(f)

    def verdict(ok):
        return "not measured" if ok is None else ("**met**" if ok else "**missed**")

    for mode in ("simple", "extended"):
        tq, tp = get("S", mode, 16, "qcp", "tps"), get("S", mode, 16, "pgbouncer", "tps")
        cq, cp = get("S", mode, 16, "qcp", "cpu_us"), get("S", mode, 16, "pgbouncer", "cpu_us")
        rt, rc = ratio(tq, tp), ratio(cq, cp)
        ok = None if rt is None or rc is None else (rt >= 1.15 and rc <= 0.75)
        res.append(f"| -S {mode}, 16 clients: qcp TPS ≥ 1.15× PgBouncer and CPU/txn ≤ 0.75× | {verdict(ok)} | "
                   f"TPS {fmt(tq)} vs {fmt(tp)} = {fmt(rt, 2)}×; CPU {fmt(cq, 1)} vs {fmt(cp, 1)} µs/txn = {fmt(rc, 2)}× |")
    for mode in ("simple", "extended"):
        ld, lp, lq = (get("S", mode, 1, t, "lat") for t in ("direct", "pgbouncer", "qcp"))
        if None in (ld, lp, lq):
            ok, txt = None, "—"
        else:
            aq, ap = lq - ld, lp - ld
            ok = aq <= ap
            txt = f"direct {ld:.3f} ms; qcp adds {aq * 1000:.0f} µs, PgBouncer adds {ap * 1000:.0f} µs"
        res.append(f"| -S {mode}, 1 client: latency qcp adds over direct ≤ PgBouncer's | {verdict(ok)} | {txt} |")
    for mode in ("simple", "extended"):
        tq, tp = get("S", mode, 1000, "qcp", "tps"), get("S", mode, 1000, "pgbouncer", "tps")
        eq = get("S", mode, 1000, "qcp", "errors")
        bad = get("S", mode, 1000, "qcp", "bad_exit")
        ok = None if tq is None or tp is None else (tq >= tp and eq == 0 and not bad)
        res.append(f"| -S {mode}, 1000 clients: qcp TPS ≥ PgBouncer, no errors | {verdict(ok)} | "
                   f"TPS {fmt(tq)} vs {fmt(tp)} = {fmt(ratio(tq, tp), 2)}×; qcp errors {eq if eq is not None else 'n/a'} |")
    tq, eq = get("S", "prepared", 1000, "qcp", "tps"), get("S", "prepared", 1000, "qcp", "errors")
    tp, ep = get("S", "prepared", 1000, "pgbouncer", "tps"), get("S", "prepared", 1000, "pgbouncer", "errors")
    if tq is not None and tp is not None:
        res.append(f"| (-S prepared, 1000 clients) | info | TPS {fmt(tq)} vs {fmt(tp)} = {fmt(ratio(tq, tp), 2)}×; "
                   f"errors qcp {eq}, PgBouncer {ep} |")
    elif tq is not None:
        res.append(f"| (-S prepared, 1000 clients, qcp only: PgBouncer {pgb_short()} n/a) | info | "
                   f"qcp TPS {fmt(tq)}, errors {eq} |")
    d = idle.get("qcp")
    if d and d.get("ok") and d.get("rss_after_kb") is not None:
        per = (d["rss_after_kb"] - d["rss_before_kb"]) / d["ok"]
        ok = per <= 2.0 and d.get("alive", d["ok"]) == d["clients"]
        p = idle.get("pgbouncer")
        ptxt = ""
        if p and p.get("ok") and p.get("rss_after_kb") is not None:
            ptxt = f" (PgBouncer {(p['rss_after_kb'] - p['rss_before_kb']) / p['ok']:.2f} KB)"
        res.append(f"| {d['clients']:,} idle clients: qcp RSS growth ≤ 2 KB per client beyond the arena | {verdict(ok)} | "
                   f"{per:.2f} KB per client{ptxt}; {d.get('alive', d['ok']):,} of {d['clients']:,} held |")
    else:
        res.append("| idle clients: qcp RSS growth ≤ 2 KB per client | not measured | |")
    q, p = logins.get("qcp"), logins.get("pgbouncer")
    if q and p:
        sq = statistics.median([r.get("secs", 0) for r in q])
        sp = statistics.median([r.get("secs", 0) for r in p])
        fq = sum(r.get("failed", 0) for r in q)
        ok = sq <= sp and fq == 0
        res.append(f"| {q[0].get('clients', 0):,} SCRAM logins: qcp no slower than PgBouncer | {verdict(ok)} | "
                   f"qcp {sq:.3f} s vs PgBouncer {sp:.3f} s ({sq / sp if sp else 0:.2f}×); qcp failed logins {fq} |")
    else:
        res.append("| SCRAM logins: qcp no slower than PgBouncer | not measured | |")
    return res


def targets_tls(order, cells, idle, logins, server_tls):
    res = []

    def verdict(ok):
        return "not measured" if ok is None else ("**met**" if ok else "**missed**")

    # Both sides really encrypted: every server connection of both TLS proxies, and the clients.
    enc = []
    for t in ("pgbouncer_tls", "qcp_tls"):
        e = server_tls.get(t)
        enc.append(None if not e or not e.get("conns") else e.get("tls") == e["conns"])
    ok = False if False in enc else (None if None in enc else True)
    res.append(f"| (check) TLS rows encrypted on both sides | "
               f"{'not checked' if ok is None else ('ok' if ok else '**not all encrypted**')} | "
               f"server connections: PgBouncer {server_tls_text(server_tls.get('pgbouncer_tls'))}, "
               f"qcp {server_tls_text(server_tls.get('qcp_tls'))}; clients: pgbench `sslmode=require`, "
               f"pgclient.py {client_tls_text(idle, logins, 'qcp_tls')} (qcp), "
               f"{client_tls_text(idle, logins, 'pgbouncer_tls')} (PgBouncer) |")
    keys = [k for k in order if cells.get(k, {}).get("qcp_tls") or cells.get(k, {}).get("pgbouncer_tls")]
    if not keys:
        res.append(f"| TLS: qcp CPU/txn ≤ {TLS_CPU_MAX:.1f}× PgBouncer's | not measured | "
                   "no cell of BENCH_TLS_CELLS in BENCH_CELLS |")
    for key in keys:
        wl, mode, clients = key
        c = cells[key]
        cq, cp = cval(c, "qcp_tls", "cpu_us"), cval(c, "pgbouncer_tls", "cpu_us")
        tq, tp = cval(c, "qcp_tls", "tps"), cval(c, "pgbouncer_tls", "tps")
        eq = cval(c, "qcp_tls", "errors")
        rc = ratio(cq, cp)
        ok = None if rc is None else (rc <= TLS_CPU_MAX and eq == 0)
        res.append(f"| {'-S' if wl == 'S' else 'tpcb-like'} {mode}, {clients} client{'s' if clients > 1 else ''}, "
                   f"TLS: qcp CPU/txn ≤ {TLS_CPU_MAX:.1f}× PgBouncer's (and no errors) | {verdict(ok)} | "
                   f"CPU {fmt(cq, 1)} vs {fmt(cp, 1)} µs/txn = {fmt(rc, 2)}×; TPS {fmt(tq)} vs {fmt(tp)} "
                   f"= {fmt(ratio(tq, tp), 2)}×; qcp errors {eq if eq is not None else 'n/a'} |")
    d = idle.get("qcp_tls")
    per, pper = idle_growth(d), idle_growth(idle.get("pgbouncer_tls"))
    if per is not None:
        ok = per <= TLS_IDLE_MAX and d.get("alive", d["ok"]) == d["clients"]
        ptxt = f" (PgBouncer {pper:.2f} KB)" if pper is not None else ""
        res.append(f"| {d['clients']:,} idle TLS clients: qcp RSS growth ≤ {TLS_IDLE_MAX:.0f} KB per client "
                   f"beyond the arena | {verdict(ok)} | {per:.2f} KB per client{ptxt}; "
                   f"{d.get('alive', d['ok']):,} of {d['clients']:,} held |")
    else:
        res.append(f"| idle TLS clients: qcp RSS growth ≤ {TLS_IDLE_MAX:.0f} KB per client | not measured | |")
    q, p = logins.get("qcp_tls"), logins.get("pgbouncer_tls")
    if q and p:
        sq = statistics.median([r.get("secs", 0) for r in q])
        sp = statistics.median([r.get("secs", 0) for r in p])
        fq = sum(r.get("failed", 0) for r in q)
        ok = sq <= sp and fq == 0
        res.append(f"| {q[0].get('clients', 0):,} TLS+SCRAM logins: qcp no slower than PgBouncer (both with TLS) "
                   f"| {verdict(ok)} | qcp {sq:.3f} s vs PgBouncer {sp:.3f} s ({sq / sp if sp else 0:.2f}×); "
                   f"qcp failed logins {fq} |")
    else:
        res.append("| TLS+SCRAM logins: qcp no slower than PgBouncer | not measured | |")
    return res


def pgb_short():
    v = E("BENCH_PGB_VERSION", "")
    tok = [t for t in v.split() if t[:1].isdigit()]
    return ".".join(tok[0].split(".")[:2]) if tok else "?"


def targets_cpu(cells, sysc, pgb_prepared):
    res = []

    def get(wl, mode, clients, t, f):
        d = cells.get((wl, mode, clients), {}).get(t)
        if d is None or "na" in d:
            return None
        return d.get(f)

    def verdict(ok):
        return "not measured" if ok is None else ("**met**" if ok else "**missed**")

    for mode in ("simple", "extended"):
        for clients in (1, 16, 64, 1000):
            key = ("S", mode, clients)
            cq, cp = get("S", mode, clients, "qcp", "cpu_us"), get("S", mode, clients, "pgbouncer", "cpu_us")
            sq, sp = sys_get(sysc, key, "qcp"), sys_get(sysc, key, "pgbouncer")
            rc = ratio(cq, cp)
            ok_cpu = None if rc is None else rc <= 1.0
            ok_sys = None if sq is None or sp is None else sq <= sp + 0.5
            # Missed if either part is missed; not measured if a part is not and none is missed.
            if ok_cpu is False or ok_sys is False:
                ok = False
            elif ok_cpu is None or ok_sys is None:
                ok = None
            else:
                ok = True
            detail = ""
            if ok is not True and not (ok_cpu is None and ok_sys is None):
                detail = f" (CPU {verdict(ok_cpu).strip('*')}, calls {verdict(ok_sys).strip('*')})"
            calls = "calls not traced" if sq is None or sp is None else (
                f"calls {sq:.2f} vs {sp:.2f} per txn ({sq - sp:+.2f})")
            res.append(f"| -S {mode}, {clients} client{'s' if clients > 1 else ''}: qcp CPU/txn ≤ 1.0× PgBouncer, "
                       f"calls/txn ≤ PgBouncer + 0.5 | {verdict(ok)}{detail} | "
                       f"CPU {fmt(cq, 1)} vs {fmt(cp, 1)} µs/txn = {fmt(rc, 2)}×; {calls} |")
    cq, cp = get("S", "prepared", 16, "qcp", "cpu_us"), get("S", "prepared", 16, "pgbouncer", "cpu_us")
    rc = ratio(cq, cp)
    if pgb_prepared and rc is not None:
        res.append(f"| -S prepared, 16 clients: qcp CPU/txn ≤ 0.9× PgBouncer {pgb_short()} with "
                   f"max_prepared_statements | {verdict(rc <= 0.9)} | CPU {fmt(cq, 1)} vs {fmt(cp, 1)} µs/txn "
                   f"= {fmt(rc, 2)}× |")
    else:
        why = (f"PgBouncer {pgb_short()} has no prepared statements in transaction pooling: "
               "set PGBOUNCER_BIN to a 1.21+ build") if not pgb_prepared else "cell not run"
        res.append(f"| -S prepared, 16 clients: qcp CPU/txn ≤ 0.9× PgBouncer 1.21+ with "
                   f"max_prepared_statements | not measured | {why}; qcp {fmt(cq, 1)} µs/txn |")
    # worker_threads: 2 at 64 clients (the simple cell always; the extended one if it was run).
    for mode in ("simple", "extended"):
        c1, c2 = get("S", mode, 64, "qcp", "cpu_us"), get("S", mode, 64, "qcp2", "cpu_us")
        if mode == "extended" and c2 is None:
            continue
        t1, t2 = get("S", mode, 64, "qcp", "tps"), get("S", mode, 64, "qcp2", "tps")
        e2 = get("S", mode, 64, "qcp2", "errors")
        r2 = ratio(c2, c1)
        ok = None if r2 is None else (r2 <= QCP2_MAX and e2 == 0)
        if r2 is None:
            txt = "cell not run with both (BENCH_CELLS / BENCH_QCP2_CELLS)"
        else:
            u1, s1 = get("S", mode, 64, "qcp", "user_us"), get("S", mode, 64, "qcp", "sys_us")
            u2, s2 = get("S", mode, 64, "qcp2", "user_us"), get("S", mode, 64, "qcp2", "sys_us")
            txt = (f"CPU {fmt(c2, 1)} (user {fmt(u2, 1)}, sys {fmt(s2, 1)}) vs {fmt(c1, 1)} (user {fmt(u1, 1)}, "
                   f"sys {fmt(s1, 1)}) µs/txn = {fmt(r2, 2)}×; TPS {fmt(t2)} vs {fmt(t1)} = {fmt(ratio(t2, t1), 2)}×; "
                   f"2-thread errors {e2}")
        res.append(f"| worker_threads: 2 at 64 clients: CPU/txn ≤ {QCP2_MAX:.2f}× 1 thread (-S {mode}; "
                   f"and no errors) | {verdict(ok)} | {txt} |")
    return res


if __name__ == "__main__":
    main()
