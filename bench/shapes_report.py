#!/usr/bin/env python3
"""Tables for bench/shapes: one per shape, with rsrs's ratios to each peer measured in the same run
and the load generator's CPU beside the server's. Usage: shapes_report.py OUT "SHAPES" "TARGETS"."""
import json
import os
import sys

out, shapes, targets = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()


def load(name):
    p = os.path.join(out, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None


def text(name):
    p = os.path.join(out, name + ".txt")
    return open(p).read().strip() if os.path.exists(p) else "-"


def f(v, d=2):
    return "-" if v is None else f"{v:.{d}f}"


def cpu(r):
    return f"{f(r.get('server_cpu_secs'), 1)} / {f(r.get('loadgen_cpu_secs'), 1)}"


def ratios(key, rows, better="lower"):
    mine = rows.get("rsrs")
    if not mine or not mine.get(key):
        return ""
    parts = []
    for t, r in rows.items():
        if t != "rsrs" and r and r.get(key):
            parts.append(f"{t} {mine[key] / r[key]:.2f}x")
    return f"rsrs / peer, {key} ({better} is better for rsrs): " + ", ".join(parts) if parts else ""


print(f"machine: {os.cpu_count()} cpus, {os.uname().release}; {os.environ.get('DURATION', '20')} s measured per run")
print("CPU columns: server CPU s / load generator CPU s over the same window.\n")
for shape in shapes:
    if shape in ("streams", "hls", "hls-fmp4"):
        rows = {t: load(f"{shape}-{t}") for t in targets}
        print(f"### {shape}\n")
        extra = " disk MB/stream |" if shape.startswith("hls") else ""
        print(f"| server | streams | stalled | players kept up | cores/stream | KiB/stream | delay p50/p99 ms |{extra} CPU s |")
        print("|---|---|---|---|---|---|---|" + ("---|" if extra else "") + "---|")
        for t, r in rows.items():
            if not r:
                continue
            disk = ""
            if shape.startswith("hls"):
                disk = f" {f(r.get('disk_write_bytes', 0) / 1e6 / max(1, r.get('streams') or 1), 2)} |"
            print(f"| {t} | {r.get('streams')} | {r.get('streams_stalled')} | {r['kept_up']}/{r['players']} | "
                  f"{f(r.get('server_cores_per_stream'), 5)} | {f(r.get('server_rss_kib_per_stream'), 1)} | "
                  f"{f(r['delay_p50_ms'], 0)}/{f(r['delay_p99_ms'], 0)} |{disk} {cpu(r)} |")
        print()
        print(ratios("server_cores_per_stream", rows))
        print(ratios("server_rss_kib_per_stream", rows))
        print()
    elif shape == "edge":
        print("### edge: one origin stream through an edge\n")
        print("| server | players | kept up | edge CPU s/GB | origin-direct CPU s/GB | edge / origin | origin conns | TTFK p50/p99 ms | CPU s |")
        print("|---|---|---|---|---|---|---|---|---|")
        rows = {}
        for t in targets:
            e, o = load(f"edge-{t}"), load(f"edge-origin-{t}")
            rows[t] = e
            if not e:
                continue
            eo = (e.get("server_cpu_secs_per_gb") or 0) / o["server_cpu_secs_per_gb"] if o and o.get("server_cpu_secs_per_gb") else None
            print(f"| {t} | {e['players']} | {e['kept_up']} | {f(e.get('server_cpu_secs_per_gb'), 3)} | "
                  f"{f(o.get('server_cpu_secs_per_gb') if o else None, 3)} | {f(eo, 2)} | {text(f'edge-conns-{t}')} | "
                  f"{f(e['ttfk_p50_ms'], 1)}/{f(e['ttfk_p99_ms'], 1)} | {cpu(e)} |")
        print()
        print(ratios("server_cpu_secs_per_gb", rows))
        print()
    elif shape == "edges":
        rows = {t: load(f"edges-{t}") for t in targets}
        print("### edges: many streams through an edge\n")
        print("| server | streams | stalled | players kept up | edge cores/stream | origin conns | CPU s |")
        print("|---|---|---|---|---|---|---|")
        for t, r in rows.items():
            if r:
                print(f"| {t} | {r.get('streams')} | {r.get('streams_stalled')} | {r['kept_up']}/{r['players']} | "
                      f"{f(r.get('server_cores_per_stream'), 5)} | {text(f'edges-conns-{t}')} | {cpu(r)} |")
        print()
        print(ratios("server_cores_per_stream", rows))
        print()
    elif shape == "churn":
        print("### churn: joiners at 200/s while others watch\n")
        print("| server | watchers kept up | watcher stalls | joiners | joiners failed | joiner TTFK p50/p99 ms | CPU s |")
        print("|---|---|---|---|---|---|---|")
        for t in targets:
            w, j = load(f"churn-watchers-{t}"), load(f"churn-joiners-{t}")
            if w and j:
                print(f"| {t} | {w['kept_up']}/{w['players']} | {w['stalls']} | {j['players']} | {j['failed']} | "
                      f"{f(j['ttfk_p50_ms'], 1)}/{f(j['ttfk_p99_ms'], 1)} | {cpu(w)} |")
        print()
    elif shape == "highrate":
        rows = {t: load(f"highrate-{t}") for t in targets}
        print("### highrate: a 20 Mb/s publisher\n")
        print("| server | players | kept up | CPU s/GB | RSS KiB/player | delay p50/p99 ms | CPU s |")
        print("|---|---|---|---|---|---|---|")
        for t, r in rows.items():
            if r:
                print(f"| {t} | {r['players']} | {r['kept_up']} | {f(r.get('server_cpu_secs_per_gb'), 3)} | "
                      f"{f(r.get('server_rss_kib_per_player'), 1)} | {f(r['delay_p50_ms'], 0)}/{f(r['delay_p99_ms'], 0)} | {cpu(r)} |")
        print()
        print(ratios("server_cpu_secs_per_gb", rows))
        print()
