#!/usr/bin/env python3
"""Checks that the one-node sessions of README.md and docs/*.md are true.

Replays, against a real node, every ```console block of a Markdown file that
follows the line `<!-- checked by scripts/check_readme.py -->`, in order, as
one story on one fresh data directory, and compares each command's output
with the lines the file shows under it. Each file is its own story; a file
holding the line `<!-- check_readme: continues OTHER.md -->` (a path from the
top of the checkout) continues OTHER.md's story: OTHER.md's blocks are
replayed first, on the same data directory.

    scripts/check_readme.py --binary build/dist_counter [FILE.md ...]
                            [--keep] [--verbose]

Without files it checks README.md and every docs/*.md of the checkout (a
file without marked blocks is skipped).

A block line `$ <command>` is a command; the lines up to the next `$ ` line
are its expected output. Commands it can replay:

    rm -rf data/node1          empties the temp data directory
    scripts/run.sh [flags] &   starts the node as scripts/run.sh would
                               (challenge id 1, data/node1), on a free
                               loopback port, with the extra flags
    curl ...                   runs in bash; localhost:7777 becomes the
                               node's port, 127.0.0.1:8888 a reserved port
                               where nothing listens (connections refused)
    kill %1 / kill -9 %1       SIGTERM (the node must exit 0) / SIGKILL
    ldb --db=data/node1 ...    runs ldb on the node's data directory

Anything else fails the check, so a marked block holds only what can be
replayed. Outputs must match line by line, except that the node's random
node id (8 hex digits, in actor ids and meta/node_id) may differ from the one
the README shows. Exits 0 if everything matched, 1 otherwise (with a diff),
2 for bad arguments. Uses only 127.0.0.1 and a temp dir; Python 3 stdlib.
"""

import argparse
import difflib
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

MARKER = "<!-- checked by scripts/check_readme.py -->"
CONTINUES = re.compile(r"^<!-- check_readme: continues (\S+) -->$")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
README_PORT = "7777"
README_PEER = "127.0.0.1:8888"
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
COMMAND_TIMEOUT_S = 20
NODE_ID_IN_ACTOR = re.compile(r'"\d+\.\d+\.([0-9a-f]{8})"')


class CheckError(Exception):
    """A mismatch or a failure; the message says what."""


def parse_blocks(readme_text, name="README"):
    """Returns the marked console blocks as lists of (where, command,
    expected_lines), `where` being "<name> line <n>"."""
    lines = readme_text.split("\n")
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != MARKER:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or lines[j].strip() != "```console":
            raise CheckError(
                f"{name} line {i + 1}: {MARKER} must be followed by a "
                "```console block")
        steps = []
        k = j + 1
        while k < len(lines) and lines[k].strip() != "```":
            line = lines[k]
            if line.startswith("$ "):
                steps.append((f"{name} line {k + 1}", line[2:], []))
            elif steps:
                steps[-1][2].append(line)
            elif line.strip():
                raise CheckError(
                    f"{name} line {k + 1}: output before any command")
            k += 1
        if k >= len(lines):
            raise CheckError(f"{name} line {j + 1}: unterminated block")
        blocks.append(steps)
        i = k + 1
    return blocks


