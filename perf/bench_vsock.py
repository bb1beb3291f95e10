"""perf/bench_vsock.py - the guest channels of issue 13, end to end: one Linux guest (the project's vmlinux, read-only
root, 1 vCPU, 256 MiB) with a NIC on a tap in its own network namespace, a vsock device and the MMDS on that NIC.
Its init runs the same echo program (vsock-helper, a process per connection, 64 KiB reads) on vsock and on TCP.
From the host:
  - throughput: 64 KiB writes through each echo service, read back at the same time (the bytes go both ways),
    vsock (Firecracker's CONNECT on uds_path) beside TCP over virtio-net, in alternating rounds; bytes/s each way;
  - round trip: 64-byte messages, one at a time on one connection, vsock beside TCP;
  - MMDS: the guest fetches /latest/meta-data/ami-id N times (vsock-helper http-bench: a connection per request,
    as wget does), triggered through the control drive: requests/s and per-request latency, from the guest.
Needs root (a network namespace and a tap). QUICK: fewer bytes, round trips and requests."""
import ctypes
import os
import re
import select
import socket
import subprocess
import threading
import time

from bench_common import EMBER, QUICK, ROOTFS, VMLINUX, WORK, fail, kill_proc, record, stats
from bench_snapshot import api_ok, start, unlink, wait_socket

NS = "ember-bench-vsock"
GUEST_IP, HOST_IP, TCP_PORT, VSOCK_PORT = "172.31.248.2", "172.31.248.1", 7777, 5000
CLONE_NEWNET = 0x40000000
CHUNK = 64 * 1024
MMDS_RE = re.compile(rb"EMBER-CHECK: mmds-bench (\d+) requests, (\d+) ok, (\d+) req/s, latency us median (\d+) "
                     rb"p90 (\d+) min (\d+)")


