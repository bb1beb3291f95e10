#!/usr/bin/env python3
"""Request-sequence replay of firecracker-containerd's runtime shim (issue #15) against ember: one VM
from CreateVM to StopVM, with a container's rootfs swapped onto its stub drive and back, and every answer
the runtime (through firecracker-go-sdk) parses checked.

Read (never copied) to get the sequence right: firecracker-containerd main at
be68640a5d2237f5b427c37c1f5809ec154126c5 (2026-07-16), built on firecracker-go-sdk
v1.0.1-0.20250818195323-ed6ff32aa924 (its handlers.go, machine.go, firecracker.go, command_builder.go,
vsock/dial.go and client/models are the same as at the SDK main 6fb280e that replay_go_sdk.py names):
  runtime/service.go   createVM, buildVMConfiguration, buildRootDrive, mountDrives, SetVMMetadata /
                       UpdateVMMetadata / GetVMMetadata, PauseVM / ResumeVM, StopVM -> terminate (isPaused,
                       the agent's Shutdown, machine.Wait; forceTerminate: SIGKILL), monitorVMExit, cleanup;
                       defaultVsockPort 10789, defaultStopVMTimeout 5 s, defaultCreateVMTimeout 60 s
  runtime/noop_jailer.go  the default when CreateVM has no JailerConfig: VMCommandBuilder with
                       `--api-sock firecracker.sock --id VMID` (relative: the shim's working directory is its
                       shim dir, firecracker-control/local.go), no --no-seccomp; Stop(force) = SIGKILL;
                       Close = RemoveAll(shim dir)
  runtime/drive_handler.go  stub drives: files ctrstub<N> (one per container) and drivemntstub<N> (one per
                       DriveMount) in the shim dir, O_EXCL 0600, holding internal.MagicStubBytes, a length
                       byte and the drive id, padded to 512-byte sectors; drive id = base32 (no padding) of
                       the file name; Reserve (task Create): PATCH the stub's drive to the container's
                       rootfs; Release (task Delete): PATCH back to the stub's *base name* (a relative path);
                       PatchAndMount (drive mounts, after the agent answers): PATCH to the host path
  runtime/helpers.go   machineConfigurationFromProto (1 vCPU, 128 MiB, smt from the request: false)
  internal/vm/dir.go, internal/common.go  <shim_base_dir>/<namespace>#<vmID>/ holding firecracker.sock,
                       firecracker.vsock, fc-logs.fifo, fc-metrics.fifo (mkfifo 0700 by the runtime, read by
                       nobody in the runtime: GetVMInfo hands the paths to its client)
  internal/cpu_template.go  cpu_template is sent only when /proc/cpuinfo's first vendor_id is GenuineIntel
  internal/debug/debug.go   log_levels ["info", "firecracker:output"]: PUT /logger level "Info", and the
                       VMM's stdout/stderr go to the shim's logger (with "info" alone they are /dev/null)
  SDK machine.go addVsock   `guest_cid: int64(dev.CID)`: the runtime's VsockDevice{Path, ID: "agent_api"}
                       has no CID, so the SDK sends guest_cid 0, which Firecracker accepts
  SDK vsock/dial.go    DialContext: every 100 ms (a ticker) dial the Unix socket (100 ms), write
                       "CONNECT <port>\\n" (100 ms), read a line (1 s) that must start with "OK "; a failed
                       or missing ack is temporary (retried), a failed dial other than a temporary errno is
                       not (CreateVM fails)

The sequence (CreateVM with no jailer, no NIC, one DriveMount; then a task's rootfs; then StopVM):
  1. mkdir the shim dir (0700); mkfifo fc-logs.fifo and fc-metrics.fifo (0700); the stub files.
  2. Machine.Start: `ember --api-sock firecracker.sock --id VMID` in the shim dir; the SDK's socket poll;
     CreateLogFiles (open each FIFO O_RDWR|O_CREAT|O_APPEND, close); PUT /logger, /metrics;
     PUT /machine-config (+ GET); PUT /boot-source (args through a Go map); PUT /drives/root_drive
     (read-only root), the container stub, the drive-mount stub; PUT /vsock {guest_cid: 0, uds_path:
     firecracker.vsock, vsock_id: agent_api}; (no NIC: no PUT /network-interfaces, no /mmds/config);
     InstanceStart.
  3. The agent: vsock.DialContext(firecracker.vsock, 10789) (the guest's vsock echo service stands in for
     the agent on its port); the ttrpc connection stays open until the stop.
  4. mountDrives: PATCH /drives/<drive-mount stub id> {drive_id, path_on_host: the host path}.
  5. SetVMMetadata (PUT /mmds), GetVMMetadata (GET /mmds), UpdateVMMetadata (PATCH /mmds), GetVMMetadata;
     PauseVM / ResumeVM (PATCH /vm), GET / between.
  6. A task: Create reserves the container stub (PATCH to the rootfs image); Delete releases it (PATCH back
     to "ctrstub0", relative to the VMM's working directory).
  7. StopVM: GET / (not Paused), the agent's Shutdown (the guest reboots), machine.Wait (5 s); the SDK's
     cleanup removes firecracker.sock; cleanup removes the shim dir.

What stands in for the agent (not the runtime's own requests): the guest's init (deploy/guest/init.sh) holds
on the drive-mount stub's device and prints its first line: the stub's drive id (as the agent finds stub
drives by their marker), then, once PATCHed, the control file's lines, which run checks that read the
container stub's device (its size tells the stub from the rootfs image) and finally "reboot" (the agent's
Shutdown). The replay waits for the guest to print the stub's id before step 4, so that it sees it.

Usage: replay_containerd.py --workdir W --ember BIN --kernel K --rootfs R --control C --image I
       --console OUT --stderr ERR --cmdline ARGS
Prints "ok - ..." / "not ok - ..." lines and exits 1 if any failed. Standard library only.
"""
import base64
import errno
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import replay_go_client as go
from replay_go_client import check, console_has, control, go_map_args, ok, sdk_get, sdk_ok, wait_for_socket
from replay_go_sdk import (add_vsock, attach_drive, bootstrap_logging, check_instance_info, create_machine,
                           instance_start)