def free_port():
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reserve_refusing_port():
    """Binds a socket without listening: connections to its port are
    refused for as long as it stays open, and nobody else can take it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


class Node:
    """The dist_counter process, started and stopped as the docs say."""

    def __init__(self, binary, workdir, verbose):
        self.binary = binary
        self.data_dir = os.path.join(workdir, "data", "node1")
        self.log_path = os.path.join(workdir, "node.log")
        self.verbose = verbose
        self.proc = None
        self.port = None

    def start(self, extra_flags):
        if self.proc is not None:
            raise CheckError("scripts/run.sh & while the node still runs")
        os.makedirs(self.data_dir, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if k not in ("ACTORS", "CHALLENGE_ID")}
        env["GLOG_logtostderr"] = "1"
        last_error = ""
        for _ in range(5):  # a port taken between the probe and the bind
            self.port = free_port()
            flags = ["--challenge_id=1", f"--port={self.port}",
                     f"--data_dir={self.data_dir}", "--bind=127.0.0.1"]
            flags += extra_flags
            with open(self.log_path, "a") as log:
                log.write(f"==== {self.binary} {' '.join(flags)}\n")
                log.flush()
                self.proc = subprocess.Popen([self.binary] + flags, env=env,
                                             stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log)
            if self._wait_ready():
                return
            last_error = self.log_tail()
            self.kill(signal.SIGKILL)
            if "in use" not in last_error:
                break
        raise CheckError("the node did not start; its log ends with:\n" +
                         last_error)

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url("/ping"),
                                            timeout=1) as reply:
                    if reply.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def node_id(self):
        """The node id, from the route peers use to identify the node."""
        with urllib.request.urlopen(self.url("/internal/changes?limit=1"),
                                    timeout=5) as reply:
            return json.loads(reply.read())["node"]["node_id"]

    def kill(self, sig):
        """Sends `sig`, waits for the exit and returns the exit status."""
        if self.proc is None:
            raise CheckError("kill %1, but no node runs")
        self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise CheckError(f"the node ignored signal {sig} for "
                             f"{STOP_TIMEOUT_S} s")
        self.proc = None
        return status

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError:
            return "(no log)"


class Story:
    """Replays the marked blocks on one node and one data directory."""

    def __init__(self, args, workdir):
        self.node = Node(os.path.abspath(args.binary), workdir, args.verbose)
        self.verbose = args.verbose
        self.refusing = reserve_refusing_port()
        self.peer = f"127.0.0.1:{self.refusing.getsockname()[1]}"
        self.readme_node_id = None  # the first one the doc shows
        self.node_id = None  # the data directory's, once known
        self.curl_count = 0

    def close(self):
        if self.node.proc is not None:
            self.node.kill(signal.SIGKILL)
        self.refusing.close()

    def run(self, blocks):
        for block in blocks:
            for line_no, command, expected in block:
                if self.readme_node_id is None:
                    for text in expected:
                        m = NODE_ID_IN_ACTOR.search(text)
                        if m:
                            self.readme_node_id = m.group(1)
                            break
                self.step(line_no, command, expected)
        if self.curl_count == 0:
            raise CheckError("the marked blocks hold no curl command")

    def step(self, line_no, command, expected):
        if self.verbose:
            print(f"{line_no}: $ {command}", flush=True)
        try:
            words = shlex.split(command, comments=True)
        except ValueError as e:
            raise CheckError(f"{line_no}: {e}")
        if not words:
            raise CheckError(f"{line_no}: empty command")
        if words[0] == "scripts/run.sh":
            if words[-1] != "&":
                raise CheckError(f"{line_no}: the session runs "
                                 "scripts/run.sh in the background (&)")
            self.node.start(words[1:-1])
            actual = ""
        elif words[0] == "curl":
            actual = self.curl(line_no, command)
            self.curl_count += 1
        elif words in (["kill", "%1"], ["kill", "-9", "%1"],
                       ["kill", "-KILL", "%1"]):
            sig = signal.SIGTERM if len(words) == 2 else signal.SIGKILL
            status = self.node.kill(sig)
            if sig == signal.SIGTERM and status != 0:
                raise CheckError(
                    f"{line_no}: the node exited with status "
                    f"{status} after SIGTERM; its log ends with:\n" +
                    self.node.log_tail())
            actual = ""
        elif words == ["rm", "-rf", "data/node1"]:
            if self.node.proc is not None:
                raise CheckError(f"{line_no}: rm -rf data/node1 "
                                 "while the node runs")
            shutil.rmtree(self.node.data_dir, ignore_errors=True)
            self.node_id = None
            actual = ""
        elif words[0] == "ldb" and "--db=data/node1" in words:
            actual = self.ldb(line_no, words)
        else:
            raise CheckError(f"{line_no}: cannot replay "
                             f"'{command}'")
        self.compare(line_no, command, expected, actual)

    def curl(self, line_no, command):
        if self.node.proc is None:
            raise CheckError(f"{line_no}: curl, but no node runs")
        port = str(self.node.port)
        shell = re.sub(r"^curl ", "curl -q ", command.strip())  # no ~/.curlrc
        shell = re.sub(r"\b(localhost|127\.0\.0\.1):" + README_PORT + r"\b",
                       "127.0.0.1:" + port, shell)
        shell = shell.replace(README_PEER, self.peer)
        env = {k: v for k, v in os.environ.items()
               if not k.lower().endswith("_proxy")}
        try:
            done = subprocess.run(["bash", "-c", shell], env=env,
                                  capture_output=True, timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise CheckError(f"{line_no}: '{shell}' took more than "
                             f"{COMMAND_TIMEOUT_S} s")
        if done.returncode != 0 or done.stderr:
            raise CheckError(
                f"{line_no}: '{shell}' exited with "
                f"{done.returncode}: {done.stderr.decode(errors='replace')}")
        out = done.stdout.decode(errors="replace")
        out = out.replace(self.peer, README_PEER)
        return out.replace("127.0.0.1:" + port, "127.0.0.1:" + README_PORT)

    def ldb(self, line_no, words):
        if shutil.which("ldb") is None:
            raise CheckError("ldb is not installed (Debian: rocksdb-tools)")
        argv = [f"--db={self.node.data_dir}" if w == "--db=data/node1" else w
                for w in words]
        done = subprocess.run(argv, capture_output=True,
                              timeout=COMMAND_TIMEOUT_S)
        if done.returncode != 0:
            raise CheckError(f"{line_no}: ldb exited with "
                             f"{done.returncode}: "
                             f"{done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace")

    def actual_node_id(self):
        """The node id of the data directory (fixed for its life)."""
        if self.node_id is None:
            if self.node.proc is not None:
                self.node_id = self.node.node_id()
            else:
                done = subprocess.run(
                    ["ldb", f"--db={self.node.data_dir}", "get",
                     "meta/node_id"], capture_output=True,
                    timeout=COMMAND_TIMEOUT_S)
                self.node_id = done.stdout.decode(errors="replace").strip()
            if not re.fullmatch(r"[0-9a-f]{8}", self.node_id or ""):
                raise CheckError(f"cannot read the node id: {self.node_id!r}")
        return self.node_id

    def compare(self, line_no, command, expected, actual):
        actual = actual.replace("\r\n", "\n")
        if actual.endswith("\n"):
            actual = actual[:-1]
        got = actual.split("\n") if actual else []
        if self.readme_node_id and got:
            node_id = self.actual_node_id()
            got = [g.replace(node_id, self.readme_node_id) for g in got]
        if got == expected:
            return
        diff = "\n".join(difflib.unified_diff(
            expected, got, "doc", "node", lineterm=""))
        raise CheckError(f"{line_no}: $ {command}\n"
                         f"the output differs from the doc's:\n{diff}")


def file_blocks(path, seen=()):
    """The blocks of the story of `path` (a path from the checkout's top):
    those of the file it continues, if any, then its own."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        text = f.read()
    blocks = parse_blocks(text, path)
    for line in text.split("\n"):
        m = CONTINUES.match(line.strip())
        if m:
            if m.group(1) in seen or m.group(1) == path:
                raise CheckError(f"{path}: a loop of continued stories")
            return file_blocks(m.group(1), seen + (path,)) + blocks
    return blocks


def check_story(args, path):
    """Replays the story of `path` on a fresh node and data directory;
    returns True if it is skipped (no marked block) or matched."""
    workdir = tempfile.mkdtemp(prefix="dist_counter_readme.")
    story = None
    try:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            if not parse_blocks(f.read(), path):
                return True
        blocks = file_blocks(path)
        story = Story(args, workdir)
        started = time.monotonic()
        story.run(blocks)
        steps = sum(len(b) for b in blocks)
        print(f"check_readme: OK: {path}: {steps} commands in {len(blocks)} "
              f"blocks ({story.curl_count} curl) match "
              f"({time.monotonic() - started:.1f} s)")
        return True
    except CheckError as e:
        print(f"check_readme: FAILED: {e}", file=sys.stderr)
        if story is not None:
            print("check_readme: the node's log ends with:\n" +
                  story.node.log_tail(), file=sys.stderr)
        return False
    finally:
        if story is not None:
            story.close()
        if args.keep:
            print(f"check_readme: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True,
                        help="the dist_counter binary to run")
    parser.add_argument("files", nargs="*",
                        help="Markdown files, from the top of the checkout "
                        "(default: README.md and docs/*.md)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp dirs (data and node log)")
    parser.add_argument("--verbose", action="store_true",
                        help="print every command as it is replayed")
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        print(f"check_readme: {args.binary} is not an executable",
              file=sys.stderr)
        return 2
    files = args.files or (["README.md"] + sorted(
        os.path.relpath(p, ROOT)
        for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))))
    marked = 0
    ok = True
    for path in files:
        if not os.path.isfile(os.path.join(ROOT, path)):
            print(f"check_readme: no file {path}", file=sys.stderr)
            return 2
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            marked += bool(parse_blocks(f.read(), path))
        ok = check_story(args, path) and ok
    if marked == 0:
        print(f"check_readme: no block is marked {MARKER}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
