#!/usr/bin/env python3
"""Checks that the docs say what the code does (README.md and docs/*.md).

    scripts/check_docs.py --binary build/dist_counter [--verbose]

Fails (exit 1, one line per finding) when:

  - the flag table of docs/operations.md (`## Flags`) differs from what
    `dist_counter --help` lists: a flag missing on either side, or another
    default (an empty default must read `empty ...` or `env ...`; any other
    must be the first `code` of the cell);
  - the metric table of docs/operations.md (`## Metrics`) differs from the
    metrics the code registers (every "dist_counter_..." string literal in
    src/), or a metric's type differs from its `# TYPE` line in the
    GET /metrics of a real node (started on loopback with a temp data dir;
    series that appear only with peers, a token or --peers_dns are checked
    against src/ alone), or the node exports a metric src/ does not name;
  - the route tables (README.md's `## HTTP API`, and the first column of
    docs/operations.md's) differ from the router's table in
    src/api/routes.cc (its {"/pattern", kMethods, "label", ...} rows, parsed
    from the source), or the `route` labels listed for
    dist_counter_http_requests_total miss one of the router's;
  - a Markdown table is cut by a blank line (a table row, a blank line, then
    a line starting with `|` that is not the header of a new table),
    outside code blocks;
  - a doc cites a source line (`merger.cc:397`): line numbers drift;
  - a link to a heading (`file.md#anchor` or `#anchor`) leads nowhere.

Exits 0 when everything agrees, 2 for bad arguments. Python 3 stdlib only.
"""

import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.normpath(os.path.join(os.path.dirname(
    os.path.abspath(__file__)), ".."))
OPERATIONS = "docs/operations.md"
METHOD_BITS = {"kGet": "GET", "kPost": "POST", "kDelete": "DELETE",
               "kPut": "PUT"}


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def doc_files():
    return ["README.md"] + sorted(
        os.path.relpath(p, ROOT)
        for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))


def prose_lines(text):
    """(line number, line) of the lines outside ``` code blocks."""
    fenced = False
    for n, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def section(text, heading):
    """The lines under `heading` (a `## ` title) up to the next `## `."""
    out, inside = [], False
    for _, line in prose_lines(text):
        if line.startswith("## "):
            inside = line[3:].strip() == heading
            continue
        if inside:
            out.append(line)
    return out


def table_rows(lines):
    """The cells of the table rows among `lines` (header and rule left out)."""
    rows = []
    for line in lines:
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if all(re.fullmatch(r"-+", c) for c in cells):
            continue
        rows.append(cells)
    return rows[1:] if rows else rows  # the header


# ---- flags --------------------------------------------------------------

def help_flags(binary):
    """{flag: default} from `binary --help`."""
    done = subprocess.run([binary, "--help"], capture_output=True, timeout=30)
    text = (done.stdout + done.stderr).decode(errors="replace")
    flags = {}
    for entry in re.split(r"\n(?=    -\w+ \()", text):
        m = re.match(r"\s*-(\w+) \(", entry)
        if not m:
            continue
        joined = " ".join(entry.split())
        d = re.search(r"\) type: \w+ default: (\"[^\"]*\"|\S+)", joined)
        if d is None:
            raise SystemExit(f"check_docs: cannot read --{m.group(1)}'s "
                             "default in --help")
        flags[m.group(1)] = d.group(1).strip('"')
    return flags


def check_flags(binary, errors):
    documented = {}
    for cells in table_rows(section(read(OPERATIONS), "Flags")):
        m = re.fullmatch(r"`--(\w+)`", cells[0])
        if not m:
            errors.append(f"{OPERATIONS}: flag table row {cells[0]!r} is not "
                          "a `--flag`")
            continue
        documented[m.group(1)] = cells[1]
    actual = help_flags(binary)
    for flag in sorted(set(actual) - set(documented)):
        errors.append(f"{OPERATIONS}: --{flag} (from --help) is not in the "
                      "flag table")
    for flag in sorted(set(documented) - set(actual)):
        errors.append(f"{OPERATIONS}: the flag table has --{flag}, which "
                      "--help does not list")
    for flag in sorted(set(actual) & set(documented)):
        default, cell = actual[flag], documented[flag]
        if default == "":
            if not re.match(r"(empty|env )", cell):
                errors.append(f"{OPERATIONS}: --{flag}'s default is empty, "
                              f"the table says {cell!r}")
            continue
        code = re.search(r"`([^`]*)`", cell)
        if code is None or code.group(1) != default:
            errors.append(f"{OPERATIONS}: --{flag}'s default is {default!r}, "
                          f"the table says {cell!r}")
    return len(actual)


