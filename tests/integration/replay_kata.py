#!/usr/bin/env python3
"""Request-sequence replay of Kata Containers' Firecracker driver (issue #15), with ember-jailer as its
jailer, one sandbox from start to cleanup, and every answer Kata parses checked.

Read (never copied) to get the sequence right: kata-containers main at 7c6ba40c54 (4.1.0-23-g7c6ba40c54,
2026-08-22), Go runtime: src/runtime/virtcontainers/fc.go (setPaths, fcInit, fcInitConfiguration,
createDiskPool, fcListenToFifo, fcAddVsock, fcAddNetDevice, hotplugBlockDevice, fcUpdateBlockDrive,
fcEnd, cleanupJail, readJailedFirecrackerPID, parseVersion/checkVersion), mount_linux.go (bindMount,
remount), types/fcConfig.go and pkg/firecracker/client/models (the config file's JSON: Go marshals struct
fields in declaration order, go-swagger's alphabetical; MarshalIndent with a tab), fc_metrics.go (what a
metrics line is decoded into), pkg/agent/protocols/client/client.go (HybridVSockDialer: "CONNECT
<port>\\n", a reply containing "OK"), hypervisor.go (agent vsock port 1024), utils.WaitLocalProcess
(SIGTERM, then poll with signal 0, SIGKILL after the timeout), containerd/fifo v1.1.0 (OpenFifo with
O_CREAT and perm 0 makes a FIFO of mode 0000; O_RDONLY|O_NONBLOCK opens it blocking in the background).

The sequence (jailed: Kata's configuration-fc.toml sets jailer_path):
  1. `<hypervisor> --version`: the first line's second field, less a "v", must be semver >= 0.21.1.
  2. id = the sandbox id cut to 32 characters; chroot base /run/vc (here a tmpfs mounted as /run is:
     nosuid,nodev,noexec); vmPath = base/<hypervisor file name>/id; jailerRoot = vmPath/root.
  3. mkdir jailerRoot/run; jailerRoot bind-mounted onto itself, made shared, remounted MS_NOSUID|
     MS_RELATIME (clears noexec and nodev); kernel and rootfs image bind-mounted (made slaves) at
     jailerRoot/vmlinux and /rootfs; a pool of 8 empty files drive_0..drive_7; FIFOs vmPath/logs.fifo and
     metrics.fifo (mode 0000, Kata reading them) bind-mounted into the jail; vsock "root" CID 3 at
     /kata.hvsock; a NIC with Kata's rate limiters (an empty object when no limit is set);
     fcConfig.json written (0640) and bind-mounted at jailerRoot/fcConfig.json.
  4. `jailer --id ID --exec-file HV --uid 0 --gid 0 --chroot-base-dir BASE --daemonize --netns NS --
     --config-file /fcConfig.json`: no --api-sock, so the VMM serves Firecracker's default
     /run/firecracker.socket, inside the jail.
  5. waitVMMRunning: GET / every 10 ms until state "Running" (10 s). Then firecracker.pid in jailerRoot
     (retried 5 s): the pid Kata signals from then on. chmod kata.hvsock 0640.
  6. The agent: connect to kata.hvsock, "CONNECT 1024\\n", a reply with "OK" (the guest's vsock echo
     service stands in for kata-agent on port 1024).
  7. Hot-plug: bind-mount the container's disk onto jailerRoot/drive_0, PATCH /drives/drive_0
     {drive_id, path_on_host: "/drive_0"}; unplug: umount it, PATCH /drives/drive_0 back to the
     placeholder.
  8. StopVM (fcEnd): SIGTERM to the pid from the pid file, wait (15 s, then SIGKILL); Cleanup
     (cleanupJail): umount vmlinux, rootfs, logs.fifo, metrics.fifo, fcConfig.json and jailerRoot
     (MNT_DETACH), remove vmPath.

Not Kata's: the config file also sends the guest's serial console to a host file bind-mounted into the
jail (the daemonized VMM's stdio is /dev/null), for the test to read.

Usage: replay_kata.py --workdir W --hypervisor HV --jailer J --kernel K --rootfs R --disk D --netns NS
       --tap TAP --console OUT --stderr ERR --cmdline ARGS
REPLAY_KATA_FOREGROUND=1 runs the jailer without --daemonize, to see the VMM's stderr when diagnosing.
Prints "ok - ..." / "not ok - ..." lines and exits 1 if any failed. Standard library only.
"""
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import replay_go_client as go
from replay_go_client import GoClient, check, console_has, not_ok, ok, sdk_get, sdk_ok

MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 2, 4, 8, 32, 4096
MS_SLAVE, MS_SHARED, MS_RELATIME = 1 << 19, 1 << 20, 1 << 21
MNT_DETACH = 2
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
LIBC.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

FC_DISK_POOL = 8
AGENT_PORT = 1024
VCPUS = 1  # machine-config vcpu_count
FC_MIN_VERSION = (0, 21, 1)
# fc_metrics.go: the top-level objects Kata's FirecrackerMetrics declares (each a struct of uint64s).
KATA_METRICS_OBJECTS = ("api_server", "block", "get_api_requests", "i8042", "latencies_us", "logger", "mmds",
                        "net", "patch_api_requests", "put_api_requests", "rtc", "seccomp", "vcpu", "vmm", "uart",
                        "signals", "vsock")


def mount(src, dst, fstype, flags, data=None):
    if LIBC.mount(src.encode() if src else None, dst.encode(), fstype.encode() if fstype else None, flags,
                  data.encode() if data else None):
        e = ctypes.get_errno()
        raise OSError(e, "mount %s on %s: %s" % (src, dst, os.strerror(e)))


def umount(path):
    if LIBC.umount2(path.encode(), MNT_DETACH):
        return ctypes.get_errno()
    return 0


def bind_mount(src, dst, propagation):
    """mount_linux.go bindMount: the destination made to exist, MS_BIND, then the propagation type."""
    if not os.path.exists(dst):
        if os.path.isdir(src):
            os.makedirs(dst)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            open(dst, "a").close()
    mount(os.path.realpath(src), dst, "bind", MS_BIND)
    mount("none", dst, None, propagation)


def go_indent_json(obj):
    """json.MarshalIndent(v, "", "\\t"): keys in the order given, HTML-safe escaping as Go does."""
    s = json.dumps(obj, indent="\t", separators=(",", ": "), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def parse_version(out):
    """parseVersion: the first line's second space-separated field, TrimSpace, TrimPrefix "v"."""
    fields = out.split("\n")[0].split(" ")
    if len(fields) < 2:
        return None
    return fields[1].strip().removeprefix("v")


def semver(v):
    m = re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?", v or "")
    return tuple(int(x) for x in m.groups()) if m else None


class FifoReader(threading.Thread):
    """fcListenToFifo's goroutine: open O_RDONLY (blocking until the VMM opens its end), scan lines."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.lines = path, []

    def run(self):
        with open(self.path, "rb") as f:
            for line in f:
                self.lines.append(line.rstrip(b"\n"))


def check_metrics_lines(lines):
    """updateMetrics: json.Unmarshal into FirecrackerMetrics; a type mismatch is an error Kata logs."""
    bad = []
    for ln in lines:
        try:
            m = json.loads(ln)
        except ValueError:
            bad.append("not JSON: %r" % ln[:80])
            continue
        if not isinstance(m, dict):
            bad.append("not an object")
            continue
        for k in KATA_METRICS_OBJECTS:
            if k in m and not (isinstance(m[k], dict) and
                               all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in m[k].values())):
                bad.append("%s is not an object of unsigned integers" % k)
    return bad


def agent_connect(uds, port, timeout):
    """HybridVSockDialer: dial the Unix socket, send CONNECT, the reply line must contain OK."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(uds)
    s.sendall(b"CONNECT %d\n" % port)
    reply = b""
    while not reply.endswith(b"\n"):
        d = s.recv(1)
        if not d:
            break
        reply += d
    return s, reply.decode(errors="replace")


def wait_local_process(pid, timeout, sig):
    """utils.WaitLocalProcess: signal, then poll with signal 0 until gone; SIGKILL after the timeout.
    Returns (seconds, killed)."""
    t0 = time.monotonic()
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return 0.0, False
    while time.monotonic() - t0 < timeout:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return time.monotonic() - t0, False
        # A zombie still answers signal 0; Kata's pid is not its child either, so the same holds there.
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return time.monotonic() - t0, False
        except OSError:
            return time.monotonic() - t0, False
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return time.monotonic() - t0, True


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(path)]


