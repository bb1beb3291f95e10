"""perf/bench_report_vsock.py - the "vsock and MMDS" section of docs/benchmarks.md (issue 13), from the
vsock_mmds record (perf/bench_vsock.py). The vsock device model's ratios to a Unix socketpair are rows of the
virtio figures in the main table (perf/bench_host.py's b_virtio)."""
from bench_report import emulated, f, s3, where


def section(b):
    """Its lines, or [] when the run has none of its figures."""
    vm = b.get("vsock_mmds")
    if not vm:
        return []
    L = ["## vsock and MMDS\n", "| figure | measured | where | target | |", "|---|---|---|---|---|"]
    if vm:
        w = where(vm)
        L.append(f"| vsock echo, 64 KiB writes (MiB/s each way) | {s3(vm['vsock_echo_mib_per_s'])} | {w} | | |")
        L.append(f"| … TCP over virtio-net, same guest (MiB/s each way) | {s3(vm['tcp_echo_mib_per_s'])} | {w} | | |")
        L.append(f"| … vsock / TCP (median) | {f(vm['throughput_ratio_vsock_to_tcp'])} | {where(vm, False)} | "
                 "(compare) | |")
        L.append(f"| vsock round trip, 64 bytes (µs) | {s3(vm['vsock_round_trip_us'], 0)} | {w} | | |")
        L.append(f"| … TCP over virtio-net (µs) | {s3(vm['tcp_round_trip_us'], 0)} | {w} | | |")
        L.append(f"| … vsock / TCP (median) | {f(vm['round_trip_ratio_vsock_to_tcp'])} | {where(vm, False)} | "
                 "(compare) | |")
        m = vm["mmds"]
        L.append(f"| MMDS GETs from the guest, a connection each (requests/s; latency µs median / p90) | "
                 f"{m['requests_per_s']}; {m['latency_us_median']} / {m['latency_us_p90']} "
                 f"({m['ok']}/{m['requests']} ok) | {w} | (info) | |")
    L.append("")
    if vm and vm.get("note"):
        L.append(f"How: {vm['note']}" + (" (emulator times: compare the ratios)." if emulated(vm) else "."))
    L.append("The vsock device model alone (`build/virtio-bench --vsock`, beside a Unix socketpair) is among the virtio "
             "figures of a full run; `docs/vsock.md` says how it is measured, and with `docs/mmds.md` how to rerun both.\n")
    return L
