#!/usr/bin/env python3
"""Minimal PostgreSQL client for QCP's benchmark (stdlib only).

It speaks the start-up + SCRAM-SHA-256 (or trust) login itself, so it can hold thousands of
really authenticated, idle connections, or time many logins, against a proxy on 127.0.0.1.

  pgclient.py idle   --port P --clients 10000 [--concurrency 200] [--pid PID] [--settle 3]
  pgclient.py logins --port P --clients 1000  [--concurrency 50]  [--pid PID]

Common options: --host (127.0.0.1 only), --user, --password, --database, --timeout (whole
run, seconds), --tls (SSLRequest, then TLS as libpq's sslmode=require: encrypted, the
certificate not checked; SCRAM without channel binding, as the same login in clear).
Output: one JSON object on stdout (with --tls, "tls": connections per TLS version and cipher).

idle:   logs in CLIENTS connections (CONCURRENCY logins in flight at once), keeps every one
        open and silent for --settle seconds, reads the proxy's VmRSS/VmHWM (from
        /proc/PID/status) before the first login and after the settle time, then closes all.
logins: logs in CLIENTS connections, CONCURRENCY at a time, each closed (Terminate) right
        after its ReadyForQuery; reports the wall time and the proxy's CPU time (/proc/PID/stat).

The SCRAM SaltedPassword (PBKDF2, 4096 iterations) is cached per (salt, iterations): both
proxies are given the server's SCRAM secret, so the salt is the same on every login and the
time measured is the proxy's, not this client's PBKDF2.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import resource
import ssl
import struct
import sys
import time

_SALTED = {}


def _hmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def salted_password(password, salt, iters):
    k = (salt, iters)
    v = _SALTED.get(k)
    if v is None:
        v = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
        _SALTED[k] = v
    return v


class LoginError(Exception):
    pass


async def read_msg(reader):
    head = await reader.readexactly(5)
    typ = head[0:1]
    (length,) = struct.unpack("!I", head[1:5])
    if length < 4 or length > 1 << 20:
        raise LoginError(f"bad message length {length}")
    body = await reader.readexactly(length - 4)
    return typ, body


def msg(typ, body):
    return typ + struct.pack("!I", len(body) + 4) + body


def error_text(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[part[0:1]] = part[1:].decode(errors="replace")
    return f"{fields.get(b'C', '?')} {fields.get(b'M', '')}"


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_TLS = None
_TLS_SEEN = {}  # "TLSv1.3 TLS_AES_256_GCM_SHA384" -> connections that negotiated it


async def login(host, port, user, password, database):
    """Open a connection and log in; return (reader, writer) after ReadyForQuery."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if _TLS is not None:
            writer.write(struct.pack("!II", 8, 80877103))
            answer = await reader.readexactly(1)
            if answer != b"S":
                raise LoginError(f"the proxy answered {answer!r} to SSLRequest")
            await writer.start_tls(_TLS)
            tls = writer.get_extra_info("ssl_object")
            k = f"{tls.version()} {tls.cipher()[0]}"
            _TLS_SEEN[k] = _TLS_SEEN.get(k, 0) + 1
        params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
        body = struct.pack("!I", 196608) + params
        writer.write(struct.pack("!I", len(body) + 4) + body)
        nonce = base64.b64encode(os.urandom(18)).decode()
        client_first_bare = "n=,r=" + nonce
        auth_message = None
        server_key = None
        while True:
            typ, body = await read_msg(reader)
            if typ == b"R":
                (code,) = struct.unpack("!I", body[:4])
                if code == 0:
                    continue
                if code == 10:  # AuthenticationSASL
                    mechs = [m for m in body[4:].split(b"\0") if m]
                    if b"SCRAM-SHA-256" not in mechs:
                        raise LoginError(f"no SCRAM-SHA-256 in {mechs}")
                    data = ("n,," + client_first_bare).encode()
                    writer.write(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(data)) + data))
                elif code == 11:  # SASLContinue
                    server_first = body[4:].decode()
                    attrs = dict(a.split("=", 1) for a in server_first.split(","))
                    if not attrs["r"].startswith(nonce):
                        raise LoginError("server nonce does not extend ours")
                    salt = base64.b64decode(attrs["s"])
                    iters = int(attrs["i"])
                    salted = salted_password(password, salt, iters)
                    client_key = _hmac(salted, b"Client Key")
                    stored_key = hashlib.sha256(client_key).digest()
                    final_wo_proof = "c=biws,r=" + attrs["r"]
                    auth_message = ",".join([client_first_bare, server_first, final_wo_proof]).encode()
                    sig = _hmac(stored_key, auth_message)
                    proof = bytes(a ^ b for a, b in zip(client_key, sig))
                    server_key = _hmac(salted, b"Server Key")
                    final = final_wo_proof + ",p=" + base64.b64encode(proof).decode()
                    writer.write(msg(b"p", final.encode()))
                elif code == 12:  # SASLFinal
                    final = body[4:].decode()
                    expect = base64.b64encode(_hmac(server_key, auth_message)).decode()
                    if final != "v=" + expect:
                        raise LoginError("bad server signature")
                else:
                    raise LoginError(f"unsupported auth request {code}")
            elif typ == b"E":
                raise LoginError(error_text(body))
            elif typ == b"Z":
                return reader, writer
            # S (ParameterStatus), K (BackendKeyData), N (Notice): ignore
    except BaseException:
        writer.close()
        raise


