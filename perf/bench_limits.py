"""Issue #14's device-model benchmarks (build/virtio-bench --limits / --balloon, no KVM needed):
the rate limiter's overhead when it never throttles, how closely a limited drive tracks its configured
rate, and the balloon's inflate rate with the RSS it gave back. Ratios are reported, never asserted."""
import json
import os
import re
import subprocess

from bench_common import BIN, QUICK, fail, record


def virtio_bench(name, *args):
    p = subprocess.run([os.path.join(BIN, "virtio-bench"), "--json", *args], capture_output=True, text=True,
                       timeout=300)
    rows = []
    for line in p.stdout.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    if p.returncode or not rows:
        fail(name, f"rc={p.returncode} {p.stderr[-300:]}")
        return None
    return rows


def b_limits():
    secs = "0.5" if QUICK else "1.5"
    rows = virtio_bench("rate_limiter", "--limits", "--secs", secs, "--size-mib", "64" if QUICK else "256")
    if not rows:
        return
    overhead, overhead_cpu = {}, {}
    for dev in ("blk", "net"):
        sel = [r for r in rows if r["figure"].startswith(dev)]
        rate = lambda path: [r["ops_per_sec"] for r in sel if r["path"] == path]
        cpu = lambda path: [r["cpu_seconds"] / r["ops"] for r in sel if r["path"] == path and r["ops"]]
        off, on = rate("limiter off"), rate("limiter never dry")
        if on and off:
            # Best of the alternated runs on each side: host load only ever slows a run down. The CPU time
            # per request is disturbed less by other load than wall time.
            overhead[dev] = max(on) / max(off)
            overhead_cpu[dev] = min(cpu("limiter off")) / min(cpu("limiter never dry"))
    tracking = {}
    for r in rows:
        m = re.match(r"limit (\d+) (MiB/s|ops/s)$", r["path"])
        if m:
            achieved = r["mib_per_sec"] if m.group(2) == "MiB/s" else r["ops_per_sec"]
            configured = int(m.group(1))
            tracking[f'{r["figure"].split()[0]} {r["path"]}'] = {"configured": configured, "achieved": achieved,
                                                                  "ratio": achieved / configured}
    record("rate_limiter", rows=rows, overhead_ratio=overhead, overhead_cpu_ratio=overhead_cpu,
           goal_overhead_ratio=0.97, tracking=tracking, secs_per_figure=float(secs),
           errors=sum(r.get("errors", 0) for r in rows))


def b_balloon():
    rows = virtio_bench("balloon_inflate", "--balloon", "--secs", "0.5" if QUICK else "3")
    if not rows:
        return
    inflate = next((r for r in rows if r["figure"] == "balloon inflate"), {})
    rss = next((r for r in rows if r["figure"] == "balloon rss"), {})
    record("balloon_inflate", mib_per_sec=inflate.get("mib_per_sec"), seconds=inflate.get("seconds"),
           cpu_seconds=inflate.get("cpu_seconds"), errors=inflate.get("errors"), **{k: v for k, v in rss.items()
                                                                                    if k != "figure"})
