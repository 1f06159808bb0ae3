#!/usr/bin/env python3
"""Descriptor exhaustion attack on a real node.

Usage: descriptors.py BINARY [--durable] [--idle 1100] [--limit 1024]

Starts a node under `prlimit --nofile=LIMIT:LIMIT` (it cannot raise it),
opens IDLE idle connections, streams increments of distinct names from 4
threads for 15 s, samples the node's CPU (from /proc) and /ping latency,
closes the idle connections, stops it cleanly, restarts it and checks every
204 is present. Exits 1 on a lost increment or a failed stop.
"""
import http.client, os, signal, socket, subprocess, sys, tempfile, threading
import time

BIN = sys.argv[1]
DURABLE = "--durable" in sys.argv
def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default
IDLE = arg("--idle", 1100)
LIMIT = arg("--limit", 1024)
PORT = 21100 + (5 if DURABLE else 0)
DIR = tempfile.mkdtemp(prefix="fdx_")
data = DIR + "/node"
flags = ["--flush_interval_ms=200"] + (["--durable"] if DURABLE else [])


def start():
    log = open(DIR + "/node.log", "ab")
    return subprocess.Popen(["prlimit", f"--nofile={LIMIT}:{LIMIT}", BIN,
                             "--bind=127.0.0.1", f"--port={PORT}",
                             f"--data_dir={data}", "--challenge_id=1"] + flags,
                            stdout=log, stderr=log)


def req(method, path, body=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        c.request(method, path, body=body); r = c.getresponse()
        return r.status, r.read().decode()
    except Exception as e:
        return 0, str(e)
    finally:
        c.close()


def wait_ready():
    for _ in range(300):
        if req("GET", "/ping")[0] in (200, 503): return True
        time.sleep(0.05)
    return False


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


node = start()
assert wait_ready()
idle = []
refused_connect = 0
for i in range(IDLE):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", PORT)); idle.append(s)
    except OSError:
        refused_connect += 1; s.close()
time.sleep(0.5)
nfds = len(os.listdir(f"/proc/{node.pid}/fd"))
print(f"idle connections opened={len(idle)} connect errors={refused_connect}, "
      f"node fds={nfds}")
lock = threading.Lock(); acked = []; statuses = {}; stop = [False]


def worker(t):
    i = 0
    while not stop[0]:
        name = f"w{t}_{i}"; i += 1
        st, _ = req("POST", "/counter/" + name, "1", timeout=5)
        with lock:
            statuses[st] = statuses.get(st, 0) + 1
            if st == 204: acked.append(name)

threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
for t in threads: t.start()
c0 = cpu_ticks(node.pid); t0 = time.time(); lat = []
while time.time() - t0 < 15:
    a = time.time(); st, body = req("GET", "/ping", timeout=5)
    lat.append((time.time() - a, st)); time.sleep(0.5)
cpu = (cpu_ticks(node.pid) - c0) / os.sysconf("SC_CLK_TCK") / (time.time() - t0)
print(f"during attack: node CPU {cpu*100:.0f}%, statuses {statuses}")
print("ping (s,status) max:", max(lat), "codes:", sorted(set(s for _, s in lat)))
# Idle sockets held open, writes stopped: does the node idle?
stop[0] = True
for t in threads: t.join()
c0 = cpu_ticks(node.pid); time.sleep(3)
print(f"idle sockets held, no writes: CPU {(cpu_ticks(node.pid)-c0)/os.sysconf('SC_CLK_TCK')/3*100:.0f}%")
for s in idle: s.close()
time.sleep(1)
print("after closing idle: ping", req("GET", "/ping"),
      "one more write", req("POST", "/counter/after", "1"))
acked_after = req("POST", "/counter/after", "1")[0] == 204
node.send_signal(signal.SIGTERM); rc = node.wait(60)
print("stop exit", rc)
node = start(); assert wait_ready()
lost = [n for n in acked if req("GET", f"/counter/{n}/value")[1] != "1"]
av = req("GET", "/counter/after/value")[1]
print(f"acked={len(acked)} lost={len(lost)} 'after'={av}")
node.send_signal(signal.SIGTERM); node.wait(60)
print("log errors:", subprocess.run(["grep", "-c", "^E", DIR + "/node.log"],
                                    capture_output=True, text=True).stdout.strip())
print("RESULT:", "BROKEN" if lost or rc != 0 else "ok", "log:", DIR + "/node.log")