def diagnose(root, readers):
    """What a failed start left to read: the daemonized VMM's stdio is /dev/null."""
    print("  jail root: %s" % sorted(os.listdir(root)) if os.path.isdir(root) else "  no jail root", flush=True)
    print("  processes: %s" % subprocess.run(["ps", "-eo", "pid,ppid,stat,args"], capture_output=True,
                                             text=True).stdout[-1500:], flush=True)
    for fifo, r in readers.items():
        print("  %s: %r" % (fifo, r.lines[-10:]), flush=True)


def main():
    o = {}
    it = iter(sys.argv[1:])
    for k in it:
        o[k.lstrip("-").replace("-", "_")] = next(it)
    run(o)
    if go.FAILS:
        print("%d check(s) failed" % go.FAILS)
    sys.exit(1 if go.FAILS else 0)


def run(o):
    name = "kata"
    scale = go.TIMEOUT_SCALE
    wd = o["workdir"]
    hv = o["hypervisor"]
    # 1. getVersionNumber / checkVersion
    out = subprocess.run([hv, "--version"], capture_output=True, text=True).stdout
    ver = parse_version(out)
    sv = semver(ver)
    check("%s: `%s --version` first line %r parses as Kata parses it (field 2: %r, semver)" %
          (name, os.path.basename(hv), out.split("\n")[0], ver), sv is not None)
    check("%s: checkVersion: %s is at least Kata's minimum %s" % (name, ver, ".".join(map(str, FC_MIN_VERSION))),
          sv is not None and sv >= FC_MIN_VERSION)

    # 2. setPaths: /run/vc is a tmpfs with /run's flags here.
    run_dir = os.path.join(wd, "run")
    os.makedirs(run_dir)
    mount("tmpfs", run_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755")
    sandbox = "kata0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"
    vid = sandbox[:32]  # truncateID
    base = os.path.join(run_dir, "vc")
    hv_name = os.path.basename(hv)
    vm_path = os.path.join(base, hv_name, vid)
    root = os.path.join(vm_path, "root")
    sock = os.path.join(root, "run", "firecracker.socket")
    hvsock = os.path.join(root, "kata.hvsock")
    try:
        boot(o, name, scale, hv, base, vid, vm_path, root, sock, hvsock)
    finally:
        for p in mounts_under(run_dir)[::-1]:
            umount(p)


def boot(o, name, scale, hv, base, vid, vm_path, root, sock, hvsock):
    # 3. fcInitConfiguration
    os.makedirs(os.path.join(root, "run"), 0o750)
    bind_mount(root, root, MS_SHARED)  # fcRemountJailerRootWithExec
    mount(root, root, None, MS_REMOUNT | MS_NOSUID | MS_RELATIME)
    bind_mount(o["kernel"], os.path.join(root, "vmlinux"), MS_SLAVE)
    bind_mount(o["rootfs"], os.path.join(root, "rootfs"), MS_SLAVE)
    drives = [{"drive_id": "rootfs", "is_read_only": True, "is_root_device": False, "path_on_host": "/rootfs"}]
    for i in range(FC_DISK_POOL):  # createDiskPool: empty placeholders, paths relative to the jail
        open(os.path.join(root, "drive_%d" % i), "w").close()
        drives.append({"drive_id": "drive_%d" % i, "is_read_only": False, "is_root_device": False,
                       "path_on_host": "/drive_%d" % i})
    readers = {}
    old_umask = os.umask(0o022)
    for fifo in ("logs.fifo", "metrics.fifo"):
        path = os.path.join(vm_path, fifo)
        os.mkfifo(path, 0)  # containerd/fifo OpenFifo(O_CREAT, perm 0)
        readers[fifo] = FifoReader(path)
        readers[fifo].start()
        bind_mount(path, os.path.join(root, fifo), MS_SLAVE)
    os.umask(old_umask)
    # Kata's parameters after the configured ones (debug on: console=ttyS0, log level Debug).
    params = o["cmdline"].split() + ["root=/dev/vda", "rootflags=data=ordered,errors=remount-ro", "ro",
                                     "rootfstype=ext4", "pci=off", "reboot=k", "panic=1", "iommu=off",
                                     "net.ifnames=0", "random.trust_cpu=on", "acpi=off", "console=ttyS0"]
    # fcAddNetDevice: no rate set in the configuration gives empty limiter objects (all fields omitempty).
    nic = {"guest_mac": "06:00:ac:10:00:09", "host_dev_name": o["tap"], "iface_id": "eth0",
           "rx_rate_limiter": {}, "tx_rate_limiter": {"bandwidth": {"refill_time": 1000, "size": 1310720}}}
    cfg = {"boot-source": {"boot_args": " ".join(params), "kernel_image_path": "/vmlinux"},
           "machine-config": {"mem_size_mib": 256, "smt": False, "vcpu_count": VCPUS},
           "vsock": {"guest_cid": 3, "uds_path": "/kata.hvsock", "vsock_id": "root"},
           "logger": {"level": "Debug", "log_path": "/logs.fifo"},
           "metrics": {"metrics_path": "/metrics.fifo"},
           "drives": drives,
           "network-interfaces": [nic],
           # Not Kata's: the daemonized jailer puts the VMM's stdio on /dev/null, so the guest's console
           # is sent to a host file bind-mounted into the jail, for the test to read.
           "serial": {"serial_out_path": "/console.out"}}
    open(o["console"], "ab").close()
    bind_mount(o["console"], os.path.join(root, "console.out"), MS_SLAVE)
    cfg_host = os.path.join(vm_path, "fcConfig.json")
    with open(cfg_host, "w") as f:
        f.write(go_indent_json(cfg))
    os.chmod(cfg_host, 0o640)
    bind_mount(cfg_host, os.path.join(root, "fcConfig.json"), MS_SLAVE)

    # 4. fcInit: the jailer, daemonized.
    cmd = [o["jailer"], "--id", vid, "--exec-file", hv, "--uid", "0", "--gid", "0", "--chroot-base-dir", base,
           "--daemonize", "--netns", "/var/run/netns/" + o["netns"], "--", "--config-file", "/fcConfig.json"]
    if os.environ.get("REPLAY_KATA_FOREGROUND"):  # diagnosis only: keeps the VMM's stderr (not Kata's way)
        cmd.remove("--daemonize")
    print("  %s: %s" % (name, " ".join(cmd)), flush=True)
    t0 = time.monotonic()
    jailer = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(o["stderr"], "ab"))
    # 5. waitVMMRunning: GET / every 10 ms (Kata's client is go-openapi over net/http, as the SDK's).
    c = GoClient(sock)
    running, polls, last = False, 0, None
    deadline = t0 + 10 * scale
    while time.monotonic() < deadline and not running:
        polls += 1
        try:
            a = c.request("GET", "/")
            last = a
            if a.status == 200:
                running = json.loads(a.body).get("state") == "Running"
        except (OSError, ValueError):
            c.close()
        if not running:
            time.sleep(0.010)
    rc = jailer.wait(30) if "--daemonize" in cmd else 0
    check("%s: the daemonized jailer returned 0 (got %s)" % (name, rc), rc == 0)
    if not running:
        diagnose(root, readers)
    if not check("%s waitVMMRunning: GET / says Running after %d polls, %.2f s (within Kata's 10 s x%g)" %
                 (name, polls, time.monotonic() - t0, scale), running):
        if last is not None:
            print("  last answer: %d %r" % (last.status, last.body[:200]))
        return
    info = sdk_get(c, name + " DescribeInstance", "/")
    if info is not None:
        # vmRunning dereferences payload.State; the model's four fields are required.
        for k in ("app_name", "id", "state", "vmm_version"):
            check("%s: GET / has %s as a string (%r)" % (name, k, info.get(k)), isinstance(info.get(k), str))
        check("%s: GET / id is the jailer's --id %r (%r)" % (name, vid, info.get("id")), info.get("id") == vid)
    # readJailedFirecrackerPID: <jailerRoot>/firecracker.pid, retried for 5 s.
    pid, pid_file = 0, os.path.join(root, "firecracker.pid")
    end = time.monotonic() + 5
    while time.monotonic() < end and pid <= 0:
        try:
            with open(pid_file) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
    if not check("%s: %s holds a pid (%d)" % (name, os.path.relpath(pid_file, vm_path), pid), pid > 0):
        return
    try:
        jail_st, vmm_root_st = os.stat(root), os.stat("/proc/%d/root/" % pid)
        exe_root = "the jail" if (jail_st.st_dev, jail_st.st_ino) == (vmm_root_st.st_dev, vmm_root_st.st_ino) else \
            "not the jail: %s" % os.readlink("/proc/%d/root" % pid)
        with open("/proc/%d/status" % pid) as f:
            status = f.read().split("\n")
        uid_line = [ln for ln in status if ln.startswith("Uid:")][0].split()
        caps = {ln.split(":")[0]: int(ln.split()[1], 16) for ln in status if ln.startswith("Cap")}
    except OSError as e:
        exe_root, uid_line, caps = "(%s)" % e, [], {}
    check("%s: that pid is the jailed VMM (its root directory is %s)" % (name, exe_root), exe_root == "the jail")
    check("%s: the VMM runs as Kata's --uid 0 (%s)" % (name, " ".join(uid_line[1:])), uid_line[1:2] == ["0"])
    # ember-jailer leaves root CAP_DAC_OVERRIDE alone (bit 1), for Kata's FIFOs of mode 0000.
    check("%s: the root VMM holds CAP_DAC_OVERRIDE only (%s)" % (name, {k: hex(v) for k, v in caps.items()}),
          caps.get("CapEff") == 2 and caps.get("CapPrm") == 2 and caps.get("CapBnd") == 2 and
          caps.get("CapInh") == 0 and caps.get("CapAmb", 0) == 0)
    try:
        os.chmod(hvsock, 0o640)  # StartVM: the hybrid vsock socket exists by now
        ok("%s: the vsock's Unix socket %s exists when the VM runs (chmod 0640)" % (name, os.path.basename(hvsock)))
    except OSError as e:
        not_ok("%s: chmod %s: %s" % (name, hvsock, e))

    # 6. The agent over hybrid vsock (kata-agent listens on vsock port 1024; the guest's echo stands in).
    check("%s: the guest's init holds" % name, console_has(o["console"], "EMBER-HOLD: waiting", 1, 600))
    agent, reply, end = None, "", time.monotonic() + 60 * scale
    while time.monotonic() < end:
        try:
            agent, reply = agent_connect(hvsock, AGENT_PORT, 10)
            if "OK" in reply:
                break
            agent.close()
        except OSError:
            pass
        agent = None
        time.sleep(0.05)  # Kata redials in a loop until the agent answers
    if check("%s: CONNECT %d on %s answered %r (Kata wants OK)" % (name, AGENT_PORT, "kata.hvsock", reply.strip()),
             agent is not None):
        payload = os.urandom(4096)
        agent.sendall(payload)
        back = b""
        agent.settimeout(30)
        try:
            while len(back) < len(payload):
                d = agent.recv(65536)
                if not d:
                    break
                back += d
        except OSError:
            pass
        check("%s: bytes to the agent port come back through the guest (%d of %d)" % (name, len(back), len(payload)),
              back == payload)
        agent.close()

    # GetThreadIDs: the VMM's threads named "fc_vcpu N" (trimmed, Atoi) map vCPU N to a thread for its cgroup.
    vcpu_tids = {}
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            if comm.startswith("fc_vcpu"):
                vcpu_tids[int(comm[len("fc_vcpu"):].strip())] = int(tid)
    except (OSError, ValueError) as e:
        print("# GetThreadIDs: %s" % e, flush=True)
    check("%s: GetThreadIDs finds one fc_vcpu thread per vCPU (%s)" % (name, vcpu_tids),
          sorted(vcpu_tids) == list(range(VCPUS)))

    # 7. hotplugBlockDevice: bind the container's disk onto the placeholder, PATCH, then unplug.
    go.control(o["disk"], "kata-hotplug-1")
    empty_reads = go.console_count(o["console"], "EMBER-HOLD: /dev/vdb says ''")
    bind_mount(o["disk"], os.path.join(root, "drive_0"), MS_SLAVE)
    sdk_ok(c, name + " HotplugAddDevice (fcUpdateBlockDrive)", "PATCH", "/drives/drive_0",
           {"drive_id": "drive_0", "path_on_host": "/drive_0"})
    check("%s: the guest sees the hot-plugged disk's content on the pool drive" % name,
          console_has(o["console"], "EMBER-HOLD: /dev/vdb says 'kata-hotplug-1'", 1, 120 * scale ** 0.5))
    umount(os.path.join(root, "drive_0"))
    sdk_ok(c, name + " HotplugRemoveDevice (back to the placeholder)", "PATCH", "/drives/drive_0",
           {"drive_id": "drive_0", "path_on_host": "/drive_0"})
    check("%s: after the unplug the guest reads the empty placeholder again" % name,
          console_has(o["console"], "EMBER-HOLD: /dev/vdb says ''", empty_reads + 1, 120 * scale ** 0.5))
    # Idle keep-alive connections stay open, as with Firecracker: one connection however long Kata was idle.
    check("%s: one keep-alive connection for the whole run (%d dials, %d closes by ember, longest idle %.1f s)" %
          (name, c.dials, c.server_closes, c.max_idle), c.server_closes == 0 and c.dials == 1)

    # 8. StopVM: SIGTERM to the pid from the pid file, 15 s; then Cleanup.
    took, killed = wait_local_process(pid, 15, signal.SIGTERM)
    check("%s fcEnd: SIGTERM to the pid-file pid ends the VMM within Kata's 15 s (%.2f s, SIGKILL needed: %s)" %
          (name, took, killed), not killed)
    c.close()
    end = time.monotonic() + 10
    while time.monotonic() < end and subprocess.run(["pgrep", "-f", "--", "--id " + vid],
                                                    capture_output=True).returncode == 0:
        time.sleep(0.1)
    left = subprocess.run(["pgrep", "-f", "--", "--id " + vid], capture_output=True, text=True).stdout.split()
    check("%s: no process of the sandbox is left, the jailer's supervisor included (%s)" %
          (name, " ".join(left) or "none"), not left)
    for fifo, r in readers.items():
        r.join(10)
        check("%s: Kata's reader of %s saw the VMM close it at exit" % (name, fifo), not r.is_alive())
    check("%s: the log FIFO carried ember's lines (%d)" % (name, len(readers["logs.fifo"].lines)),
          len(readers["logs.fifo"].lines) > 0)
    mlines = readers["metrics.fifo"].lines
    bad = check_metrics_lines(mlines)
    check("%s: %d metrics lines, each decodes into Kata's FirecrackerMetrics (%s)" % (name, len(mlines),
          "; ".join(bad[:3]) or "all"), mlines and not bad)
    # cleanupJail
    for res in ("vmlinux", "rootfs", "logs.fifo", "metrics.fifo", "fcConfig.json", "console.out"):  # + the test's
        umount(os.path.join(root, res))
    umount(root)
    subprocess.run(["rm", "-rf", "--one-file-system", vm_path], check=False)
    check("%s: cleanupJail removed the VM's directory (the chroot base holds %s: levels Kata shares)" %
          (name, os.listdir(base) if os.path.isdir(base) else "nothing"), not os.path.exists(vm_path))
    check("%s: no mount left under the chroot base" % name, not mounts_under(base))
    check("%s: the kernel and rootfs image Kata bind-mounted are intact" % name,
          os.path.getsize(o["kernel"]) > 0 and os.path.getsize(o["rootfs"]) > 0)
    cg = subprocess.run(["find", "/sys/fs/cgroup", "-name", vid], capture_output=True, text=True).stdout.split()
    check("%s: no cgroup named after the sandbox is left (%s)" % (name, " ".join(cg) or "none"), not cg)


if __name__ == "__main__":
    main()