AGENT_PORT = 10789  # runtime/service.go defaultVsockPort
MAGIC_STUB_BYTES = bytes([214, 244, 216, 245, 215, 177, 177, 177])  # internal/common.go
SECTOR = 512
STOP_VM_TIMEOUT = 5.0  # defaultStopVMTimeout
CREATE_VM_TIMEOUT = 60.0  # defaultCreateVMTimeout
# The errnos Go's syscall.Errno calls Temporary(): a dial failing with one of them is retried.
TEMPORARY_ERRNOS = {errno.EINTR, errno.EMFILE, errno.ENFILE, errno.ECONNRESET, errno.ECONNABORTED, errno.EAGAIN,
                    errno.ETIMEDOUT}


def stub_drive_id(file_name):
    """stubPathToDriveID: base32 (standard alphabet, no padding) of the stub's file name."""
    return base64.b32encode(file_name.encode()).decode().rstrip("=")


def new_stub_drive(path):
    """newStubDrive: O_CREATE|O_EXCL 0600, the magic bytes, the id's length as one byte, the id; then the
    file truncated up to whole 512-byte sectors. Returns the drive id."""
    drive_id = stub_drive_id(os.path.basename(path))
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, MAGIC_STUB_BYTES + bytes([len(drive_id)]) + drive_id.encode())
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    os.truncate(path, (size + SECTOR - 1) // SECTOR * SECTOR)
    return drive_id


def host_is_intel():
    """internal.SupportCPUTemplate: the first vendor_id line of /proc/cpuinfo."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip() == "GenuineIntel"
    return False


class ShimVmm:
    """The VMM as the noop jailer's command starts it: in the shim's working directory, stdout and stderr to
    the shim's logger (files here). Registered for a kill at exit if a failed replay leaves it running."""

    def __init__(self, cmd, cwd, console, errlog):
        self.out, self.err = open(console, "ab"), open(errlog, "ab")
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err)
        go.VMMS.append(self)


