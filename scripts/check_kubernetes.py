#!/usr/bin/env python3
"""Checks the Kubernetes manifests in deploy/kubernetes/ without a cluster.

kubectl's --dry-run=client still asks an API server for its schema, and no
offline schema validator is packaged in Debian bookworm, so this script does
both jobs it can do alone:

  1. A schema check of the fields we use: every mapping key is checked
     against the Kubernetes API's field names for that place (a typo such as
     `readinesProbe` or a field at the wrong level is an error), with the
     value's type (string, integer, boolean, list, mapping).
  2. The deployment contract: a 3-replica StatefulSet with one
     PersistentVolumeClaim per pod, CHALLENGE_ID from the pod name, readiness
     on /ping, a liveness probe, a preStop hook within a grace period that
     leaves time for the final flush, resource requests, a non-root security
     context, --peers_dns naming the headless Service (which publishes
     not-ready addresses) on its port, a client Service and a
     PodDisruptionBudget whose selectors match the pods, and a
     kustomization.yaml listing every manifest.

Then it breaks the manifests in memory in a few ways and requires each
break to be reported, so the checks are known to fail when they should.
Last it renders the kustomization with `kubectl kustomize` (offline) and
compares the objects. Without kubectl on the PATH that step fails, saying
to install it (Debian: kubernetes-client; scripts/install_deps.sh does),
after the checks above have run and reported; --no-kubectl leaves it out.

Usage: check_kubernetes.py [--dir deploy/kubernetes] [--no-self-test]
                           [--no-kubectl]
Exit status 0 if everything holds, 1 otherwise (each problem printed).
"""

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:  # python3-yaml (scripts/install_deps.sh installs it)
    print("check_kubernetes.py: python3-yaml is not installed", file=sys.stderr)
    sys.exit(1)

# ---- A schema of the fields these manifests use (a subset of the API).
# A dict maps field names to their schema; [x] is a list of x; "str",
# "int", "bool", "intstr" (a port number or name) and "map" (string to
# string) are leaves.
OBJECT_META = {"name": "str", "namespace": "str", "labels": "map",
               "annotations": "map"}
LABEL_SELECTOR = {"matchLabels": "map", "matchExpressions": [
    {"key": "str", "operator": "str", "values": ["str"]}]}
HTTP_GET = {"path": "str", "port": "intstr", "scheme": "str", "host": "str",
            "httpHeaders": [{"name": "str", "value": "str"}]}
EXEC = {"command": ["str"]}
PROBE = {"httpGet": HTTP_GET, "exec": EXEC,
         "tcpSocket": {"port": "intstr", "host": "str"},
         "initialDelaySeconds": "int", "periodSeconds": "int",
         "timeoutSeconds": "int", "failureThreshold": "int",
         "successThreshold": "int", "terminationGracePeriodSeconds": "int"}
HANDLER = {"exec": EXEC, "httpGet": HTTP_GET,
           "tcpSocket": {"port": "intstr", "host": "str"},
           "sleep": {"seconds": "int"}}
ENV_VAR = {"name": "str", "value": "str", "valueFrom": {
    "fieldRef": {"fieldPath": "str", "apiVersion": "str"},
    "secretKeyRef": {"name": "str", "key": "str", "optional": "bool"},
    "configMapKeyRef": {"name": "str", "key": "str", "optional": "bool"},
    "resourceFieldRef": {"resource": "str", "containerName": "str",
                         "divisor": "str"}}}