def ip(*args):
    subprocess.run(["ip"] + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class InNetns:
    """The calling thread in namespace NS for the with-block (sockets made inside stay there)."""

    def __enter__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.back = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{NS}", os.O_RDONLY)
        try:
            if self.libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into " + NS)
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        self.libc.setns(self.back, CLONE_NEWNET)
        os.close(self.back)


def connect_vsock(uds):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(uds)
    s.sendall(b"CONNECT %d\n" % VSOCK_PORT)
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            raise OSError("vsock: closed before OK (%r)" % line)
        line += c
    if not line.startswith(b"OK "):
        raise OSError("vsock: %r" % line)
    return s


def connect_tcp():
    with InNetns():
        s = socket.create_connection((GUEST_IP, TCP_PORT), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def echo_stream(s, total):
    """Sends total bytes in 64 KiB writes while reading the echo; seconds until the last byte came back."""
    data = os.urandom(CHUNK)
    err = []

    def sender():
        try:
            for _ in range(total // CHUNK):
                s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)
    t0 = time.monotonic()
    t = threading.Thread(target=sender)
    t.start()
    got = 0
    while got < total:
        c = s.recv(1 << 20)
        if not c:
            break
        got += len(c)
    dt = time.monotonic() - t0
    t.join()
    s.close()
    if err or got != total:
        raise OSError(f"echo stream: {got} of {total} bytes back ({err[:1]})")
    return dt


def round_trips(s, n):
    """n round trips of a 64-byte message on one connection; their times in microseconds (after 10 unmeasured)."""
    msg, out = os.urandom(64), []
    for i in range(n + 10):
        t = time.monotonic()
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            c = s.recv(4096)
            if not c:
                raise OSError("round trip: the echo closed")
            got += c
        if i >= 10:
            out.append((time.monotonic() - t) * 1e6)
    s.close()
    return out


def boot(d):
    control = os.path.join(d, "control.img")
    with open(control, "wb") as f:
        f.write(b"hold\n".ljust(1 << 20, b"\0"))
    sock, uds = os.path.join(d, "api.sock"), os.path.join(d, "v.sock")
    unlink(sock, uds)
    p = start(["ip", "netns", "exec", NS, EMBER, "--api-sock", sock], os.path.join(d, "ember.err"),
              stdout=open(os.path.join(d, "console"), "wb"))
    if not wait_socket(sock, p):
        raise RuntimeError(f"ember --api-sock did not listen (see {d}/ember.err)")
    args = (f"console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 i8042.noaux i8042.nomux "
            f"ip={GUEST_IP}::{HOST_IP}:255.255.255.252::eth0:off ember.tcp-echo={TCP_PORT} "
            f"ember.vsock-echo={VSOCK_PORT} ember.tick=5000 ember.hold=/dev/vdb")
    api_ok(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256})
    api_ok(sock, "PUT", "/boot-source", {"kernel_image_path": VMLINUX, "boot_args": args})
    api_ok(sock, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": ROOTFS, "is_root_device": True,
                                           "is_read_only": True})
    api_ok(sock, "PUT", "/drives/control", {"drive_id": "control", "path_on_host": control,
                                            "is_root_device": False, "is_read_only": True})
    api_ok(sock, "PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                                     "guest_mac": "06:00:ac:1f:f8:02"})
    api_ok(sock, "PUT", "/vsock", {"guest_cid": 3, "uds_path": uds})
    api_ok(sock, "PUT", "/mmds/config", {"network_interfaces": ["eth0"]})
    api_ok(sock, "PUT", "/mmds", {"latest": {"meta-data": {"ami-id": "ami-12345678"}}})
    api_ok(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    return p, control, uds


def wait_services(p, uds, d):
    end = time.monotonic() + 900
    while time.monotonic() < end and p.poll() is None:
        try:
            connect_vsock(uds).close()
            connect_tcp().close()
            return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"the guest's echo services never answered (see {d}/console)")


def mmds_bench(control, console, n):
    with open(control, "r+b") as f:
        f.write(f"check mmds-bench:169.254.169.254:latest/meta-data/ami-id:{n}\n".encode())
    end = time.monotonic() + 600
    while time.monotonic() < end:
        m = MMDS_RE.search(open(console, "rb").read())
        if m:
            return [int(x) for x in m.groups()]
        time.sleep(1)
    raise RuntimeError("no mmds-bench line from the guest within 600 s")


def b_vsock_mmds():
    if os.geteuid() != 0:
        fail("vsock_mmds", "needs root (a network namespace and a tap)")
        return
    d = os.path.join(WORK, "vsock")
    os.makedirs(d, exist_ok=True)
    subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
    p = None
    total, rounds, trips, requests = (4 << 20, 3, 100, 100) if QUICK else (16 << 20, 5, 500, 500)
    try:
        ip("netns", "add", NS)
        ip("-n", NS, "link", "set", "lo", "up")
        ip("-n", NS, "tuntap", "add", "dev", "tap0", "mode", "tap", "vnet_hdr")
        ip("-n", NS, "addr", "add", f"{HOST_IP}/30", "dev", "tap0")
        ip("-n", NS, "link", "set", "tap0", "up")
        p, control, uds = boot(d)
        wait_services(p, uds, d)
        echo_stream(connect_vsock(uds), 1 << 20)  # warm-up: the emulator translates code it runs the first time
        echo_stream(connect_tcp(), 1 << 20)
        thr = {"vsock": [], "tcp": []}
        for _ in range(rounds):
            thr["vsock"].append(total / echo_stream(connect_vsock(uds), total) / (1 << 20))
            thr["tcp"].append(total / echo_stream(connect_tcp(), total) / (1 << 20))
        rtt = {"vsock": round_trips(connect_vsock(uds), trips), "tcp": round_trips(connect_tcp(), trips)}
        n, ok, rate, med, p90, mn = mmds_bench(control, os.path.join(d, "console"), requests)
        tv, tt = stats(thr["vsock"]), stats(thr["tcp"])
        lv, lt = stats(rtt["vsock"]), stats(rtt["tcp"])
        record("vsock_mmds", vsock_echo_mib_per_s=tv, tcp_echo_mib_per_s=tt,
               throughput_ratio_vsock_to_tcp=tv["median"] / tt["median"],
               vsock_round_trip_us=lv, tcp_round_trip_us=lt,
               round_trip_ratio_vsock_to_tcp=lv["median"] / lt["median"],
               mmds={"requests": n, "ok": ok, "requests_per_s": rate, "latency_us_median": med,
                     "latency_us_p90": p90, "latency_us_min": mn},
               note=f"one Linux guest (1 vCPU, 256 MiB); echo streams of {total >> 20} MiB in 64 KiB writes, the "
                    f"echo read at the same time (MiB/s each way), {rounds} alternating rounds after a warm-up; "
                    f"{trips} round trips of 64 bytes on one connection each; MMDS: {requests} sequential GETs from "
                    "the guest (a connection each, vsock-helper http-bench), timed in the guest")
    except Exception as e:  # noqa
        fail("vsock_mmds", repr(e))
    finally:
        if p:
            kill_proc(p)
        subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
