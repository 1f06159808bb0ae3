#!/usr/bin/env python3
"""Hostile-client attacks on a real node A (with a peer B): 200k nested
brackets with --max_body_bytes=2000000, duplicate batch keys, invalid UTF-8
names, 6,500 peers in POST /config, 64 dead peers, {"actors":[]}, 20,000
GET /counter/ghostN/consistent_value (must create nothing), and counters
beyond --max_counters=1000. Prints each reply; logs stay in a temp dir.

Usage: hostile_client.py BINARY
"""
import http.client, json, os, signal, subprocess, sys, tempfile, time, threading
BIN=sys.argv[1]; DIR=tempfile.mkdtemp(prefix="hc_"); A,B=21400,21401
def req(port, method, path, body=None, timeout=30, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body); r = c.getresponse()
        return r.status, r.read().decode("utf-8","replace")
    except Exception as e:
        if conn: conn.close()
        return 0, str(e)
    finally:
        if not conn: c.close()
def node(port, extra):
    log=open(f"{DIR}/{port}.log","ab")
    return subprocess.Popen([BIN,"--bind=127.0.0.1",f"--port={port}",f"--data_dir={DIR}/{port}",
        f"--challenge_id=c{port}","--merge_interval_ms=200",*extra],stdout=log,stderr=log)
def ready(port):
    for _ in range(300):
        if req(port,"GET","/ping")[0]==200: return True
        time.sleep(0.05)
def threads_fds(p): return len(os.listdir(f"/proc/{p.pid}/task")), len(os.listdir(f"/proc/{p.pid}/fd"))
b=node(B,[f"--actors=127.0.0.1:{A}"]); a=node(A,["--max_body_bytes=2000000","--max_counters=1000",f"--actors=127.0.0.1:{B}"])
assert ready(A) and ready(B)
print("1a 200k [ /counters:", req(A,"POST","/counters","["*200000), "alive:", req(A,"GET","/ping")[0])
print("1b 200k [ /config:", req(A,"POST","/config","["*200000)[0], req(A,"POST","/config",'{"actors":'+"["*200000)[0], "alive:", req(A,"GET","/ping")[0])
print("1c 200k { /counters:", req(A,"POST","/counters",'{"a":'*200000)[0], "alive:", req(A,"GET","/ping")[0])
print("2 dup keys:", req(A,"POST","/counters",'{"d":1,"d":2}'), "d=", req(A,"GET","/counter/d/value")[1])
print("2b dup keys escaped:", req(A,"POST","/counters",'{"d":1,"\\u0064":2}'), "d=", req(A,"GET","/counter/d/value")[1])
print("3 bad utf8 name:", req(A,"POST","/counter/%FF%FE","1"), req(A,"POST","/counters",b'{"\xff\xfe":1}'),
      req(A,"POST","/counters",'{"\\udc80":1}'), req(A,"POST","/counter/%ED%A0%80","1")[0], req(A,"POST","/counter/%C0%AF","1")[0])
t0=threads_fds(a)
body=json.dumps({"actors":[f"127.0.0.{1+i//250}:{20000+i}" for i in range(6500)]})
print("4 6500 peers:", len(body), "bytes ->", req(A,"POST","/config",body), "threads,fds before/after:", t0, threads_fds(a))
body=json.dumps({"actors":[f"127.0.0.9:{20000+i}" for i in range(64)]})
print("4b 64 dead peers:", req(A,"POST","/config",body)[0]); time.sleep(3); print("   threads,fds:", threads_fds(a), "ping", req(A,"GET","/ping")[0])
print("   and back:", req(A,"POST","/config",json.dumps({"actors":[f"127.0.0.1:{B}"]}))[0]); time.sleep(2)
m=req(A,"GET","/metrics")[1]; print("   peer metric series lines:", sum(1 for l in m.splitlines() if "127.0.0.9" in l))
print("4c empty actors:", req(A,"POST","/config",'{"actors":[]}'), req(A,"POST","/config",json.dumps({"actors":[f"127.0.0.1:{B}"]}))[0])
# 5: ghosts
conn=http.client.HTTPConnection("127.0.0.1",A,timeout=30); codes={}
t=time.time()
for i in range(20000):
    st,_=req(A,"GET",f"/counter/ghost{i:06d}/consistent_value",conn=conn)
    if st==0: conn=http.client.HTTPConnection("127.0.0.1",A,timeout=30)
    codes[st]=codes.get(st,0)+1
print(f"5 20000 ghost consistent reads in {time.time()-t:.1f}s codes {codes}; GET ghost000001:",
      req(A,"GET","/counter/ghost000001")[0], "on B:", req(B,"GET","/counter/ghost000001")[0],
      "A /counters:", req(A,"GET","/counters")[1][:120], "B /counters:", req(B,"GET","/counters")[1][:120])
# 6: max_counters=1000
codes={}; t=time.time(); conn=http.client.HTTPConnection("127.0.0.1",A,timeout=30); n=0
for k in range(200):
    batch={f"q{k}_{j}":1 for j in range(100)}
    st,body=req(A,"POST","/counters",json.dumps(batch),conn=conn)
    if st==0: conn=http.client.HTTPConnection("127.0.0.1",A,timeout=30)
    codes[st]=codes.get(st,0)+1
for i in range(2000):
    st,body=req(A,"POST",f"/counter/s{i}","1",conn=conn)
    if st==0: conn=http.client.HTTPConnection("127.0.0.1",A,timeout=30)
    codes[st]=codes.get(st,0)+1
print("6 quota codes", codes, "last body", body, "existing d:", req(A,"POST","/counter/d","1")[0],
      "counters gauge:", [l for l in req(A,"GET","/metrics")[1].splitlines() if l.startswith("dist_counter_counters")])
time.sleep(1)
print("   B gauge:", [l for l in req(B,"GET","/metrics")[1].splitlines() if l.startswith("dist_counter_counters") or ("merges_refused" in l and not l.startswith("#"))])
for p in (a,b): p.send_signal(signal.SIGTERM)
print("exits", a.wait(60), b.wait(60), "logs", DIR)
