#!/usr/bin/env python3
"""Checks the Kubernetes manifests under deploy/k8s (or --dir):

- every document validates strictly (unknown fields rejected) against the Kubernetes JSON
  schemas of every version from 1.25 to the newest that kubernetes-validate ships; an unknown
  apiVersion or kind is a failure, not a warning;
- every kustomization.yaml lists exactly the manifests of its directory, and they exist;
- every srs.conf embedded in a ConfigMap passes `rsrs -t`;
- custom resources Kubernetes has no schema for (the Prometheus Operator's ServiceMonitor) are
  checked strictly against the fields of their API that rsrs's manifests may use (CUSTOM below);
  any other apiVersion/kind is a failure;
- prometheus-adapter rules (a ConfigMap's `config.yaml` with `rules`) are well formed.

Usage: check.py --rsrs PATH/TO/rsrs [--dir DIR] [--extract OUT]. Exit status 1 on any failure.
Needs: pip install kubernetes-validate (which brings PyYAML).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml


def strict(props, required=()):
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}


STR = {"type": "string"}
STRS = {"type": "array", "items": STR}
STRMAP = {"type": "object", "additionalProperties": STR}
DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
RELABEL = strict({
    "sourceLabels": STRS, "separator": STR, "targetLabel": STR, "regex": STR, "modulus": {"type": "integer"},
    "replacement": STR,
    "action": {"enum": ["replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep",
                        "lowercase", "uppercase", "keepequal", "dropequal"]},
})
LABEL_SELECTOR = strict({
    "matchLabels": STRMAP,
    "matchExpressions": {"type": "array", "items": strict({
        "key": STR, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]}, "values": STRS},
        required=["key", "operator"])},
})
METADATA = strict({"name": STR, "namespace": STR, "labels": STRMAP, "annotations": STRMAP}, required=["name"])

# Schemas of custom resources, written from their API reference (the fields rsrs's manifests may
# use; an unknown field fails, as server-side strict field validation would).
CUSTOM = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): strict({
        "apiVersion": STR, "kind": STR, "metadata": METADATA,
        "spec": strict({
            "jobLabel": STR, "targetLabels": STRS, "podTargetLabels": STRS, "sampleLimit": {"type": "integer"},
            "selector": LABEL_SELECTOR,
            "namespaceSelector": strict({"any": {"type": "boolean"}, "matchNames": STRS}),
            "endpoints": {"type": "array", "minItems": 1, "items": strict({
                "port": STR, "targetPort": {"type": ["integer", "string"]}, "path": STR,
                "scheme": {"enum": ["http", "https"]}, "interval": DURATION, "scrapeTimeout": DURATION,
                "honorLabels": {"type": "boolean"}, "honorTimestamps": {"type": "boolean"},
                "params": {"type": "object", "additionalProperties": STRS},
                "relabelings": {"type": "array", "items": RELABEL},
                "metricRelabelings": {"type": "array", "items": RELABEL},
            })},
        }, required=["selector", "endpoints"]),
    }, required=["apiVersion", "kind", "metadata", "spec"]),
}

ADAPTER_RULE = strict({
    "seriesQuery": STR,
    "seriesFilters": {"type": "array", "items": strict({"is": STR, "isNot": STR})},
    "resources": strict({"overrides": {"type": "object", "additionalProperties": strict({"resource": STR, "group": STR})},
                         "template": STR}),
    "name": strict({"matches": STR, "as": STR}),
    "metricsQuery": STR,
}, required=["seriesQuery", "metricsQuery"])
ADAPTER_CONFIG = strict({"rules": {"type": "array", "minItems": 1, "items": ADAPTER_RULE},
                         "externalRules": {"type": "array", "items": ADAPTER_RULE},
                         "resourceRules": {"type": "object"}}, required=["rules"])


def versions():
    base = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
    found = set()
    for name in os.listdir(base):
        m = re.match(r"^v(\d+)\.(\d+)\.0-local-strict$", name)
        if m and (int(m.group(1)), int(m.group(2))) >= (1, 25):
            found.add((int(m.group(1)), int(m.group(2))))
    return ["%d.%d.0" % v for v in sorted(found)]


def check_document(doc, what, rsrs, vs, failures, extract_dir=None):
    """Validates one manifest document strictly for every Kubernetes version in vs and runs
    `rsrs -t` on an embedded srs.conf (written to EXTRACT_DIR/<configmap>/srs.conf when given).
    Appends what fails to failures; returns the number of srs.conf checked."""
    custom = CUSTOM.get((doc.get("apiVersion"), doc.get("kind")))
    if custom is not None:
        try:
            jsonschema.validate(doc, custom)
        except jsonschema.ValidationError as e:
            failures.append("%s: %s at %s" % (what, e.message, "/".join(str(p) for p in e.absolute_path)))
        return 0
    adapter = (doc.get("data") or {}).get("config.yaml") if doc.get("kind") == "ConfigMap" else None
    if adapter is not None:
        try:
            jsonschema.validate(yaml.safe_load(adapter), ADAPTER_CONFIG)
        except (yaml.YAMLError, jsonschema.ValidationError) as e:
            failures.append("%s: prometheus-adapter config.yaml: %s" % (what, str(e).splitlines()[0]))
    for v in vs:
        try:
            kubernetes_validate.validate(doc, v, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            failures.append("%s: Kubernetes %s has no %s %s (removed or unknown apiVersion/kind)"
                            % (what, v, doc.get("apiVersion"), doc.get("kind")))
            break
        except Exception as e:  # ValidationError and the like
            first = (str(e).splitlines() or [type(e).__name__])[0]
            failures.append("%s: Kubernetes %s: %s" % (what, v, first))
            break
    conf = (doc.get("data") or {}).get("srs.conf") if doc.get("kind") == "ConfigMap" else None
    if conf is None:
        return 0
    if extract_dir:
        # The very config the manifest ships, for compose topologies to mount.
        out_dir = os.path.join(extract_dir, doc["metadata"]["name"])
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "srs.conf"), "w") as fh:
            fh.write(conf)
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as tmp:
        tmp.write(conf)
    r = subprocess.run([rsrs, "-t", "-c", tmp.name], capture_output=True, text=True)
    os.unlink(tmp.name)
    if r.returncode != 0:
        failures.append("%s: srs.conf fails rsrs -t: %s" % (what, r.stderr.strip()))
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rsrs", required=True)
    ap.add_argument("--dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--extract", help="also write each ConfigMap's srs.conf to EXTRACT/<scenario>/<configmap>/srs.conf")
    args = ap.parse_args()
    vs = versions()
    if not vs:
        print("no Kubernetes schemas found in kubernetes-validate", file=sys.stderr)
        return 1
    failures = []
    n_files = n_docs = n_confs = 0
    for root, _, files in sorted(os.walk(args.dir)):
        manifests = sorted(f for f in files if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml")
        if "kustomization.yaml" in files:
            with open(os.path.join(root, "kustomization.yaml")) as fh:
                k = yaml.safe_load(fh) or {}
            listed = sorted(k.get("resources", []))
            if listed != manifests:
                failures.append("%s/kustomization.yaml lists %s but the directory has %s" % (root, listed, manifests))
        elif manifests:
            failures.append("%s has manifests but no kustomization.yaml" % root)
        for f in manifests:
            path = os.path.join(root, f)
            n_files += 1
            with open(path) as fh:
                try:
                    docs = [d for d in yaml.safe_load_all(fh) if d]
                except yaml.YAMLError as e:
                    failures.append("%s: not valid YAML: %s" % (path, e))
                    continue
            for doc in docs:
                n_docs += 1
                scenario = os.path.relpath(root, args.dir)
                n_confs += check_document(doc, "%s %s/%s" % (path, doc.get("kind"), (doc.get("metadata") or {}).get("name")),
                                          args.rsrs, vs, failures, os.path.join(args.extract, scenario) if args.extract else None)
            print("ok %s" % os.path.relpath(path, args.dir) if not any(x.startswith(path) for x in failures) else "FAILED %s" % path)
    for f in failures:
        print("FAILED: " + f)
    print("checked %d manifests (%d documents) against Kubernetes %s..%s strictly; %d srs.conf checked with rsrs -t; %d failures"
          % (n_files, n_docs, vs[0], vs[-1], n_confs, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