RESOURCES = {"requests": "map", "limits": "map"}
SECCOMP = {"type": "str", "localhostProfile": "str"}
CONTAINER = {
    "name": "str", "image": "str", "imagePullPolicy": "str",
    "command": ["str"], "args": ["str"], "workingDir": "str",
    "env": [ENV_VAR], "ports": [{"name": "str", "containerPort": "int",
                                 "protocol": "str", "hostPort": "int"}],
    "readinessProbe": PROBE, "livenessProbe": PROBE, "startupProbe": PROBE,
    "lifecycle": {"preStop": HANDLER, "postStart": HANDLER},
    "resources": RESOURCES,
    "securityContext": {
        "allowPrivilegeEscalation": "bool", "readOnlyRootFilesystem": "bool",
        "runAsNonRoot": "bool", "runAsUser": "int", "runAsGroup": "int",
        "privileged": "bool", "seccompProfile": SECCOMP,
        "capabilities": {"add": ["str"], "drop": ["str"]}},
    "volumeMounts": [{"name": "str", "mountPath": "str", "readOnly": "bool",
                      "subPath": "str"}],
}
AFFINITY_TERM = {"topologyKey": "str", "labelSelector": LABEL_SELECTOR,
                 "namespaces": ["str"]}
POD_SPEC = {
    "containers": [CONTAINER], "initContainers": [CONTAINER],
    "terminationGracePeriodSeconds": "int", "serviceAccountName": "str",
    "securityContext": {
        "runAsNonRoot": "bool", "runAsUser": "int", "runAsGroup": "int",
        "fsGroup": "int", "fsGroupChangePolicy": "str",
        "seccompProfile": SECCOMP},
    "affinity": {"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": "int", "podAffinityTerm": AFFINITY_TERM}],
        "requiredDuringSchedulingIgnoredDuringExecution": [AFFINITY_TERM]}},
    "volumes": [{"name": "str", "secret": {"secretName": "str"},
                 "configMap": {"name": "str"}, "emptyDir": {}}],
    "nodeSelector": "map",
    "tolerations": [{"key": "str", "operator": "str", "value": "str",
                     "effect": "str"}],
}
PVC = {"metadata": OBJECT_META, "spec": {
    "accessModes": ["str"], "storageClassName": "str",
    "resources": {"requests": "map"}}}