def proc_status(pid):
    out = {}
    if pid:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    return out


def proc_cpu_ticks(pid):
    if not pid:
        return 0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def run_idle(a):
    before = proc_status(a.pid)
    sem = asyncio.Semaphore(a.concurrency)
    conns = []
    errors = {}

    async def one():
        async with sem:
            try:
                conns.append(await login(a.host, a.port, a.user, a.password, a.database))
            except (OSError, LoginError, asyncio.IncompleteReadError) as e:
                k = str(e)[:120]
                errors[k] = errors.get(k, 0) + 1

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(a.clients)))
    login_secs = time.monotonic() - t0
    await asyncio.sleep(a.settle)
    # Make sure the connections are still alive: none may have been sent anything.
    alive = sum(1 for r, _ in conns if not r.at_eof() and not r._buffer)
    after = proc_status(a.pid)
    for _, w in conns:
        try:
            w.write(msg(b"X", b""))
            w.close()
        except OSError:
            pass
    await asyncio.sleep(0.5)
    return {
        "clients": a.clients,
        "ok": len(conns),
        "alive": alive,
        "failed": a.clients - len(conns),
        "errors": errors,
        "login_secs": round(login_secs, 3),
        "rss_before_kb": before.get("VmRSS"),
        "rss_after_kb": after.get("VmRSS"),
        "hwm_after_kb": after.get("VmHWM"),
    }


async def run_logins(a):
    sem = asyncio.Semaphore(a.concurrency)
    ok = 0
    errors = {}

    async def one():
        nonlocal ok
        async with sem:
            try:
                _, w = await login(a.host, a.port, a.user, a.password, a.database)
                w.write(msg(b"X", b""))
                w.close()
                ok += 1
            except (OSError, LoginError, asyncio.IncompleteReadError) as e:
                k = str(e)[:120]
                errors[k] = errors.get(k, 0) + 1

    cpu0 = proc_cpu_ticks(a.pid)
    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(a.clients)))
    secs = time.monotonic() - t0
    cpu1 = proc_cpu_ticks(a.pid)
    return {
        "clients": a.clients,
        "concurrency": a.concurrency,
        "ok": ok,
        "failed": a.clients - ok,
        "errors": errors,
        "secs": round(secs, 3),
        "proxy_cpu_ticks": cpu1 - cpu0,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["idle", "logins"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="qcp_scram")
    p.add_argument("--password", default="scram-pass")
    p.add_argument("--database", default="qcp_test")
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--pid", type=int, default=0, help="proxy process to sample")
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    p.add_argument("--tls", action="store_true", help="TLS after an SSLRequest (sslmode=require)")
    a = p.parse_args()
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        p.error("load goes to the local host only")
    if not 1 <= a.clients <= 20000 or not 1 <= a.concurrency <= 1000:
        p.error("--clients must be 1..20000 and --concurrency 1..1000")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.clients + 200)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    global _TLS
    if a.tls:
        _TLS = tls_context()
    coro = run_idle(a) if a.mode == "idle" else run_logins(a)
    try:
        result = asyncio.run(asyncio.wait_for(coro, a.timeout))
    except asyncio.TimeoutError:
        result = {"clients": a.clients, "ok": 0, "failed": a.clients, "errors": {"timeout": 1}}
    if a.tls:
        result["tls"] = _TLS_SEEN
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
