#!/usr/bin/env python3
"""A hostile peer for dist_counter: serves /internal/changes and
/internal/counter/<name> with whatever MODE says.

Usage: hostile_peer.py PORT [MODE]
  Switch modes while running: curl 127.0.0.1:PORT/_mode/<mode>
  (or /_mode/own_next?actor=<actor id> for own_next). Modes:
  honest      one small counter "fake_ok"
  huge        one counter with 300,000 actors (~10 MB page)
  actors2k    one counter with 2,000 small actors (over the default 1024)
  endless     more=true forever, one new counter per page, next=since+1
  widemany    more=true forever, 4 new counters of 1,000 actors per page
              (each within the per-counter bounds)
  manysmall   more=true forever, 500 new one-actor counters per page
  own_next    ACTOR (the victim's next actor) with P=2^64-1 in counter "c"
  badutf8     a counter name with raw bytes FF FE
  nul         a counter name with an escaped NUL (\\u0000) and a raw NUL
  deep        a state nested 200,000 arrays deep
  types       wrong types: p as a string, n negative, next as a float
  hang        never answers (holds the connection)
  garbage     200 OK with random bytes
Counts requests per path in /_stats.
"""
import json, os, random, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

PORT = int(sys.argv[1])
STATE = {"mode": sys.argv[2] if len(sys.argv) > 2 else "honest",
         "actor": "", "requests": 0, "instance": random.randint(1, 1 << 60)}
CACHE = {}
IDENT = {"challenge_id": "evil", "node_id": "evilnode", "actor": "evil.1.evilnode"}


def envelope(counters, since, more=False, next_=None):
    return {"node": IDENT, "instance": STATE["instance"], "reset": since == 0,
            "next": next_ if next_ is not None else since + len(counters),
            "more": more, "counters": counters}


def page(mode, since):
    if mode == "honest":
        return json.dumps(envelope([{"name": "fake_ok", "state": {
            IDENT["actor"]: {"p": 7, "n": 0}}}], since)).encode()
    if mode == "huge":
        if "huge" not in CACHE:  # built once: it takes the fake ~1 s
            CACHE["huge"] = json.dumps({f"evil.{i}.x": {"p": 1, "n": 0}
                                        for i in range(300000)})
        return (json.dumps(envelope([{"name": "huge", "state": {}}], since))
                .replace('"state": {}', '"state": ' + CACHE["huge"])).encode()
    if mode == "actors2k":
        st = {f"evil.{i}.x": {"p": 1, "n": 0} for i in range(2000)}
        return json.dumps(envelope([{"name": "wide", "state": st},
                                    {"name": "fake_ok2", "state": {IDENT["actor"]: {"p": 3, "n": 0}}}],
                                   since)).encode()
    if mode == "endless":
        return json.dumps(envelope([{"name": f"endless_{since}", "state": {
            IDENT["actor"]: {"p": 1, "n": 0}}}], since, more=True,
            next_=since + 1)).encode()
    if mode == "widemany":
        cs = [{"name": f"wide_{since}_{k}", "state": {
            f"evil.{i}.x{k}": {"p": 1, "n": 0} for i in range(1000)}}
            for k in range(4)]
        return json.dumps(envelope(cs, since, more=True,
                                   next_=since + 4)).encode()
    if mode == "manysmall":
        cs = [{"name": f"junk_{since + k}", "state": {
            IDENT["actor"]: {"p": 1, "n": 0}}} for k in range(500)]
        return json.dumps(envelope(cs, since, more=True,
                                   next_=since + 500)).encode()
    if mode == "own_next":
        return json.dumps(envelope([{"name": "c", "state": {
            STATE["actor"]: {"p": (1 << 64) - 1, "n": 0},
            IDENT["actor"]: {"p": 1, "n": 0}}}], since)).encode()
    if mode == "badutf8":
        body = json.dumps(envelope([{"name": "BAD", "state": {
            IDENT["actor"]: {"p": 1, "n": 0}}}], since)).encode()
        return body.replace(b"BAD", b"bad\xff\xfe")
    if mode == "nul":
        body = json.dumps(envelope([{"name": "nul\u0000x", "state": {
            IDENT["actor"]: {"p": 1, "n": 0}}}, {"name": "RAWNUL", "state": {
            IDENT["actor"]: {"p": 1, "n": 0}}}], since)).encode()
        return body.replace(b"RAWNUL", b"raw\x00nul")
    if mode == "deep":
        return (b'{"node":' + json.dumps(IDENT).encode() +
                b',"instance":5,"reset":true,"next":1,"more":false,"counters":[{"name":"d","state":' +
                b"[" * 200000 + b"]" * 200000 + b"}]}")
    if mode == "types":
        return json.dumps({"node": IDENT, "instance": STATE["instance"], "reset": True,
                           "next": 1.5, "more": "no", "counters": [{"name": 5, "state": {
                               IDENT["actor"]: {"p": "1", "n": -1}}}]}).encode()
    if mode == "garbage":
        return os.urandom(5000)
    raise ValueError(mode)


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        u = urlparse(self.path)
        if u.path.startswith("/_mode/"):
            STATE["mode"] = u.path[len("/_mode/"):]
            STATE["actor"] = parse_qs(u.query).get("actor", [""])[0]
            return self.send(200, b"ok\n")
        if u.path == "/_stats":
            return self.send(200, json.dumps(STATE).encode())
        STATE["requests"] += 1
        mode = STATE["mode"]
        if mode == "hang":
            time.sleep(3600)
            return
        since = int(parse_qs(u.query).get("since", ["0"])[0])
        if u.path.startswith("/internal/counter/"):
            body = json.dumps({"node": IDENT, "name": "x", "state": {}}).encode()
            return self.send(200, body)
        if u.path == "/ping":
            return self.send(200, b'{"status":"OK"}')
        self.send(200, page(mode, since))

    def send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except Exception:
            pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
