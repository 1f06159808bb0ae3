#!/usr/bin/env python3
"""Full-disk attack on a real node (needs root for mount).

Usage: full_disk.py BINARY [--durable] [--stop-while-full | --kill9-while-full]

Mounts a 2 MB tmpfs, puts a node's data dir on it (plus a 1.2 MB filler
file), starts a peer that pulls from it, streams increments of distinct long
names (4 threads) until writes fail, checks /ping says 503, deletes the
filler, waits for 204s again, stops the node cleanly, restarts it and checks:
(with --stop-while-full / --kill9-while-full the node gets SIGTERM / SIGKILL
while the disk is still full and the filler goes only after it exited)
every 204 is present, nothing that only got 5xx is visible on the node or
on the peer. Prints the counts; exits 1 on a broken promise.
"""
import http.client, json, os, shutil, signal, subprocess, sys, tempfile
import threading, time

BIN = sys.argv[1]
DURABLE = "--durable" in sys.argv
END_SIGNAL = (signal.SIGTERM if "--stop-while-full" in sys.argv else
              signal.SIGKILL if "--kill9-while-full" in sys.argv else None)
PORT = 21000 + (7 if DURABLE else 0) + (2 if END_SIGNAL else 0)
MNT = tempfile.mkdtemp(prefix="fd_mnt_")
PEER_DIR = tempfile.mkdtemp(prefix="fd_peer_")


def start(port, data, extra):
    log = open(data.rstrip("/") + ".log", "ab")
    return subprocess.Popen([BIN, "--bind=127.0.0.1", f"--port={port}",
                             f"--data_dir={data}", "--challenge_id=%d" % port]
                            + extra, stdout=log, stderr=log)


def req(port, method, path, body=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    except Exception as e:
        return 0, str(e)
    finally:
        c.close()


def wait_ready(port):
    for _ in range(300):
        if req(port, "GET", "/ping")[0] in (200, 503):
            return True
        time.sleep(0.05)
    return False


subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", MNT])
try:
    with open(os.path.join(MNT, "filler"), "wb") as f:
        f.write(b"x" * 1200 * 1024)
    data = os.path.join(MNT, "node")
    flags = ["--flush_interval_ms=200"] + (["--durable"] if DURABLE else [])
    node = start(PORT, data, flags)
    assert wait_ready(PORT), "node did not start"
    peer = start(PORT + 1, PEER_DIR + "/peer",
                 [f"--actors=127.0.0.1:{PORT}", "--merge_interval_ms=200"])
    assert wait_ready(PORT + 1)

    lock = threading.Lock()
    acked, refused, other = {}, {}, {}
    ping_codes = {}
    phase = {"stop": False}
    statuses = {}

    def worker(t):
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        i = 0
        while not phase["stop"]:
            name = f"t{t}_{i:07d}_" + "n" * 150
            i += 1
            try:
                conn.request("POST", "/counter/" + name, body="1")
                r = conn.getresponse(); r.read(); st = r.status
            except Exception:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
                st = 0
            with lock:
                statuses[st] = statuses.get(st, 0) + 1
                if st == 204: acked[name] = 1
                elif st >= 500: refused[name] = st
                else: other[name] = st

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads: t.start()
    t0 = time.time()
    # Run until refusals appear, then 3 more seconds.
    while time.time() - t0 < 60 and not refused:
        time.sleep(0.1)
    first_refusal = time.time() - t0
    time.sleep(3)
    p = req(PORT, "GET", "/ping")
    print(f"first 5xx after {first_refusal:.1f}s; /ping while full: {p}")
    with lock:
        print("while full:", dict(statuses))
        n_refused_full = len(refused)
    rc = None
    if END_SIGNAL:
        phase["stop"] = True
        for t in threads: t.join()
        t2 = time.time()
        node.send_signal(END_SIGNAL)
        rc = node.wait(120)
        print(f"signal {END_SIGNAL} while full: exit={rc} in {time.time()-t2:.1f}s")
    os.unlink(os.path.join(MNT, "filler"))
    t1 = time.time()
    recovered = None
    while not END_SIGNAL and time.time() - t1 < 30:
        with lock:
            before = len(acked)
        time.sleep(0.5)
        with lock:
            if len(acked) > before + 20:
                recovered = time.time() - t1
                break
    if not END_SIGNAL:
        print("writes resumed after freeing:", recovered, "s; /ping:",
              req(PORT, "GET", "/ping"))
        phase["stop"] = True
        for t in threads: t.join()
        t2 = time.time()
        node.send_signal(signal.SIGTERM)
        rc = node.wait(60)
        print(f"clean stop exit={rc} in {time.time()-t2:.1f}s")
    print("final statuses:", dict(statuses))
    node = start(PORT, data, flags)
    assert wait_ready(PORT), "restart failed"
    print("after restart /ping:", req(PORT, "GET", "/ping"))
    lost = [n for n in acked if req(PORT, "GET", f"/counter/{n}/value")[1] != "1"]
    visible = [n for n in refused
               if req(PORT, "GET", f"/counter/{n}/value")[1] != "0"]
    print(f"acked={len(acked)} lost_after_restart={len(lost)} "
          f"refused={len(refused)} refused_visible_on_node={len(visible)} "
          f"other={len(other)}")
    # Peer: wait for it to hold every acked name, then check the refused.
    deadline = time.time() + 60
    missing = list(acked)
    while missing and time.time() < deadline:
        missing = [n for n in missing
                   if req(PORT + 1, "GET", f"/counter/{n}/value")[1] != "1"]
        if missing: time.sleep(1)
    pvisible = [n for n in refused
                if req(PORT + 1, "GET", f"/counter/{n}/value")[1] != "0"]
    print(f"peer: acked missing={len(missing)} refused visible={len(pvisible)}")
    if lost: print("lost e.g.", lost[:3])
    if visible: print("visible e.g.", visible[:3], refused[visible[0]])
    node.send_signal(signal.SIGTERM); print("final stop exit", node.wait(60))
    peer.send_signal(signal.SIGTERM); peer.wait(60)
    bad = lost or visible or pvisible or missing or (rc != 0 and not END_SIGNAL)
    print("RESULT:", "BROKEN" if bad else "ok")
finally:
    subprocess.call(["umount", MNT])
    shutil.rmtree(MNT, ignore_errors=True)