SCHEMAS = {
    ("v1", "Service"): {
        "apiVersion": "str", "kind": "str", "metadata": OBJECT_META,
        "spec": {"type": "str", "clusterIP": "str",
                 "publishNotReadyAddresses": "bool", "selector": "map",
                 "sessionAffinity": "str",
                 "ports": [{"name": "str", "port": "int",
                            "targetPort": "intstr", "protocol": "str",
                            "nodePort": "int"}]}},
    ("apps/v1", "StatefulSet"): {
        "apiVersion": "str", "kind": "str", "metadata": OBJECT_META,
        "spec": {"serviceName": "str", "replicas": "int",
                 "podManagementPolicy": "str", "minReadySeconds": "int",
                 "updateStrategy": {"type": "str", "rollingUpdate": {
                     "partition": "int", "maxUnavailable": "intstr"}},
                 "selector": LABEL_SELECTOR,
                 "template": {"metadata": OBJECT_META, "spec": POD_SPEC},
                 "volumeClaimTemplates": [PVC]}},
    ("policy/v1", "PodDisruptionBudget"): {
        "apiVersion": "str", "kind": "str", "metadata": OBJECT_META,
        "spec": {"maxUnavailable": "intstr", "minAvailable": "intstr",
                 "selector": LABEL_SELECTOR}},
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_schema(value, schema, where, problems):
    """Appends to `problems` every field of `value` that `schema` lacks."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a mapping")
            return
        for key, item in value.items():
            if key not in schema:
                problems.append(f"{where}.{key}: no such field here")
            else:
                check_schema(item, schema[key], f"{where}.{key}", problems)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list")
            return
        for i, item in enumerate(value):
            check_schema(item, schema[0], f"{where}[{i}]", problems)
    elif schema == "str":
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string, got {value!r}")
    elif schema == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{where}: expected an integer, got {value!r}")
    elif schema == "bool":
        if not isinstance(value, bool):
            problems.append(f"{where}: expected true/false, got {value!r}")
    elif schema == "intstr":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            problems.append(f"{where}: expected a number or a name")
    elif schema == "map":
        if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str)
                for k, v in value.items()):
            problems.append(f"{where}: expected string keys and values "
                            "(quote numbers)")


def load(directory):
    """Returns ({file: [objects]}, kustomization or None)."""
    manifests, kustomization = {}, None
    for name in sorted(os.listdir(directory)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if name == "kustomization.yaml":
            kustomization = docs[0] if docs else {}
        else:
            manifests[name] = docs
    return manifests, kustomization


def find(objects, kind, predicate=lambda o: True):
    return [o for o in objects if o.get("kind") == kind and predicate(o)]


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v
                                  for k, v in selector.items())


def check_contract(objects, problems):
    """Appends to `problems` every broken deployment rule."""
    sets = find(objects, "StatefulSet")
    if len(sets) != 1:
        problems.append(f"want one StatefulSet, found {len(sets)}")
        return
    sts = sets[0]
    spec = sts.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    pod_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    containers = pod.get("containers", [])
    if spec.get("replicas") != 3:
        problems.append("StatefulSet: want replicas: 3")
    if not matches(spec.get("selector", {}).get("matchLabels"), pod_labels):
        problems.append("StatefulSet: selector does not match the pod labels")
    if len(containers) != 1:
        problems.append("StatefulSet: want one container")
        return
    c = containers[0]
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}

    claims = spec.get("volumeClaimTemplates", [])
    mounts = {m.get("name"): m.get("mountPath")
              for m in c.get("volumeMounts", [])}
    if not claims or mounts.get(claims[0].get("metadata", {}).get("name")) \
            != "/data":
        problems.append("StatefulSet: want a volumeClaimTemplate mounted at "
                        "/data (the image's --data_dir)")
    elif not claims[0].get("spec", {}).get("resources", {}).get(
            "requests", {}).get("storage"):
        problems.append("StatefulSet: the claim needs a storage request")

    env = {e.get("name"): e for e in c.get("env", [])}
    field = env.get("CHALLENGE_ID", {}).get("valueFrom", {}).get(
        "fieldRef", {}).get("fieldPath")
    if field != "metadata.name":
        problems.append("container: CHALLENGE_ID must come from the pod "
                        "name (fieldRef metadata.name)")

    def probe_port_ok(probe):
        port = probe.get("httpGet", {}).get("port")
        return port in ports or port in ports.values()

    ready = c.get("readinessProbe", {})
    if ready.get("httpGet", {}).get("path") != "/ping" or \
            not probe_port_ok(ready):
        problems.append("container: want a readinessProbe GET /ping on the "
                        "container port")
    live = c.get("livenessProbe")
    if not live or ("httpGet" in live and not probe_port_ok(live)):
        problems.append("container: want a livenessProbe on the container "
                        "port")
    pre_stop = c.get("lifecycle", {}).get("preStop", {})
    sleep = 0
    command = pre_stop.get("exec", {}).get("command", [])
    if len(command) == 2 and command[0] == "sleep" and command[1].isdigit():
        sleep = int(command[1])
    elif "sleep" in pre_stop:
        sleep = pre_stop["sleep"].get("seconds", 0)
    if sleep <= 0:
        problems.append("container: want a preStop sleep (peers and the "
                        "Service let go of the pod while it still serves)")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    # Drain (a peer timeout), the final flush and its retries
    # (--close_retry_ms, 10 s by default), with a margin.
    if grace < sleep + 15:
        problems.append(f"pod: terminationGracePeriodSeconds {grace} leaves "
                        f"less than 15 s after the {sleep} s preStop for the "
                        "drain and the final flush")
    requests = c.get("resources", {}).get("requests", {})
    if "cpu" not in requests or "memory" not in requests:
        problems.append("container: want cpu and memory requests")
    pod_security = pod.get("securityContext", {})
    security = c.get("securityContext", {})
    if not (pod_security.get("runAsNonRoot") or security.get("runAsNonRoot")):
        problems.append("pod: want runAsNonRoot: true")
    if pod_security.get("runAsUser", security.get("runAsUser", 0)) == 0:
        problems.append("pod: want a non-zero runAsUser (the image's 10001)")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append("container: want allowPrivilegeEscalation: false")

    headless = find(objects, "Service",
                    lambda o: o.get("spec", {}).get("clusterIP") == "None")
    clients = find(objects, "Service",
                   lambda o: o.get("spec", {}).get("clusterIP") != "None")
    if len(headless) != 1 or len(clients) != 1:
        problems.append("want one headless Service (peers) and one client "
                        "Service")
        return
    peers = headless[0]
    peers_name = peers["metadata"]["name"]
    if spec.get("serviceName") != peers_name:
        problems.append("StatefulSet: serviceName must be the headless "
                        "Service")
    if peers["spec"].get("publishNotReadyAddresses") is not True:
        problems.append("headless Service: want publishNotReadyAddresses: "
                        "true (membership is not readiness)")
    for service in (peers, clients[0]):
        name = service["metadata"]["name"]
        if not matches(service["spec"].get("selector"), pod_labels):
            problems.append(f"Service {name}: selector does not match the "
                            "pods")
        for p in service["spec"].get("ports", []):
            target = p.get("targetPort", p.get("port"))
            if target not in ports and target not in ports.values():
                problems.append(f"Service {name}: targetPort {target} is no "
                                "container port")
    peer_ports = [p.get("port") for p in peers["spec"].get("ports", [])]
    args = c.get("args", []) + c.get("command", [])
    dns = [a.split("=", 1)[1] for a in args if a.startswith("--peers_dns=")]
    want = [f"{peers_name}:{p}" for p in peer_ports]
    if not dns or not any(
            d in want or d.startswith(f"{peers_name}.") and
            d.rsplit(":", 1)[-1] in map(str, peer_ports) for d in dns):
        problems.append(f"container: want --peers_dns={peers_name}:PORT "
                        f"(one of {want}), got {dns}")
    if any(a.startswith("--actors") for a in args) or "ACTORS" in env:
        problems.append("container: --actors/ACTORS cannot go with "
                        "--peers_dns")

    budgets = find(objects, "PodDisruptionBudget")
    if len(budgets) != 1 or not matches(
            budgets[0].get("spec", {}).get("selector", {}).get("matchLabels"),
            pod_labels):
        problems.append("want one PodDisruptionBudget selecting the pods")


def check(manifests, kustomization):
    """Returns the list of problems of a set of manifests."""
    problems = []
    objects = []
    for name, docs in manifests.items():
        for doc in docs:
            key = (doc.get("apiVersion"), doc.get("kind"))
            where = f"{name}:{doc.get('kind')}"
            if key not in SCHEMAS:
                problems.append(f"{where}: unexpected apiVersion/kind {key}")
                continue
            check_schema(doc, SCHEMAS[key], where, problems)
            meta_name = doc.get("metadata", {}).get("name", "")
            if not DNS_LABEL.match(str(meta_name)) or len(meta_name) > 63:
                problems.append(f"{where}: metadata.name {meta_name!r} is "
                                "not a DNS label")
            objects.append(doc)
    check_contract(objects, problems)
    if kustomization is None:
        problems.append("kustomization.yaml is missing")
    elif sorted(kustomization.get("resources", [])) != sorted(manifests):
        problems.append("kustomization.yaml: resources "
                        f"{kustomization.get('resources')} are not the "
                        f"manifests {sorted(manifests)}")
    return problems


def statefulset(manifests):
    for docs in manifests.values():
        for doc in docs:
            if doc.get("kind") == "StatefulSet":
                return doc
    raise AssertionError("no StatefulSet")


def container(manifests):
    return statefulset(manifests)["spec"]["template"]["spec"]["containers"][0]


def service(manifests, headless):
    for docs in manifests.values():
        for doc in docs:
            if doc.get("kind") == "Service" and \
                    (doc["spec"].get("clusterIP") == "None") == headless:
                return doc
    raise AssertionError("no such Service")


# Ways to break the manifests that the checks must report.
BREAKS = {
    "a typo in a field name": lambda m: container(m).update(
        readinesProbe=container(m).pop("readinessProbe")),
    "a string where a number goes": lambda m: statefulset(m)["spec"].update(
        replicas="3"),
    "readiness on another path": lambda m: container(m)["readinessProbe"]
    ["httpGet"].update(path="/metrics"),
    "no liveness probe": lambda m: container(m).pop("livenessProbe"),
    "CHALLENGE_ID not from the pod name": lambda m: container(m).update(
        env=[{"name": "CHALLENGE_ID", "value": "1"}]),
    "--peers_dns naming the client Service": lambda m: container(m).update(
        args=["--peers_dns=" + service(m, False)["metadata"]["name"] +
              ":7777"]),
    "only ready pods published": lambda m: service(m, True)["spec"].pop(
        "publishNotReadyAddresses"),
    "a grace period too short for the flush": lambda m: statefulset(m)
    ["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=6),
    "running as root": lambda m: statefulset(m)["spec"]["template"]["spec"]
    ["securityContext"].update(runAsNonRoot=False, runAsUser=0),
    "no volume claim": lambda m: statefulset(m)["spec"].pop(
        "volumeClaimTemplates"),
    "no resource requests": lambda m: container(m).pop("resources"),
    "a selector that misses the pods": lambda m: service(m, False)["spec"]
    .update(selector={"app": "other"}),
}


def self_test(manifests, kustomization):
    """Returns the breaks that went unnoticed."""
    missed = []
    for what, apply in BREAKS.items():
        broken = copy.deepcopy(manifests)
        apply(broken)
        if not check(broken, kustomization):
            missed.append(what)
    broken = dict(manifests)
    broken.pop(sorted(broken)[0])
    if not check(broken, kustomization):
        missed.append("a manifest left out of the kustomization")
    return missed


def check_with_kubectl(directory, manifests):
    """Renders the kustomization with kubectl (offline); returns problems."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return ["kubectl not found, so `kubectl kustomize` was not run: "
                "install it (apt-get install kubernetes-client; "
                "scripts/install_deps.sh does) or pass --no-kubectl"]
    try:
        out = subprocess.run([kubectl, "kustomize", directory], check=True,
                             capture_output=True, text=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as e:
        detail = getattr(e, "stderr", "") or e
        return [f"kubectl kustomize failed: {detail}"]
    rendered = sorted((d["kind"], d["metadata"]["name"])
                      for d in yaml.safe_load_all(out.stdout) if d)
    ours = sorted((d["kind"], d["metadata"]["name"])
                  for docs in manifests.values() for d in docs)
    if rendered != ours:
        return [f"kubectl kustomize renders {rendered}, want {ours}"]
    print(f"check_kubernetes.py: kubectl kustomize rendered {len(ours)} "
          "objects")
    return []


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=os.path.join(
        here, "..", "deploy", "kubernetes"))
    parser.add_argument("--no-self-test", action="store_true")
    parser.add_argument("--no-kubectl", action="store_true")
    args = parser.parse_args()

    manifests, kustomization = load(args.dir)
    problems = check(manifests, kustomization)
    if not args.no_self_test and not problems:
        problems += [f"self-test: {what} was not reported"
                     for what in self_test(manifests, kustomization)]
    if not problems:
        print(f"check_kubernetes.py: {sum(map(len, manifests.values()))} "
              f"objects in {len(manifests)} files OK; {len(BREAKS) + 1} "
              "breaks reported")
    if not args.no_kubectl:
        problems += check_with_kubectl(args.dir, manifests)
    for problem in problems:
        print(f"check_kubernetes.py: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
