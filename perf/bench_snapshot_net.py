"""perf/bench_snapshot_net.py - restore to the guest's first network reply (issue 12): a Linux guest (the project's
vmlinux, read-only root, 1 vCPU, 128 MiB, one NIC on a tap) starts its TCP echo service (deploy/guest/init.sh's
ember.echo=) and is snapshotted once; each restore is a fresh `ember --api-sock` in the same network namespace
getting PUT /snapshot/load (File, resume_vm), timed from sending it to the answer and to the first echo of a line
sent over TCP to the guest. The benchmark process joins the namespace (setns) for its TCP client, so no process is
started while the clock runs. Needs root (a network namespace and a tap); full mode only (a Linux boot)."""
import ctypes
import os
import select
import socket
import subprocess
import time

from bench_common import EMBER, ROOTFS, VMLINUX, WORK, fail, kill_proc, record, stats
from bench_snapshot import Console, api_ok, http_parse, http_request, start, unlink, wait_socket

NS = "ember-bench-snapnet"
GUEST_IP, HOST_IP, PORT = "172.31.249.2", "172.31.249.1", 7777
CLONE_NEWNET = 0x40000000


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


def echo_once(line, connect_timeout):
    """Sends line to the guest's echo service; True once it comes back. A SYN that found no guest yet is not
    waited for (TCP would resend it only after a second): the caller tries again with a new connection."""
    try:
        with socket.create_connection((GUEST_IP, PORT), timeout=connect_timeout) as s:
            s.settimeout(10)
            s.sendall(line)
            got = b""
            while not got.endswith(b"\n"):
                c = s.recv(4096)
                if not c:
                    break
                got += c
            return got == line
    except OSError:
        return False


def ember_in_ns(args, err_path):
    return start(["ip", "netns", "exec", NS, EMBER] + args, err_path)


def make_linux_snapshot(d):
    control = os.path.join(d, "control.img")
    with open(control, "wb") as f:
        f.write(b"hold\n".ljust(1 << 20, b"\0"))
    sock = os.path.join(d, "src.sock")
    unlink(sock)
    p = ember_in_ns(["--api-sock", sock], os.path.join(d, "src.err"))
    con = Console(p)
    try:
        if not wait_socket(sock, p):
            raise RuntimeError(f"ember --api-sock did not listen (see {d}/src.err)")
        args = (f"console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 i8042.noaux i8042.nomux "
                f"ip={GUEST_IP}::{HOST_IP}:255.255.255.252::eth0:off ember.echo={PORT} ember.tick=5000 "
                "ember.hold=/dev/vdb")
        api_ok(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})
        api_ok(sock, "PUT", "/boot-source", {"kernel_image_path": VMLINUX, "boot_args": args})
        api_ok(sock, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": ROOTFS, "is_root_device": True,
                                               "is_read_only": True})
        api_ok(sock, "PUT", "/drives/control", {"drive_id": "control", "path_on_host": control,
                                                "is_root_device": False, "is_read_only": True})
        api_ok(sock, "PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                                         "guest_mac": "06:00:ac:1f:f9:02"})
        api_ok(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        end = time.monotonic() + 600
        with InNetns():
            while not echo_once(b"boot\n", 5):
                con.pump()
                if time.monotonic() > end or p.poll() is not None:
                    raise RuntimeError(f"the Linux guest's echo service never answered (see {d})")
                time.sleep(0.5)
        api_ok(sock, "PATCH", "/vm", {"state": "Paused"})
        api_ok(sock, "PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": os.path.join(d, "s.state"),
                                                 "mem_file_path": os.path.join(d, "s.mem")})
    finally:
        kill_proc(p)


def restore_to_reply(d, i):
    sock = os.path.join(d, f"r{i}.sock")
    unlink(sock)
    p = ember_in_ns(["--api-sock", sock], os.path.join(d, f"r{i}.err"))
    try:
        if not wait_socket(sock, p):
            raise RuntimeError(f"ember --api-sock did not listen (see {d}/r{i}.err)")
        body = {"snapshot_path": os.path.join(d, "s.state"), "resume_vm": True,
                "mem_backend": {"backend_type": "File", "backend_path": os.path.join(d, "s.mem")}}
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        buf, t0 = b"", time.monotonic()
        s.sendall(http_request("PUT", "/snapshot/load", body))
        resp = None
        while resp is None and time.monotonic() < t0 + 60:
            if select.select([s], [], [], 1.0)[0]:
                c = s.recv(65536)
                buf += c
                resp = http_parse(buf, eof=not c) or (None if c else (0, buf.decode(errors="replace")))
        t_resp = time.monotonic()
        s.close()
        if not resp or resp[0] != 204:
            raise RuntimeError(f"PUT /snapshot/load: {resp}")
        line = b"restore %d\n" % i
        with InNetns():
            while not echo_once(line, 0.2):
                if time.monotonic() > t0 + 60:
                    raise RuntimeError(f"no echo within 60 s of the load (see {d})")
                time.sleep(0.005)
        t_reply = time.monotonic()
        return (t_resp - t0) * 1000, (t_reply - t0) * 1000
    finally:
        kill_proc(p)


def b_snapshot_network():
    if os.geteuid() != 0:
        fail("snapshot_network", "needs root (a network namespace and a tap)")
        return
    d = os.path.join(WORK, "snapnet")
    os.makedirs(d, exist_ok=True)
    subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
    try:
        ip("netns", "add", NS)
        ip("-n", NS, "link", "set", "lo", "up")
        ip("-n", NS, "tuntap", "add", "dev", "tap0", "mode", "tap", "vnet_hdr")
        ip("-n", NS, "addr", "add", f"{HOST_IP}/30", "dev", "tap0")
        ip("-n", NS, "link", "set", "tap0", "up")
        make_linux_snapshot(d)
        answers, replies = [], []
        for i in range(11):  # the first one unmeasured: the emulator translates code it runs the first time
            a, r = restore_to_reply(d, i)
            if i:
                answers.append(a)
                replies.append(r)
        record("snapshot_network", load_sent_to_response_ms=stats(answers),
               load_sent_to_first_echo_ms=stats(replies),
               note="a Linux guest (1 vCPU, 128 MiB, read-only root, TCP echo service on a tap in its own network "
                    "namespace) snapshotted once; each restore a fresh `ember --api-sock` in that namespace getting "
                    "PUT /snapshot/load (File, resume_vm), timed from sending it to the answer and to the first "
                    "echo of a line sent over TCP from the namespace (new connections until one is accepted within "
                    "0.2 s: ARP and the handshake are in the figure). One unmeasured restore first")
    except Exception as e:  # noqa
        fail("snapshot_network", repr(e))
    finally:
        subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
