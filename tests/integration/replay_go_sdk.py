#!/usr/bin/env python3
"""Request-sequence replays of Ember's Go clients (issue #15): what firecracker-go-sdk and firectl send,
byte for byte where it matters, and what they parse from each answer.

Read (never copied) to get the sequences right:
  firecracker-go-sdk main at 6fb280e993d4516ee6d5d20238572fe8752bc7ca (v1.0.0-166-g6fb280e, 2025-12-24):
    handlers.go (defaultFcInitHandlerList, loadSnapshotRemoveHandlerList), machine.go (startVMM,
    waitForSocket, stopVMM, setupLogging/setupMetrics, createMachine + refreshMachineConfiguration,
    setMmdsConfig, the post-boot methods), opts.go (WithSnapshot), firecracker.go (request timeouts),
    kernelargs.go (boot args go through a Go map: order random, a repeated key keeps its last value),
    drives.go (DrivesBuilder: extra drives "0", "1"... then "root_drive"), cni/vmconf (the ip= value),
    client/models (JSON field order: Go marshals struct fields in declaration order, which go-swagger
    sorts alphabetically; nil pointers without omitempty are sent as null), client/operations (any 2xx
    is success; a 200 body is decoded as JSON into the model).
  firectl main at df2fb87a83a215876535b5d9a6471bbd9e57f023 (v0.2.0-26, built against the SDK v1.0.0,
    whose handler list, waitForSocket and setMmdsConfig match main's): options.go, main.go.
The SDK's HTTP client is go-openapi/runtime v0.24 over net/http's Transport dialing the Unix socket:
one keep-alive connection reused for every request; headers Host: localhost, User-Agent:
Go-http-client/1.1, Content-Length (bodies only), Accept: application/json, Content-Type:
application/json (PUT/PATCH), Accept-Encoding: gzip (added by the Transport); JSON bodies end in a
newline (json.Encoder).

The HTTP client, the answer checks and the VMM/console helpers are in replay_go_client.py.
Usage: replay_go_sdk.py {sdk-start|sdk-load|sdk-jailer|sdk-jailer-daemon|firectl} [--key value ...] (see main()).
Prints "ok - ..." / "not ok - ..." lines (tests/integration/lib.sh's format) and exits 1 if any failed.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import replay_go_client as go
from replay_go_client import (GoClient, Vmm, check, console_count, console_has, control, go_map_args,
                              ip_boot_param, ok, sdk_get, sdk_ok, wait_for_socket)


# ---- Shared steps of Machine.Start (defaultFcInitHandlerList)


def bootstrap_logging(c, name, log_path, metrics_path, level):
    """BootstrapLogging: setupLogging (PUT /logger: level, log_path, show_level true, show_log_origin false)
    then setupMetrics (PUT /metrics)."""
    body = {}
    if level:
        body["level"] = level
    body.update({"log_path": log_path, "show_level": True, "show_log_origin": False})
    sdk_ok(c, name + " BootstrapLogging", "PUT", "/logger", body, 0.5)
    sdk_ok(c, name + " BootstrapLogging", "PUT", "/metrics", {"metrics_path": metrics_path}, 0.5)


def create_machine(c, name, vcpus, mem, smt, cpu_template=""):
    """CreateMachine: PUT /machine-config, then refreshMachineConfiguration (GET /machine-config, decoded
    into models.MachineConfiguration: vcpu_count and mem_size_mib required, smt/cpu_template/
    track_dirty_pages optional)."""
    body = {}
    if cpu_template:
        body["cpu_template"] = cpu_template
    body["mem_size_mib"] = mem
    body["smt"] = smt
    body["vcpu_count"] = vcpus
    sdk_ok(c, name + " CreateMachine", "PUT", "/machine-config", body, 0.5)
    got = sdk_get(c, name + " CreateMachine (refreshMachineConfiguration)", "/machine-config", 0.5)
    check_machine_config(name, got, vcpus, mem, smt, cpu_template)


def check_machine_config(name, got, vcpus, mem, smt, cpu_template):
    if got is None:
        return
    check("%s: machine-config vcpu_count %r (want %d)" % (name, got.get("vcpu_count"), vcpus), got.get("vcpu_count") == vcpus)
    check("%s: machine-config mem_size_mib %r (want %d)" % (name, got.get("mem_size_mib"), mem), got.get("mem_size_mib") == mem)
    check("%s: machine-config smt %r (want %r)" % (name, got.get("smt"), smt), got.get("smt", False) == smt)
    tmpl = got.get("cpu_template", "None")
    want = cpu_template or "None"
    check("%s: machine-config cpu_template %r (want %r or absent)" % (name, tmpl, want), tmpl == want)
    tdp = got.get("track_dirty_pages", False)
    check("%s: machine-config track_dirty_pages is a bool (%r)" % (name, tdp), isinstance(tdp, bool))


def attach_drive(c, name, drive_id, path, root, ro, partuuid=""):
    """AttachDrives: PUT /drives/ID with models.Drive (250 ms timeout: half the default)."""
    body = {"drive_id": drive_id, "is_read_only": ro, "is_root_device": root}
    if partuuid:
        body["partuuid"] = partuuid
    body["path_on_host"] = path
    sdk_ok(c, name + " AttachDrives", "PUT", "/drives/" + drive_id, body, 0.25)


def create_nic(c, name, iface_id, tap, mac):
    """CreateNetworkInterfaces: PUT /network-interfaces/N, N = 1-based index (models.NetworkInterface)."""
    body = {}
    if mac:
        body["guest_mac"] = mac
    body.update({"host_dev_name": tap, "iface_id": iface_id})
    sdk_ok(c, name + " CreateNetworkInterfaces", "PUT", "/network-interfaces/" + iface_id, body, 0.5)


def add_vsock(c, name, cid, uds, vsock_id=""):
    """AddVsocks: PUT /vsock (no timeout; vsock_id omitted when empty)."""
    body = {"guest_cid": cid, "uds_path": uds}
    if vsock_id:
        body["vsock_id"] = vsock_id
    sdk_ok(c, name + " AddVsocks", "PUT", "/vsock", body)


def config_mmds(c, name, allowed_ids, version="V1", address=None):
    """ConfigMmds: PUT /mmds/config with the 1-based ids of the NICs that AllowMMDS (skipped if none)."""
    if not allowed_ids:
        return
    body = {}
    if address:
        body["ipv4_address"] = address
    body["network_interfaces"] = allowed_ids
    body["version"] = version
    sdk_ok(c, name + " ConfigMmds", "PUT", "/mmds/config", body)


def instance_start(c, name):
    return 200 <= sdk_ok(c, name + " startInstance", "PUT", "/actions", {"action_type": "InstanceStart"}).status < 300


def check_instance_info(c, name, want_state, want_id=None):
    """DescribeInstanceInfo: GET / into models.InstanceInfo (app_name, id, state, vmm_version: all required)."""
    got = sdk_get(c, name + " DescribeInstanceInfo", "/")
    if got is None:
        return
    for k in ("app_name", "id", "state", "vmm_version"):
        check("%s: instance info has %s (%r)" % (name, k, got.get(k)), isinstance(got.get(k), str))
    check("%s: instance info state %r (want %r)" % (name, got.get("state"), want_state), got.get("state") == want_state)
    if want_id:
        check("%s: instance info id %r (want --id %r)" % (name, got.get("id"), want_id), got.get("id") == want_id)


def balloon_available(sock_dir, ember):
    """GET /balloon on a pre-boot ember: False when this build answers that it does not implement it."""
    path = os.path.join(sock_dir, "probe.sock")
    p = subprocess.Popen([ember, "--api-sock", path], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(3000):
            if os.path.exists(path):
                try:
                    a = GoClient(path).request("GET", "/balloon")
                    break
                except OSError:
                    pass
            time.sleep(0.01)
        else:
            return False
        return "not implement" not in a.body.decode(errors="replace")
    finally:
        p.kill()
        p.wait()


# ---- firecracker-go-sdk: Machine.Start, the post-boot methods, StopVMM


def sdk_start(o):
    name = "sdk-start"
    wd = o["workdir"]
    sock = os.path.join(wd, "fc.sock")
    vmid = "replay-go-sdk-1"
    # NewMachine with Seccomp{Enabled: true}: --api-sock, --id, and no --no-seccomp (the SDK's default
    # Enabled false would add --no-seccomp; the SIGTERM kill happened with seccomp on).
    cmd = ["ip", "netns", "exec", o["netns"], o["ember"], "--api-sock", sock, "--id", vmid]
    with_balloon = balloon_available(wd, o["ember"])
    if not with_balloon:
        print("skip: balloon not in this build", flush=True)
    # SetupNetwork: a StaticConfiguration NIC needs nothing here (the tap exists, made by the test).
    # SetupKernelArgs: the static IP adds ip= and the args pass through the Go map.
    args = go_map_args(o["cmdline"] + " ip=" + ip_boot_param(o["guest_ip"], o["gw"], "255.255.255.252", "eth0"))
    # StartVMM: started in the netns (ns.WithNetNSPath), then the socket poll.
    t0 = time.monotonic()
    vmm = Vmm(cmd, o["console"], o["stderr"])
    c, polls, secs = wait_for_socket(vmm, sock)
    if c is None:
        return
    ok("%s StartVMM: the API answered the SDK's poll (10 ms stat + GET /machine-config) after %d polls, %.2f s" %
       (name, polls, secs))
    # CreateLogFiles: MetricsFifo (mkfifo 0700, nobody reads it) and LogPath (a regular file).
    metrics_fifo, log_path = os.path.join(wd, "metrics.fifo"), os.path.join(wd, "fc.log")
    os.mkfifo(metrics_fifo, 0o700)
    os.close(os.open(log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600))
    bootstrap_logging(c, name, log_path, metrics_fifo, "Debug")
    create_machine(c, name, 1, 256, False)
    sdk_ok(c, name + " CreateBootSource", "PUT", "/boot-source", {"boot_args": args, "kernel_image_path": o["kernel"]}, 0.5)
    # DrivesBuilder(root).AddDrive(control, readOnly=false): "0" first, "root_drive" last.
    attach_drive(c, name, "0", o["control"], False, False)
    attach_drive(c, name, "root_drive", o["rootfs"], True, False)
    create_nic(c, name, "1", "tap0", o["mac"])
    add_vsock(c, name, 3, os.path.join(wd, "v.sock"), "vsock0")
    config_mmds(c, name, ["1"])
    # User-appended handlers after ConfigMmds: NewSetMetadataHandler (PUT /mmds), NewCreateBalloonHandler.
    meta = {"latest": {"meta-data": {"ami-id": "ami-12345678", "instance-id": "i-replay"}}}
    sdk_ok(c, name + " SetMetadata", "PUT", "/mmds", meta)
    if with_balloon:
        sdk_ok(c, name + " CreateBalloon", "PUT", "/balloon",
               {"amount_mib": 0, "deflate_on_oom": True, "stats_polling_interval_s": 1}, 0.5)
    if not instance_start(c, name):
        return
    ok("%s: Machine.Start returned after %.2f s" % (name, time.monotonic() - t0))
    check("%s: the guest's init holds" % name, console_has(o["console"], "EMBER-HOLD: waiting", 1, 600))

    # Post-boot methods, in the order an SDK user typically calls them.
    got = sdk_get(c, name + " GetMetadata", "/mmds")
    check("%s GetMetadata: the data PUT before boot (%r)" % (name, got), got == meta)
    sdk_ok(c, name + " UpdateMetadata", "PATCH", "/mmds", {"latest": {"meta-data": {"ami-id": "ami-87654321"}}})
    got = sdk_get(c, name + " GetMetadata", "/mmds")
    want = {"latest": {"meta-data": {"ami-id": "ami-87654321", "instance-id": "i-replay"}}}
    check("%s GetMetadata after UpdateMetadata (%r)" % (name, got), got == want)
    got = sdk_get(c, name + " GetMachineConfiguration", "/machine-config", 0.5)
    check_machine_config(name + " (booted)", got, 1, 256, False, "")
    check_instance_info(c, name, "Running", vmid)
    got = sdk_get(c, name + " GetFirecrackerVersion", "/version")
    if got is not None:
        check("%s GetFirecrackerVersion: firecracker_version %r" % (name, got.get("firecracker_version")),
              isinstance(got.get("firecracker_version"), str) and got.get("firecracker_version") != "")
    # UpdateGuestDrive: PatchGuestDriveByID sends models.PartialDrive {drive_id, path_on_host}. The new
    # backing file tells the guest to run an MMDS check: the guest must see it at once.
    control(o["control2"], "check mmds:169.254.169.254:latest/meta-data/ami-id")
    sdk_ok(c, name + " UpdateGuestDrive", "PATCH", "/drives/0", {"drive_id": "0", "path_on_host": o["control2"]})
    check("%s: the guest reads the PATCHed drive and gets the updated metadata over MMDS" % name,
          console_has(o["console"], "EMBER-CHECK: mmds get /latest/meta-data/ami-id: ami-87654321", 1, 180))
    # UpdateGuestNetworkInterfaceRateLimit: models.PartialNetworkInterface; the SDK (machine.go) sends the
    # In limiter as tx too.
    rl = {"bandwidth": {"one_time_burst": 1048576, "refill_time": 100, "size": 1048576}}
    sdk_ok(c, name + " UpdateGuestNetworkInterfaceRateLimit", "PATCH", "/network-interfaces/1",
           {"iface_id": "1", "rx_rate_limiter": rl, "tx_rate_limiter": rl}, 0.5)
    if with_balloon:
        got = sdk_get(c, name + " GetBalloonConfig", "/balloon", 0.5)
        if got is not None:
            check("%s GetBalloonConfig: amount_mib 0, deflate_on_oom true, stats_polling_interval_s 1 (%r)" % (name, got),
                  got.get("amount_mib") == 0 and got.get("deflate_on_oom") is True and got.get("stats_polling_interval_s") == 1)
        sdk_ok(c, name + " UpdateBalloon", "PATCH", "/balloon", {"amount_mib": 16}, 0.5)
        time.sleep(2 * go.TIMEOUT_SCALE ** 0.5)
        got = sdk_get(c, name + " GetBalloonStats", "/balloon/statistics", 0.5)
        if got is not None:
            for k in ("actual_mib", "actual_pages", "target_mib", "target_pages"):
                check("%s GetBalloonStats: required %s is an integer (%r)" % (name, k, got.get(k)), isinstance(got.get(k), int))
            check("%s GetBalloonStats: target_mib 16 (%r)" % (name, got.get("target_mib")), got.get("target_mib") == 16)
        sdk_ok(c, name + " UpdateBalloonStats", "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 2}, 0.5)
        sdk_ok(c, name + " UpdateBalloon (back to 0)", "PATCH", "/balloon", {"amount_mib": 0}, 0.5)
    sdk_ok(c, name + " PauseVM", "PATCH", "/vm", {"state": "Paused"}, 0.5)
    check_instance_info(c, name + " (paused)", "Paused")
    # CreateSnapshot: models.SnapshotCreateParams {mem_file_path, snapshot_path}, no timeout.
    sdk_ok(c, name + " CreateSnapshot", "PUT", "/snapshot/create",
           {"mem_file_path": o["snap_mem"], "snapshot_path": o["snap_state"]})
    # The test restores this snapshot with these disks: keep a copy as they are now.
    subprocess.run(["cp", "--sparse=always", o["rootfs"], o["rootfs"] + ".at-snapshot"], check=True)
    subprocess.run(["cp", "--sparse=always", o["control2"], o["control2"] + ".at-snapshot"], check=True)
    ticks = console_count(o["console"], "EMBER-HOLD: tick")
    sdk_ok(c, name + " ResumeVM", "PATCH", "/vm", {"state": "Resumed"}, 0.5)
    check("%s: the guest ticks again after ResumeVM" % name,
          console_has(o["console"], "EMBER-HOLD: tick", ticks + 2, 120))
    check("%s: ember kept the SDK's one keep-alive connection (%d dials, %d closes by ember)" %
          (name, c.dials, c.server_closes), c.dials == 1 and c.server_closes == 0)
    print("  %s: slowest request against the SDK's timeout: %s" % (name, c.slowest[1]), flush=True)
    # What ember wrote into the metrics FIFO nobody read: complete lines must be JSON objects.
    rd = os.open(metrics_fifo, os.O_RDONLY | os.O_NONBLOCK)
    # StopVMM: SIGTERM to the VMM while the keep-alive connection is open and idle.
    vmm.proc.send_signal(signal.SIGTERM)
    rc = vmm.wait(60 * go.TIMEOUT_SCALE ** 0.5)
    check("%s StopVMM: SIGTERM with the SDK's connection open: exit 0 (got %d)" % (name, rc), rc == 0)
    c.close()
    buffered = b""
    while True:
        try:
            d = os.read(rd, 65536)
        except BlockingIOError:
            break
        if not d:
            break
        buffered += d
    os.close(rd)
    lines = buffered.split(b"\n")[:-1]
    bad = [ln for ln in lines if not ln.startswith(b"{")]
    try:
        for ln in lines:
            json.loads(ln)
    except ValueError:
        bad.append(b"(not JSON)")
    check("%s: the metrics FIFO nobody read holds %d complete lines, each a JSON object" % (name, len(lines)), not bad)
    check("%s: the log file PUT /logger named has lines" % name, os.path.getsize(log_path) > 0)


def sdk_load(o):
    """WithSnapshot: the FcInit list minus SetupKernelArgs, CreateMachine, CreateBootSource, AttachDrives,
    CreateNetworkInterfaces and ConfigMmds, plus LoadSnapshot at its end; startInstance does nothing.
    Left: SetupNetwork, StartVMM, CreateLogFiles, BootstrapLogging, AddVsocks (no VsockDevices here: a
    PUT /vsock before /snapshot/load is refused by Firecracker), LoadSnapshot."""
    name = "sdk-load"
    wd = o["workdir"]
    sock = os.path.join(wd, "fc2.sock")
    vmid = "replay-go-sdk-2"
    cmd = ["ip", "netns", "exec", o["netns"], o["ember"], "--api-sock", sock, "--id", vmid, "--no-seccomp"]
    vmm = Vmm(cmd, o["console"], o["stderr"])
    c, polls, secs = wait_for_socket(vmm, sock)
    if c is None:
        return
    ok("%s StartVMM: the API answered the poll after %d polls, %.2f s" % (name, polls, secs))
    log_fifo, metrics_path = os.path.join(wd, "fc2-log.fifo"), os.path.join(wd, "fc2.metrics")
    os.mkfifo(log_fifo, 0o700)
    os.close(os.open(metrics_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600))
    bootstrap_logging(c, name, log_fifo, metrics_path, "Info")
    # LoadSnapshot: WithSnapshot("", state, WithMemoryBackend("File", mem)) and ResumeVM true:
    # enable_diff_snapshots false and mem_file_path "" are omitted (omitempty).
    body = {"mem_backend": {"backend_path": o["snap_mem"], "backend_type": "File"}, "resume_vm": True,
            "snapshot_path": o["snap_state"]}
    sdk_ok(c, name + " LoadSnapshot", "PUT", "/snapshot/load", body)
    check("%s: the restored guest ticks" % name, console_has(o["console"], "EMBER-HOLD: tick", 2, 120))
    check_instance_info(c, name, "Running", vmid)
    got = sdk_get(c, name + " GetMachineConfiguration", "/machine-config", 0.5)
    check_machine_config(name + " (restored)", got, 1, 256, False, "")
    got = sdk_get(c, name + " GetMetadata", "/mmds")
    print("  %s: GET /mmds after the load: %r (Firecracker's snapshots do not carry the data store)" % (name, got))
    # Shutdown: SendCtrlAltDel is what Machine.Shutdown does on x86; the held guest (ember.ctrlaltdel is
    # not set) ignores it, so the control drive asks for the reboot.
    sdk_ok(c, name + " Shutdown (SendCtrlAltDel)", "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    control(o["control2"], "reboot")
    rc = vmm.wait(180 * go.TIMEOUT_SCALE ** 0.5)
    check("%s: the restored guest's reboot ends ember with exit 0, the SDK's connection still open (got %d)" % (name, rc),
          rc == 0)
    c.close()


def sdk_jailer(o):
    """NewMachine with JailerCfg{ID, UID, GID, NumaNode 0, ExecFile, JailerBinary, ChrootBaseDir,
    ChrootStrategy: NewNaiveChrootStrategy(kernel)} (jailer.go), Daemonize false, no NetNS:
      jailer --id ID --uid U --gid G --exec-file EMBER [--cgroup cpuset.mems=0 --cgroup cpuset.cpus=LIST]
             --chroot-base-dir BASE -- --no-seccomp --api-sock /run/firecracker.socket
    (the cpuset pair when /sys/devices/system/node/node0/cpulist is readable). The socket the SDK polls
    is BASE/<exec basename>/ID/root/run/firecracker.socket. The chroot strategy adds LinkFilesHandler
    after CreateLogFiles: kernel, drives and FIFOs hard-linked into the jail's root (FIFOs chowned to
    UID:GID), and the API then gets their base names (relative paths: "vmlinux", "root.ext4"...).
    StopVMM signals the process the SDK started: the jailer."""
    name = "sdk-jailer"
    wd = o["workdir"]
    jid = "replay-jailer-1"
    base = os.path.join(wd, "jail")
    root = os.path.join(base, os.path.basename(o["ember"]), jid, "root")
    sock = os.path.join(root, "run", "firecracker.socket")
    cmd = [o["jailer"], "--id", jid, "--uid", o["uid"], "--gid", o["gid"], "--exec-file", o["ember"]]
    try:
        with open("/sys/devices/system/node/node0/cpulist") as f:
            cpulist = f.read().strip()
    except OSError:
        cpulist = ""
    if cpulist:
        cmd += ["--cgroup", "cpuset.mems=0", "--cgroup", "cpuset.cpus=" + cpulist]
    cmd += ["--chroot-base-dir", base, "--", "--no-seccomp", "--api-sock", "/run/firecracker.socket"]
    print("  %s: %s" % (name, " ".join(cmd)), flush=True)
    vmm = Vmm(cmd, o["console"], o["stderr"])
    c, polls, secs = wait_for_socket(vmm, sock)
    if c is None:
        return
    ok("%s StartVMM: the jailed API answered the poll after %d polls, %.2f s" % (name, polls, secs))
    log_fifo = os.path.join(wd, "jailer-log.fifo")
    os.mkfifo(log_fifo, 0o700)
    rd = os.open(log_fifo, os.O_RDONLY | os.O_NONBLOCK)  # the user's reader (FifoLogWriter's role)
    # LinkFilesHandler
    links = {}
    for src in (o["kernel"], o["rootfs"], o["control"], log_fifo):
        dst = os.path.join(root, os.path.basename(src))
        os.link(src, dst)
        links[src] = os.path.basename(src)
    os.chown(os.path.join(root, links[log_fifo]), int(o["uid"]), int(o["gid"]))
    # BootstrapLogging with a LogFifo and no metrics: PUT /logger only.
    sdk_ok(c, name + " BootstrapLogging", "PUT", "/logger",
           {"level": "Info", "log_path": links[log_fifo], "show_level": True, "show_log_origin": False}, 0.5)
    create_machine(c, name, 1, 256, False)
    sdk_ok(c, name + " CreateBootSource", "PUT", "/boot-source",
           {"boot_args": go_map_args(o["cmdline"]), "kernel_image_path": links[o["kernel"]]}, 0.5)
    attach_drive(c, name, "0", links[o["control"]], False, False)
    attach_drive(c, name, "root_drive", links[o["rootfs"]], True, False)
    if not instance_start(c, name):
        return
    check("%s: the jailed guest's init holds" % name, console_has(o["console"], "EMBER-HOLD: waiting", 1, 600))
    check_instance_info(c, name, "Running", jid)
    logged = b""
    try:
        logged = os.read(rd, 65536)
    except BlockingIOError:
        pass
    check("%s: ember's log reached the FIFO linked into the jail (%d bytes)" % (name, len(logged)), len(logged) > 0)
    vmm.proc.send_signal(signal.SIGTERM)
    rc = vmm.wait(60 * go.TIMEOUT_SCALE ** 0.5)
    check("%s StopVMM: SIGTERM to the jailer the SDK started ends the VM: exit 0 (got %d)" % (name, rc), rc == 0)
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", "--", "--id " + jid], capture_output=True, text=True).stdout.split()
    check("%s: no process of the VM is left after StopVMM (%s)" % (name, " ".join(left) or "none"), not left)
    os.close(rd)
    c.close()


def sdk_jailer_daemon(o):
    """JailerCfg with Daemonize true (machine.go main 6fb280e): the same command line plus --daemonize
    before "--". The process the SDK started is the jailer's, which exits 0 once the VMM runs; the SDK's
    wait goroutine then blocks on shutdownCh, and stopVMM signals that (exited) process only. The SDK
    never reads the jail's pid file. So the VM ends by Shutdown (SendCtrlAltDel, on x86) and the guest's
    reboot; StopVMM afterwards is a SIGTERM to a process that is gone. The guest is seen only through a
    vsock device (the daemonized VMM's stdio is /dev/null): its echo service answers CONNECT once init
    runs, as an agent would. Ember's detached supervisor must then leave nothing: no process, jail
    directory, cgroup or socket."""
    import replay_kata  # the hybrid vsock CONNECT exchange
    name = "sdk-jailer-daemon"
    wd = o["workdir"]
    jid = "replay-jailer-2"
    exec_name = os.path.basename(o["ember"])
    base = os.path.join(wd, "jail")
    jail_dir = os.path.join(base, exec_name, jid)
    root = os.path.join(jail_dir, "root")
    sock = os.path.join(root, "run", "firecracker.socket")
    cmd = [o["jailer"], "--id", jid, "--uid", o["uid"], "--gid", o["gid"], "--exec-file", o["ember"]]
    try:  # as in sdk_jailer: the SDK pins the VM to NUMA node 0 when it can read its CPU list
        with open("/sys/devices/system/node/node0/cpulist") as f:
            cpulist = f.read().strip()
    except OSError:
        cpulist = ""
    if cpulist:
        cmd += ["--cgroup", "cpuset.mems=0", "--cgroup", "cpuset.cpus=" + cpulist]
    cmd += ["--chroot-base-dir", base, "--daemonize", "--", "--no-seccomp", "--api-sock", "/run/firecracker.socket"]
    print("  %s: %s" % (name, " ".join(cmd)), flush=True)
    vmm = Vmm(cmd, o["console"], o["stderr"])
    c, polls, secs = wait_for_socket(vmm, sock, parent_exits=True)
    if c is None:
        return
    ok("%s StartVMM: the jailed API answered the poll after %d polls, %.2f s" % (name, polls, secs))
    rc = vmm.wait(30)
    check("%s: the process the SDK started (the jailer) exited 0 once the VMM ran (got %d): the SDK's "
          "cmd.Wait sees no error" % (name, rc), rc == 0)
    links = {}
    for src in (o["kernel"], o["rootfs"], o["control"]):  # LinkFilesHandler
        os.link(src, os.path.join(root, os.path.basename(src)))
        links[src] = os.path.basename(src)
    create_machine(c, name, 1, 256, False)
    sdk_ok(c, name + " CreateBootSource", "PUT", "/boot-source",
           {"boot_args": go_map_args(o["cmdline"]), "kernel_image_path": links[o["kernel"]]}, 0.5)
    attach_drive(c, name, "0", links[o["control"]], False, False)
    attach_drive(c, name, "root_drive", links[o["rootfs"]], True, False)
    add_vsock(c, name, 3, "v.sock", "agent")
    # Not an SDK call: the daemonized VMM's stdout is /dev/null, so the guest's console goes to a file in the
    # jail, printed if the guest does not answer (a guest that never booted and a device that lost a packet
    # look the same from the host).
    open(os.path.join(root, "console.log"), "w").close()
    os.chown(os.path.join(root, "console.log"), int(o["uid"]), int(o["gid"]))
    sdk_ok(c, name + " (not the SDK's: PUT /serial for diagnosis)", "PUT", "/serial", {"serial_out_path": "console.log"})
    if not instance_start(c, name):
        return
    check_instance_info(c, name, "Running", jid)
    try:
        with open(os.path.join(root, exec_name + ".pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        pid = 0
    check("%s: the jail's pid file names the VMM (%d)" % (name, pid), pid > 0 and os.path.isdir("/proc/%d" % pid))
    # At most 5 minutes (10 in the emulated host): before the test's deadline, so a failure prints its reasons.
    agent, reply, end = None, "", time.monotonic() + 300 * go.TIMEOUT_SCALE ** 0.5
    attempts = []  # (seconds, the reply or the error) of each CONNECT
    while time.monotonic() < end and os.path.isdir("/proc/%d" % pid):
        t0 = time.monotonic()
        try:
            agent, reply = replay_kata.agent_connect(os.path.join(root, "v.sock"), 52, 10)
            attempts.append("%.1fs %r" % (time.monotonic() - t0, reply))
            if "OK" in reply:
                break
            agent.close()
        except OSError as e:
            attempts.append("%.1fs %s" % (time.monotonic() - t0, e))
        agent = None
        time.sleep(0.2)
    if agent is None:
        print("  %s: %d CONNECT attempts, the last ones: %s" % (name, len(attempts), "; ".join(attempts[-8:])))
        with open(os.path.join(root, "console.log"), errors="replace") as f:
            print("  %s: the guest's console (tail):\n%s" % (name, "".join(f.readlines()[-40:])), flush=True)
    if check("%s: the guest's echo answers CONNECT 52 over the vsock (%r): init runs" % (name, reply.strip()),
             agent is not None):
        agent.sendall(b"ping\n")
        agent.settimeout(30)
        try:
            back = agent.recv(16)
        except OSError:
            back = b""
        check("%s: ... and echoes (%r)" % (name, back), back == b"ping\n")
        agent.close()
    if cpulist:
        cg = subprocess.run(["find", "/sys/fs/cgroup", "-name", jid], capture_output=True, text=True).stdout.split()
        check("%s: the VM's cpuset cgroup exists while it runs (%s)" % (name, " ".join(cg) or "none"), cg)
    # Shutdown: closes shutdownCh, then SendCtrlAltDel; the guest (ember.ctrlaltdel=reboot) reboots.
    sdk_ok(c, name + " Shutdown (SendCtrlAltDel)", "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    end = time.monotonic() + 180 * go.TIMEOUT_SCALE ** 0.5
    while time.monotonic() < end and pid > 0 and os.path.isdir("/proc/%d" % pid):
        time.sleep(0.1)
    check("%s: the guest's reboot ends the daemonized VMM" % name, pid > 0 and not os.path.isdir("/proc/%d" % pid))
    c.close()
    # StopVMM (deferred by SDK users): SIGTERM to the jailer process the SDK holds, long gone.
    try:
        os.kill(vmm.proc.pid, signal.SIGTERM)
        gone = False
    except ProcessLookupError:
        gone = True
    check("%s StopVMM: the process the SDK signals is gone already (os: process already finished)" % name, gone)
    end = time.monotonic() + 30
    while time.monotonic() < end and subprocess.run(["pgrep", "-f", "--", "--id " + jid],
                                                    capture_output=True).returncode == 0:
        time.sleep(0.1)
    left = subprocess.run(["pgrep", "-f", "--", "--id " + jid], capture_output=True, text=True).stdout.split()
    check("%s: no process of the VM is left, the detached supervisor included (%s)" % (name, " ".join(left) or "none"),
          not left)
    check("%s: the jail directory, its socket and pid file are gone (%s)" % (name, jail_dir), not os.path.exists(jail_dir))
    cg = subprocess.run(["find", "/sys/fs/cgroup", "-name", jid], capture_output=True, text=True).stdout.split()
    check("%s: no cgroup named after the VM is left (%s; cpuset ones made: %s)" % (name, " ".join(cg) or "none",
          "yes" if cpulist else "no"), not cg)
    check("%s: the kernel and disks the SDK linked into the jail are intact" % name,
          all(os.path.getsize(p) > 0 for p in (o["kernel"], o["rootfs"], o["control"])))


# ---- firectl: flags -> Config -> the same SDK handlers (SDK v1.0.0)


def firectl(o):
    """One typical command line:
      firectl --firecracker-binary=ember --kernel=K --kernel-opts=ARGS --root-drive=ROOT
              --add-drive=CONTROL:rw --tap-device=tap0/MAC --vsock-device=UDS:3 --ncpus=1 --memory=256
              --cpu-template=T2A --metadata='{...}' -l FILE -s SOCK
    options.go: -l (FcFifoLogFile) makes firectl generate both FIFOs (fc_fifo, fc_metrics_fifo in a temp
    dir), and the SDK's CreateLogFiles reads fc_fifo into FILE (captureFifoToFile); nobody reads the
    metrics FIFO. --log-level defaults to Debug. Drives: --add-drive ones get ids "2", "3"... and the root
    drive "1" (is_read_only false) comes last. --metadata sets AllowMMDS on every NIC, and firectl puts
    the metadata (PUT /mmds) only after Machine.Start returned. The VMM command line is firectl's own
    VMCommandBuilder: just --api-sock SOCK. Ctrl-C: Machine.Shutdown (SendCtrlAltDel); then the deferred
    StopVMM (SIGTERM, harmless once the process is gone)."""
    name = "firectl"
    wd = o["workdir"]
    sock = os.path.join(wd, "firectl.sock")
    fifodir = os.path.join(wd, "fcfifo")
    os.mkdir(fifodir)
    log_fifo, metrics_fifo = os.path.join(fifodir, "fc_fifo"), os.path.join(fifodir, "fc_metrics_fifo")
    log_file = os.path.join(wd, "firectl.log")
    os.close(os.open(log_file, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o644))
    meta = {"hello": "firectl"}
    args = go_map_args(o["cmdline"])  # no static IP config: firectl passes --kernel-opts as is, via the map
    vmm = Vmm(["ip", "netns", "exec", o["netns"], o["ember"], "--api-sock", sock], o["console"], o["stderr"])
    c, polls, secs = wait_for_socket(vmm, sock)
    if c is None:
        return
    ok("%s StartVMM: the API answered the poll after %d polls, %.2f s" % (name, polls, secs))
    # CreateLogFiles: metrics FIFO, then log FIFO; captureFifoToFile opens the log FIFO for reading in a
    # goroutine (O_RDONLY blocks until a writer opens it: ember's PUT /logger).
    os.mkfifo(metrics_fifo, 0o700)
    os.mkfifo(log_fifo, 0o700)
    def capture():
        with open(log_fifo, "rb") as src, open(log_file, "ab") as dst:
            while True:
                d = src.read1(65536) if hasattr(src, "read1") else src.read(65536)
                if not d:
                    break
                dst.write(d)
                dst.flush()
    threading.Thread(target=capture, daemon=True).start()
    bootstrap_logging(c, name, log_fifo, metrics_fifo, "Debug")
    create_machine(c, name, 1, 256, True, o.get("cpu_template", ""))
    sdk_ok(c, name + " CreateBootSource", "PUT", "/boot-source", {"boot_args": args, "kernel_image_path": o["kernel"]}, 0.5)
    attach_drive(c, name, "2", o["control"], False, False)
    attach_drive(c, name, "1", o["rootfs"], True, False)
    create_nic(c, name, "1", "tap0", o["mac"])
    add_vsock(c, name, 3, os.path.join(wd, "firectl-v.sock"))
    config_mmds(c, name, ["1"])
    if not instance_start(c, name):
        return
    sdk_ok(c, name + " SetMetadata (after Start)", "PUT", "/mmds", meta)
    check("%s: the guest's init holds" % name, console_has(o["console"], "EMBER-HOLD: waiting", 1, 600))
    control(o["control"], "check mmds:169.254.169.254:hello")
    check("%s: the guest reads firectl's metadata over MMDS (PUT /mmds after Start)" % name,
          console_has(o["console"], "EMBER-CHECK: mmds get /hello: firectl", 1, 180))
    check("%s -l: ember's log lines came through the log FIFO into the file" % name,
          os.path.getsize(log_file) > 0)
    print("  %s: slowest request against the SDK's timeout: %s" % (name, c.slowest[1]), flush=True)
    # Ctrl-C: Machine.Shutdown -> SendCtrlAltDel; the guest was booted with ember.ctrlaltdel=reboot.
    sdk_ok(c, name + " Shutdown (SendCtrlAltDel)", "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    rc = vmm.wait(180 * go.TIMEOUT_SCALE ** 0.5)
    check("%s: Ctrl-Alt-Del reboots the guest and ember exits 0 with firectl's connection open (got %d)" % (name, rc),
          rc == 0)
    check("%s: one keep-alive connection for the whole run (%d dials, %d closes by ember)" % (name, c.dials, c.server_closes),
          c.dials == 1 and c.server_closes == 0)
    c.close()


def main():
    modes = {"sdk-start": sdk_start, "sdk-load": sdk_load, "sdk-jailer": sdk_jailer,
             "sdk-jailer-daemon": sdk_jailer_daemon, "firectl": firectl}
    if len(sys.argv) < 2 or sys.argv[1] not in modes:
        sys.exit("usage: replay_go_sdk.py %s --key value ..." % "|".join(modes))
    o = {}
    it = iter(sys.argv[2:])
    for k in it:
        o[k.lstrip("-").replace("-", "_")] = next(it)
    modes[sys.argv[1]](o)
    if go.FAILS:
        print("%d check(s) failed" % go.FAILS)
    sys.exit(1 if go.FAILS else 0)


if __name__ == "__main__":
    main()