def vsock_dial(path, port, deadline):
    """vsock.DialContext: a 100 ms ticker; each attempt dials (100 ms), writes CONNECT (100 ms) and reads a
    line (1 s) that must start with "OK " (timeouts times TIMEOUT_SCALE). A bad or missing ack is retried;
    a dial error that is not temporary ends the dial, as it fails CreateVM. Returns (socket or None, attempts,
    why the attempts failed, the slowest ack in s)."""
    scale = go.TIMEOUT_SCALE
    t0 = time.monotonic()
    attempts, failures, slowest = 0, {}, 0.0
    tick = 1
    while True:
        # Go's ticker drops ticks a slow attempt missed: the next attempt starts at the next tick.
        now = time.monotonic()
        while t0 + 0.1 * tick <= now:
            tick += 1
        if t0 + 0.1 * tick > deadline:
            return None, attempts, failures, slowest
        time.sleep(t0 + 0.1 * tick - now)
        attempts += 1
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(0.1 * scale)
        try:
            s.connect(path)
        except OSError as e:
            s.close()
            if isinstance(e, socket.timeout) or e.errno in TEMPORARY_ERRNOS:
                failures["dial: " + str(e)] = failures.get("dial: " + str(e), 0) + 1
                continue
            failures["non-temporary dial error: " + str(e)] = 1
            return None, attempts, failures, slowest
        try:
            s.sendall(b"CONNECT %d\n" % port)
        except OSError as e:
            s.close()
            failures["CONNECT write: " + str(e)] = 1
            return None, attempts, failures, slowest
        line, t_ack, why = b"", time.monotonic(), "ack: the connection closed without one"
        s.settimeout(1.0 * scale)
        try:
            while not line.endswith(b"\n"):
                d = s.recv(1)
                if not d:
                    break
                line += d
        except socket.timeout:
            why = "ack: none within 1 s (x%g)" % scale
        except OSError as e:
            why = "ack: %s" % e
        slowest = max(slowest, time.monotonic() - t_ack)
        if line.endswith(b"\n") and line.startswith(b"OK "):
            s.settimeout(None)
            return s, attempts, failures, slowest
        if line:
            why = "ack: %r" % line
        failures[why] = failures.get(why, 0) + 1
        s.close()