# ---- metrics ------------------------------------------------------------

def source_metrics():
    names = set()
    for path in glob.glob(os.path.join(ROOT, "src", "**", "*.*"),
                          recursive=True):
        if path.endswith((".cc", ".h")):
            with open(path, encoding="utf-8") as f:
                names |= set(re.findall(r'"(dist_counter_[a-z0-9_]+)"',
                                        f.read()))
    return names


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(binary):
    """{name: type} from the GET /metrics of a fresh node."""
    workdir = tempfile.mkdtemp(prefix="dist_counter_docs.")
    proc = None
    try:
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("ACTORS", "CHALLENGE_ID",
                            "DIST_COUNTER_AUTH_TOKEN_FILE")}
        with open(os.path.join(workdir, "node.log"), "w") as log:
            proc = subprocess.Popen(
                [binary, "--challenge_id=1", f"--port={port}",
                 "--bind=127.0.0.1", f"--data_dir={workdir}/data"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                # One request first, so the request series exist.
                urllib.request.urlopen(url + "/ping", timeout=1).read()
                with urllib.request.urlopen(url + "/metrics",
                                            timeout=5) as reply:
                    text = reply.read().decode()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("check_docs: the node did not start:\n"
                                     + read_tail(workdir))
                time.sleep(0.05)
        return dict(re.findall(r"(?m)^# TYPE (\S+) (\S+)$", text))
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def read_tail(workdir):
    try:
        with open(os.path.join(workdir, "node.log"), errors="replace") as f:
            return "".join(f.readlines()[-20:])
    except OSError:
        return "(no log)"


def check_metrics(binary, route_labels, errors):
    documented = {}
    for cells in table_rows(section(read(OPERATIONS), "Metrics")):
        m = re.fullmatch(r"`(dist_counter_[a-z0-9_]+)(\{[^}]*\})?`", cells[0])
        if not m:
            errors.append(f"{OPERATIONS}: metric table row {cells[0]!r} is "
                          "not a `dist_counter_...` metric")
            continue
        documented[m.group(1)] = (cells[1], cells[2])
    registered = source_metrics()
    exported = scrape(binary)
    for name in sorted(registered - set(documented)):
        errors.append(f"{OPERATIONS}: {name} (registered in src/) is not in "
                      "the metric table")
    for name in sorted(set(documented) - registered):
        errors.append(f"{OPERATIONS}: the metric table has {name}, which "
                      "src/ does not register")
    for name in sorted(set(exported) - registered):
        errors.append(f"GET /metrics exports {name}, which src/ does not "
                      "name as a literal (and the docs cannot be checked)")
    for name in sorted(set(exported) & set(documented)):
        if exported[name] != documented[name][0]:
            errors.append(f"{OPERATIONS}: {name} is a {exported[name]}, the "
                          f"table says {documented[name][0]}")
    requests = documented.get("dist_counter_http_requests_total")
    if requests:
        listed = set(re.findall(r"`([a-z_]+)`", requests[1]))
        for label in sorted(route_labels - listed):
            errors.append(f"{OPERATIONS}: the route label {label!r} is "
                          "missing from dist_counter_http_requests_total")
    return len(registered), len(exported)


# ---- routes -------------------------------------------------------------

def router_routes():
    """{(method, pattern)} and the labels of src/api/routes.cc's table;
    a route for any method has the method "any"."""
    text = read("src/api/routes.cc")
    rows = re.findall(r'\{"(/[^"]*)",\s*([\w |]+?),\s*"(\w+)",', text)
    if not rows:
        raise SystemExit("check_docs: no route rows in src/api/routes.cc")
    routes, labels = set(), set()
    for pattern, methods, label in rows:
        labels.add(label)
        for bit in (b.strip() for b in methods.split("|")):
            if bit == "kAnyMethod":
                routes.add(("any", pattern))
            elif bit in METHOD_BITS:
                routes.add((METHOD_BITS[bit], pattern))
            else:
                raise SystemExit(f"check_docs: unknown method {bit} in "
                                 "src/api/routes.cc")
    return routes, labels


def check_routes(routes, errors):
    readme = set()
    for cells in table_rows(section(read("README.md"), "HTTP API")):
        method = cells[0].strip("`")
        route = re.fullmatch(r"`([^`?]+)(\?[^`]*)?`", cells[1])
        if route is None:
            errors.append(f"README.md: route table row {cells!r} has no "
                          "`/route`")
            continue
        readme.add((method, route.group(1)))
    compare("README.md", readme, routes, errors)
    ops = set()
    for cells in table_rows(section(read(OPERATIONS), "HTTP API")):
        found = re.findall(r"\b(GET|POST|DELETE|PUT) (/[^\s`?]*)", cells[0])
        for method, path in found:
            if "(any method)" in cells[0]:
                method = "any"
            ops.add((method, path))
    compare(OPERATIONS, ops, routes, errors)


def compare(doc, documented, routes, errors):
    for method, path in sorted(routes - documented):
        errors.append(f"{doc}: the route table lacks {method} {path} "
                      "(src/api/routes.cc has it)")
    for method, path in sorted(documented - routes):
        errors.append(f"{doc}: the route table has {method} {path}, which "
                      "src/api/routes.cc does not")


# ---- every doc ----------------------------------------------------------

def slug(heading):
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def check_text(errors):
    anchors = {}
    for path in doc_files():
        anchors[path] = {slug(line.lstrip("#")) for _, line in
                         prose_lines(read(path)) if re.match(r"#+ ", line)}
    for path in doc_files():
        lines = list(prose_lines(read(path)))
        for (n, line), (_, blank), (_, after), (_, rule) in zip(
                lines, lines[1:], lines[2:], lines[3:] + [(0, "")]):
            # A new table (a header, then its |---| rule) may follow.
            new_table = re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", rule.strip())
            if line.startswith("|") and not blank.strip() and \
                    after.startswith("|") and not new_table:
                errors.append(f"{path} line {n + 2}: a blank line cuts a "
                              "table")
        for n, line in lines:
            for m in re.finditer(r"\b[\w/.-]+\.(?:cc|h|py|sh|cmake):\d+",
                                 line):
                errors.append(f"{path} line {n}: cites a source line "
                              f"({m.group(0)}); name the function instead")
            for m in re.finditer(r"\]\(([^)\s#]*)#([\w-]+)\)", line):
                target = path if not m.group(1) else os.path.normpath(
                    os.path.join(os.path.dirname(path), m.group(1)))
                if target not in anchors:
                    if not os.path.exists(os.path.join(ROOT, target)):
                        errors.append(f"{path} line {n}: link to a missing "
                                      f"file {m.group(1)}")
                    continue
                if m.group(2) not in anchors[target]:
                    errors.append(f"{path} line {n}: no heading "
                                  f"#{m.group(2)} in {target}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True,
                        help="the dist_counter binary to ask")
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        print(f"check_docs: {args.binary} is not an executable",
              file=sys.stderr)
        return 2
    errors = []
    routes, labels = router_routes()
    check_routes(routes, errors)
    flags = check_flags(os.path.abspath(args.binary), errors)
    registered, exported = check_metrics(os.path.abspath(args.binary),
                                         labels, errors)
    check_text(errors)
    for e in errors:
        print(f"check_docs: {e}", file=sys.stderr)
    if errors:
        print(f"check_docs: FAILED: {len(errors)} differences",
              file=sys.stderr)
        return 1
    print(f"check_docs: OK: {flags} flags, {registered} metrics "
          f"({exported} exported by a fresh node), {len(routes)} routes, "
          f"{len(doc_files())} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
