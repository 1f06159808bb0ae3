#!/usr/bin/env python3
"""Reply flood: clients that pipeline large GETs and never read them.

Starts BINARY on a free loopback port (temp data dir), creates 10,000
counters with 190-byte names (one GET /counters?limit=10000 reply is about
1.92 MB), then for each N in --connections opens N connections that each
send 64 such GETs in one write and never read. For --seconds it samples the
node's RSS and times GET /ping on another connection every 100 ms. Then a
half-closed client: 5 pipelined GETs, shutdown(SHUT_WR), read to EOF; it
should get all 5 replies. Prints one line per run; logs stay in a temp dir.

Usage: reply_flood.py BINARY [--connections 30,90] [--seconds 15]
                             [--flag=--write_timeout_ms=60000 ...]
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

LIST = "/counters?limit=10000"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request(port, method, path, body=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def start(binary, flags, workdir):
    port = free_port()
    log = open(os.path.join(workdir, f"node{port}.log"), "ab")
    node = subprocess.Popen(
        [binary, "--bind=127.0.0.1", f"--port={port}",
         f"--data_dir={workdir}/data{port}", "--challenge_id=flood", *flags],
        stdout=log, stderr=log)
    for _ in range(400):
        try:
            if request(port, "GET", "/ping", timeout=1)[0] == 200:
                return node, port
        except OSError:
            pass
        time.sleep(0.05)
    node.kill()
    sys.exit("node did not start")


def fill(port):
    for first in range(0, 10000, 300):
        names = {("f%05d" % i).ljust(190, "x"): 1
                 for i in range(first, min(10000, first + 300))}
        status, _ = request(port, "POST", "/counters", json.dumps(names))
        assert status == 204, status
    status, body = request(port, "GET", LIST)
    assert status == 200
    return len(body)


def ping_loop(port, stop, latencies, failures, started):
    # A health checker's keep-alive connection, open before the attack.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/ping")
    conn.getresponse().read()
    started.set()
    while not stop.is_set():
        t = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/ping")
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                failures.append(r.status)
            latencies.append((time.monotonic() - t) * 1000.0)
        except OSError as e:
            failures.append(str(e))
            conn = None
        time.sleep(0.1)


def flood(binary, flags, workdir, n, seconds):
    node, port = start(binary, flags, workdir)
    try:
        reply = fill(port)
        base = rss_mb(node.pid)
        cpu = cpu_s(node.pid)
        batch = (f"GET {LIST} HTTP/1.1\r\nHost: x\r\n\r\n" * 64).encode()
        stop, started = threading.Event(), threading.Event()
        latencies, failures = [], []
        pinger = threading.Thread(
            target=ping_loop, args=(port, stop, latencies, failures, started))
        pinger.start()
        started.wait()
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(batch)
            socks.append(s)
        peak = base
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            peak = max(peak, rss_mb(node.pid))
            time.sleep(0.1)
        stop.set()
        pinger.join()
        cpu = cpu_s(node.pid) - cpu
        lat = sorted(latencies) or [float("nan")]
        print(f"{n} connections x 64 GETs of {reply} bytes, unread, "
              f"{seconds} s: RSS {base:.0f} MB before, peak {peak:.0f} MB; "
              f"/ping answered {len(latencies)} times, p50 "
              f"{lat[len(lat) // 2]:.1f} ms, max {lat[-1]:.1f} ms, "
              f"{len(failures)} failures; node CPU {cpu:.1f} s; first "
              f"pings (ms): {[round(x) for x in latencies[:5]]}", flush=True)
        for s in socks:
            s.close()
    finally:
        node.terminate()
        node.wait()


def half_close(binary, flags, workdir):
    node, port = start(binary, flags, workdir)
    try:
        reply = fill(port)
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall((f"GET {LIST} HTTP/1.1\r\nHost: x\r\n\r\n" * 5).encode())
        s.shutdown(socket.SHUT_WR)
        got = 0
        s.settimeout(60)
        t = time.monotonic()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += len(chunk)
            time.sleep(0.001)  # a slow reader
        print(f"half-closed client, 5 pipelined GETs of {reply} bytes: got "
              f"{got} bytes (bodies alone: {5 * reply}) in "
              f"{time.monotonic() - t:.1f} s, then EOF", flush=True)
    finally:
        node.terminate()
        node.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--connections", default="30,90")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--flag", action="append", default=[])
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="reply_flood_")
    print(f"binary {args.binary}, logs in {workdir}", flush=True)
    for n in [int(x) for x in args.connections.split(",")]:
        flood(args.binary, args.flag, workdir, n, args.seconds)
    half_close(args.binary, args.flag, workdir)


if __name__ == "__main__":
    main()