class LateFifoReader(threading.Thread):
    """A client reading the log FIFO whose path GetVMInfo returned: it opens it only after the VM runs."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.data = path, b""

    def run(self):
        with open(self.path, "rb") as f:
            while True:
                d = f.read1(65536)
                if not d:
                    return
                self.data += d


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
    name = "containerd"
    scale = go.TIMEOUT_SCALE
    console = o["console"]
    vmid = "ember-ctrd-vm1"
    shim_dir = os.path.join(o["workdir"], "shim-base", "default#" + vmid)
    # 1. firecracker-control's shimDir.Mkdir, then the shim (working directory: the shim dir).
    os.makedirs(shim_dir, 0o700)
    os.chdir(shim_dir)
    log_fifo, metrics_fifo = os.path.join(shim_dir, "fc-logs.fifo"), os.path.join(shim_dir, "fc-metrics.fifo")
    os.mkfifo(log_fifo, 0o700)
    os.mkfifo(metrics_fifo, 0o700)
    ctr_stub = os.path.join(shim_dir, "ctrstub0")
    ctr_id = new_stub_drive(ctr_stub)
    mnt_stub = os.path.join(shim_dir, "drivemntstub0")
    mnt_id = new_stub_drive(mnt_stub)
    intel = host_is_intel()
    template = "T2" if intel else ""

    # 2. Machine.Start: the noop jailer's command, then the FcInit handlers.
    cmd = [o["ember"], "--api-sock", "firecracker.sock", "--id", vmid]
    print("  %s: (in %s) %s" % (name, shim_dir, " ".join(cmd)), flush=True)
    t0 = time.monotonic()
    vmm = ShimVmm(cmd, shim_dir, console, o["stderr"])
    c, polls, secs = wait_for_socket(vmm, os.path.join(shim_dir, "firecracker.sock"))
    if c is None:
        return
    ok("%s StartVMM: the API answered the SDK's poll after %d polls, %.2f s" % (name, polls, secs))
    for path in (metrics_fifo, log_fifo):  # CreateLogFiles: LogPath/MetricsPath set, LogFifo/MetricsFifo not
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600))
    bootstrap_logging(c, name, log_fifo, metrics_fifo, "Info")
    create_machine(c, name, 1, 128, False, template)
    print("  %s: cpu_template %s (the host is %s)" % (name, template or "not sent", "Intel" if intel else "not Intel"),
          flush=True)
    sdk_ok(c, name + " CreateBootSource", "PUT", "/boot-source",
           {"boot_args": go_map_args(o["cmdline"]), "kernel_image_path": o["kernel"]}, 0.5)
    # buildRootDrive (DrivesBuilder: root_drive only), then CreateContainerStubs, then CreateDriveMountStubs.
    attach_drive(c, name, "root_drive", o["rootfs"], True, True)
    attach_drive(c, name, ctr_id, ctr_stub, False, False)
    attach_drive(c, name, mnt_id, mnt_stub, False, True)
    add_vsock(c, name, 0, "firecracker.vsock", "agent_api")
    if not instance_start(c, name):
        return
    pid = vmm.proc.pid
    ok("%s: Machine.Start returned after %.2f s (pid %d, the noop jailer's pid handler)" %
       (name, time.monotonic() - t0, pid))

    # 3. The agent over vsock, within CreateVM's 60 s (times the scale).
    agent, attempts, failures, slowest = vsock_dial("firecracker.vsock", AGENT_PORT, t0 + CREATE_VM_TIMEOUT * scale)
    check("%s: vsock.DialContext(firecracker.vsock, %d) got \"OK <port>\" after %d attempt(s), %.1f s after Start "
          "began (retried: %s; slowest ack %.2f s)" % (name, AGENT_PORT, attempts, time.monotonic() - t0,
                                                      "; ".join("%s x%d" % kv for kv in failures.items()) or "none",
                                                      slowest), agent is not None)
    if agent is None:
        return
    payload = os.urandom(8192)  # ttrpc frames both ways: the echo returns them
    agent.sendall(payload)
    back = b""
    agent.settimeout(30 * scale)
    try:
        while len(back) < len(payload):
            d = agent.recv(65536)
            if not d:
                break
            back += d
    except OSError:
        pass
    check("%s: bytes on the agent connection come back through the guest (%d of %d)" % (name, len(back),
          len(payload)), back == payload)
    logs = LateFifoReader(log_fifo)
    logs.start()

    # 4. mountDrives: the drive-mount stub PATCHed to its host path (the control file here).
    check("%s: the guest reads the drive-mount stub's marker: its drive id %s" % (name, mnt_id),
          console_has(console, "EMBER-HOLD: /dev/vdc says '%s'" % mnt_id, 1, 120 * scale ** 0.5))
    control(o["control"], "check dd:/dev/vdb:32:512")
    sdk_ok(c, name + " mountDrives (UpdateGuestDrive)", "PATCH", "/drives/" + mnt_id,
           {"drive_id": mnt_id, "path_on_host": o["control"]})
    check("%s: the guest sees the drive mount's host file in place of its stub" % name,
          console_has(console, "EMBER-HOLD: /dev/vdc says 'check dd:/dev/vdb:32:512'", 1, 120 * scale ** 0.5))
    check("%s: the container stub is one sector to the guest (dd read 512 bytes)" % name,
          console_has(console, "EMBER-CHECK: dd /dev/vdb read 512 bytes", 1, 120 * scale ** 0.5))

    # 5. Metadata, pause and resume.
    meta = {"latest": {"meta-data": {"container": "ctr1", "vm": vmid}}}
    sdk_ok(c, name + " SetVMMetadata (SetMetadata)", "PUT", "/mmds", meta)
    got = sdk_get(c, name + " GetVMMetadata", "/mmds")
    check("%s GetVMMetadata: the metadata set (%r)" % (name, got), got == meta)
    sdk_ok(c, name + " UpdateVMMetadata (UpdateMetadata)", "PATCH", "/mmds", {"latest": {"meta-data": {"vm": "v2"}}})
    got = sdk_get(c, name + " GetVMMetadata", "/mmds")
    check("%s GetVMMetadata after the update (%r)" % (name, got),
          got == {"latest": {"meta-data": {"container": "ctr1", "vm": "v2"}}})
    sdk_ok(c, name + " PauseVM", "PATCH", "/vm", {"state": "Paused"}, 0.5)
    check_instance_info(c, name + " (paused)", "Paused", vmid)
    sdk_ok(c, name + " ResumeVM", "PATCH", "/vm", {"state": "Resumed"}, 0.5)
    check_instance_info(c, name + " (resumed)", "Running", vmid)

    # 6. A task: Create reserves the container stub, Delete releases it (a relative path back).
    sdk_ok(c, name + " task Create (StubDriveHandler.Reserve)", "PATCH", "/drives/" + ctr_id,
           {"drive_id": ctr_id, "path_on_host": o["image"]})
    control(o["control"], "check dd:/dev/vdb:16:1024")
    check("%s: the guest reads the container's rootfs image on the stub's drive (dd read 16384 bytes)" % name,
          console_has(console, "EMBER-CHECK: dd /dev/vdb read 16384 bytes", 1, 120 * scale ** 0.5))
    sdk_ok(c, name + " task Delete (StubDriveHandler.Release)", "PATCH", "/drives/" + ctr_id,
           {"drive_id": ctr_id, "path_on_host": os.path.basename(ctr_stub)})
    control(o["control"], "check dd:/dev/vdb:8:2048")
    check("%s: the released drive is the stub again, found relative to the VMM's working directory "
          "(dd read 512 bytes)" % name,
          console_has(console, "EMBER-CHECK: dd /dev/vdb read 512 bytes", 2, 120 * scale ** 0.5))

    # 7. StopVM -> terminate.
    got = sdk_get(c, name + " terminate (isPaused: DescribeInstanceInfo)", "/")
    check("%s terminate: state %r is not Paused, so the agent is asked" % (name, got and got.get("state")),
          got is not None and got.get("state") == "Running")
    check("%s: one keep-alive connection, redialed only after an idle gap of 30 s or more (%d dials, %d closes by "
          "ember, longest idle %.1f s)" % (name, c.dials, c.server_closes, c.max_idle),
          c.server_closes == 0 and c.dials == 1 or c.max_idle >= 30 and c.dials == c.server_closes + 1)
    print("  %s: slowest request against the SDK's timeout: %s" % (name, c.slowest[1]), flush=True)
    control(o["control"], "reboot")  # the agent's Shutdown
    t_stop = time.monotonic()
    try:
        rc = vmm.proc.wait(STOP_VM_TIMEOUT * scale)
        killed = False
    except subprocess.TimeoutExpired:
        vmm.proc.kill()  # forceTerminate: the noop jailer's Stop(true)
        rc, killed = vmm.proc.wait(), True
    check("%s StopVM: the guest's shutdown ends ember within machine.Wait's %.0f s (x%g): exit %d after %.1f s%s" %
          (name, STOP_VM_TIMEOUT, scale, rc, time.monotonic() - t_stop, ", SIGKILL needed" if killed else ""),
          rc == 0 and not killed)
    agent.settimeout(10)
    try:
        eof = agent.recv(1) == b""
    except OSError:
        eof = True
    agent.close()
    check("%s: the agent's connection ends with the VM" % name, eof)
    c.close()
    try:
        os.remove("firecracker.sock")  # the SDK's cleanup function (startVMM)
    except FileNotFoundError:
        pass
    logs.join(10)
    check("%s: a late reader of the log FIFO sees ember's lines, then EOF at its exit" % name, not logs.is_alive())
    text = logs.data.decode(errors="replace")
    check("%s: the log FIFO, opened before any reader, kept the guest_cid 0 warning for the late reader (%d bytes)" %
          (name, len(logs.data)), "guest_cid 0 is reserved" in text)
    # What ember leaves in the shim dir is its own: the FIFOs and stubs are the runtime's, the vsock socket
    # stays (as Firecracker leaves it); nothing else, and nobody listens on the socket.
    left = sorted(os.listdir(shim_dir))
    check("%s: the shim dir holds only the runtime's files and the vsock socket (%s)" % (name, " ".join(left)),
          left == ["ctrstub0", "drivemntstub0", "fc-logs.fifo", "fc-metrics.fifo", "firecracker.vsock"])
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect("firecracker.vsock")
        listening = True
    except OSError:
        listening = False
    probe.close()
    check("%s: nobody listens on firecracker.vsock any more" % name, not listening)
    procs = subprocess.run(["pgrep", "-f", "--", "--id " + vmid], capture_output=True, text=True).stdout.split()
    check("%s: no process of the VM is left (%s)" % (name, " ".join(procs) or "none"), not procs)
    # cleanup: the noop jailer's Close.
    os.chdir(o["workdir"])
    shutil.rmtree(shim_dir)
    check("%s: the runtime's cleanup removed the shim dir" % name, not os.path.exists(shim_dir))


if __name__ == "__main__":
    main()
