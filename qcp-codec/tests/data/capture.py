#!/usr/bin/env python3
"""Recording TCP relay for capturing real PostgreSQL wire traffic (standard library only).

    capture.py --listen 127.0.0.1:PORT --upstream 127.0.0.1:PGPORT --out DIR --name NAME \
               [--connections K] [--timeout SECONDS] [--ready-file PATH]

Accepts TCP connections on --listen and relays every byte both ways to --upstream, unchanged.
For the Nth accepted connection (N = 1, 2, ...) it writes

    DIR/NAME-N.frontend.bin   every byte the client sent, in order
    DIR/NAME-N.backend.bin    every byte the server sent, in order

It exits when K connections (--connections) have been accepted and closed, when --timeout seconds
have passed (always bounded; default 120 s, exit status 3), or on SIGTERM/SIGINT. On any exit it
stops accepting, gives the open connections a short grace period to finish (5 s, 0.5 s after a
timeout), closes them, and flushes the files. It is a single process (threads only), so it never leaves a process behind.

--listen may use port 0; the chosen port is written to --ready-file (if given) once listening, so a
caller can wait for that file instead of probing the port (a probe would be recorded as a
connection).
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time

BUF = 65536
GRACE_SECS = 5.0


def parse_addr(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    try:
        port_num = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None
    if not 0 <= port_num <= 65535:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}")
    return host.strip("[]"), port_num


class Connection:
    """One relayed client connection and its two recording pumps."""

    def __init__(self, index, client, upstream, out_dir, name):
        self.index = index
        self.client = client
        self.upstream = upstream
        self.files = {
            "frontend": open(os.path.join(out_dir, f"{name}-{index}.frontend.bin"), "wb"),
            "backend": open(os.path.join(out_dir, f"{name}-{index}.backend.bin"), "wb"),
        }
        self.bytes = {"frontend": 0, "backend": 0}
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._live = 2
        self._closed = False
        self.threads = [
            threading.Thread(target=self._pump, args=(client, upstream, "frontend"), daemon=True),
            threading.Thread(target=self._pump, args=(upstream, client, "backend"), daemon=True),
        ]

    def start(self):
        for t in self.threads:
            t.start()

    def _pump(self, src, dst, direction):
        f = self.files[direction]
        try:
            while True:
                try:
                    data = src.recv(BUF)
                except OSError:
                    data = b""
                if not data:
                    break
                # Record before forwarding so the file is complete even if the peer has gone.
                f.write(data)
                self.bytes[direction] += len(data)
                try:
                    dst.sendall(data)
                except OSError:
                    break
            # Propagate the half-close so the other side sees EOF, then keep pumping the other way.
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        finally:
            with self._lock:
                self._live -= 1
                last = self._live == 0
            if last:
                self.close()

    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        # Give a pump that is mid-write a moment to finish before closing its file.
        for t in self.threads:
            if t is not threading.current_thread():
                t.join(timeout=2.0)
        for f in self.files.values():
            try:
                f.close()
            except (OSError, ValueError):
                pass
        self.done.set()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=parse_addr, required=True, help="HOST:PORT to accept on")
    ap.add_argument("--upstream", type=parse_addr, required=True, help="HOST:PORT of the server")
    ap.add_argument("--out", required=True, help="directory for the .bin files")
    ap.add_argument("--name", required=True, help="file name prefix (scenario name)")
    ap.add_argument("--connections", type=int, default=0,
                    help="exit after this many connections closed (0 = until timeout/signal)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="hard limit on the run time in seconds (default 120)")
    ap.add_argument("--ready-file", help="write the listening port here once ready")
    args = ap.parse_args(argv)

    if args.timeout <= 0 or args.timeout > 3600:
        ap.error("--timeout must be in (0, 3600]")
    if args.connections < 0:
        ap.error("--connections must be >= 0")
    if "/" in args.name or not args.name:
        ap.error("--name must be a plain file name prefix")
    os.makedirs(args.out, exist_ok=True)

    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    lhost, lport = args.listen
    family = socket.AF_INET6 if ":" in lhost else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((lhost, lport))
    listener.listen(64)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.ready_file)
    print(f"capture.py: listening on {lhost}:{port} -> {args.upstream[0]}:{args.upstream[1]}, "
          f"recording {args.out}/{args.name}-N.*.bin", file=sys.stderr, flush=True)

    deadline = time.monotonic() + args.timeout
    conns = []
    status = 0
    try:
        while not stop.is_set():
            if args.connections and len(conns) >= args.connections:
                # Enough accepted: stop listening, wait for them to close.
                if all(c.done.is_set() for c in conns):
                    break
                if time.monotonic() >= deadline:
                    status = 3
                    break
                time.sleep(0.05)
                continue
            if time.monotonic() >= deadline:
                status = 3
                break
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if stop.is_set():
                    break
                raise
            client.settimeout(None)
            try:
                upstream = socket.create_connection(args.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError as e:
                print(f"capture.py: cannot connect upstream: {e}", file=sys.stderr, flush=True)
                client.close()
                status = 4
                break
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(len(conns) + 1, client, upstream, args.out, args.name)
            conns.append(conn)
            conn.start()
            if args.connections and len(conns) >= args.connections:
                listener.close()
    finally:
        try:
            listener.close()
        except OSError:
            pass
        # Let connections that are finishing (client already exited) drain, then cut the rest.
        grace_end = time.monotonic() + (0.5 if status == 3 else GRACE_SECS)
        for c in conns:
            c.done.wait(timeout=max(0.0, grace_end - time.monotonic()))
        unfinished = [c.index for c in conns if not c.done.is_set()]
        for c in conns:
            c.close()
        for c in conns:
            print(f"capture.py: {args.name}-{c.index}: frontend {c.bytes['frontend']} bytes, "
                  f"backend {c.bytes['backend']} bytes", file=sys.stderr, flush=True)
        if unfinished:
            print(f"capture.py: connections cut at exit: {unfinished}", file=sys.stderr, flush=True)
        if status == 3:
            print(f"capture.py: timeout after {args.timeout}s", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
