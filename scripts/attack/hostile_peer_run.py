#!/usr/bin/env python3
"""Runs a victim node V pulling from the hostile peer (hostile_peer.py) and
an honest node H1, with an honest node H2 pulling only from V, and goes
through the hostile peer's modes. Per mode it prints V's /ping latency (max
and median over ~1 s samples), RSS and CPU, how many requests the hostile
peer got, and whether H2 still gets V's and H1's increments.

Usage: hostile_peer_run.py BINARY [mode ...]
  (default: every mode but widemany and manysmall, which fill the victim
  for good: give them last, e.g. `... huge widemany`)
"""
import http.client, json, os, signal, statistics, subprocess, sys, tempfile
import threading, time
from urllib.parse import quote

BIN = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
MODES = sys.argv[2:] or ["honest", "huge", "actors2k", "endless", "own_next",
                         "badutf8", "nul", "deep", "types", "garbage", "hang",
                         "honest"]
F, H1, V, H2 = 21300, 21301, 21302, 21303
DIR = tempfile.mkdtemp(prefix="hp_")


def req(port, method, path, body=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body); r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    except Exception as e:
        return 0, str(e)
    finally:
        c.close()


def node(port, actors, extra=()):
    log = open(f"{DIR}/{port}.log", "ab")
    return subprocess.Popen([BIN, "--bind=127.0.0.1", f"--port={port}",
                             f"--data_dir={DIR}/{port}", f"--challenge_id=n{port}",
                             "--merge_interval_ms=200", "--flush_interval_ms=500",
                             f"--actors={actors}", *extra], stdout=log, stderr=log)


def ready(port):
    for _ in range(300):
        if req(port, "GET", "/ping")[0] == 200: return True
        time.sleep(0.05)
    return False


def rss_cpu(pid):
    rss = int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1])
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return rss // 1024, (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


fake = subprocess.Popen([sys.executable, f"{HERE}/hostile_peer.py", str(F)])
for _ in range(100):
    if req(F, "GET", "/_stats")[0] == 200: break
    time.sleep(0.05)
h1 = node(H1, "")
procs = {"v": node(V, f"127.0.0.1:{F},127.0.0.1:{H1}")}
h2 = node(H2, f"127.0.0.1:{V}")
assert ready(H1) and ready(V) and ready(H2)
acked = {"v": 0, "h1": 0}
stop = [False]


def writer():
    while not stop[0]:
        if req(V, "POST", "/counter/v_ctr", "1")[0] == 204: acked["v"] += 1
        if req(H1, "POST", "/counter/h1_ctr", "1")[0] == 204: acked["h1"] += 1
        time.sleep(0.01)

threading.Thread(target=writer, daemon=True).start()
results = []
for mode in MODES:
    q = ""
    if mode == "own_next":
        st, body = req(V, "GET", "/counter/v_ctr")
        actors = [a for a in json.loads(body)["actors"]]
        mine = [a for a in actors if a.startswith(f"n{V}.")][0]
        c, inc, nid = mine.split(".")
        q = "?actor=" + quote(f"{c}.{int(inc)+1}.{nid}")
    req(F, "GET", f"/_mode/{mode}{q}")
    pid = procs["v"].pid
    r0, c0 = rss_cpu(pid); t0 = time.time(); f0 = json.loads(req(F, "GET", "/_stats")[1])["requests"]
    lat = []; rss_max = r0
    while time.time() - t0 < 8:
        a = time.time(); st, _ = req(V, "GET", "/ping", timeout=10)
        lat.append(time.time() - a); rss_max = max(rss_max, rss_cpu(pid)[0])
        time.sleep(0.2)
    r1, c1 = rss_cpu(pid)
    fr = json.loads(req(F, "GET", "/_stats")[1])["requests"] - f0
    # H2 gets everything acked so far from V (and H1 via V)?
    target = dict(acked)
    ok = False
    for _ in range(50):
        v = req(H2, "GET", "/counter/v_ctr/value")[1]
        h = req(H2, "GET", "/counter/h1_ctr/value")[1]
        if v.isdigit() and h.isdigit() and int(v) >= target["v"] and int(h) >= target["h1"]:
            ok = True; break
        time.sleep(0.2)
    line = (f"{mode:9s} ping max {max(lat)*1000:6.1f} ms med {statistics.median(lat)*1000:5.1f} ms"
            f" | rss {r0}->{r1} MB (max {rss_max}) | cpu {100*(c1-c0)/(time.time()-t0):3.0f}%"
            f" | fake got {fr} req | H2 synced: {ok} (v {v}/{target['v']}, h1 {h}/{target['h1']})")
    print(line, flush=True); results.append(line)
    if mode == "own_next":
        procs["v"].kill(); procs["v"].wait()
        procs["v"] = node(V, f"127.0.0.1:{F},127.0.0.1:{H1}"); assert ready(V)
        st = req(V, "POST", "/counter/c", "5")
        print("  after kill -9 + restart: POST /counter/c ->", st, "value",
              req(V, "GET", "/counter/c/value")[1], flush=True)
print("metrics refused:", [l for l in req(V, "GET", "/metrics")[1].splitlines()
                           if "refused" in l and not l.startswith("#")])
print("V names:", req(V, "GET", "/counters")[1][:400])
print("H2 names:", req(H2, "GET", "/counters")[1][:400])
stop[0] = True
for p in [procs["v"], h1, h2]:
    p.send_signal(signal.SIGTERM)
for p in [procs["v"], h1, h2]:
    print("exit", p.wait(60))
fake.kill()
print("logs in", DIR)
