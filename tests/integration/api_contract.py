#!/usr/bin/env python3
"""Ember's REST API against Firecracker's published contract (swagger 2.0).

For every path + method Ember implements, sends a valid request and an
invalid one to a running ember and checks that the status code is one the
spec documents for that operation (an explicit code, or an error covered by
"default") and that the body matches the documented schema: for a 2xx its
$ref definition (required properties present, types and enums right), for
an error the Error definition. Operations Ember does not implement must
still answer with a documented status and an Error body. Post-boot
operations run against a VM whose guest is a few bytes that halt forever
(built here), so the VM stays up until it is told to stop.

Usage: api_contract.py --spec firecracker-api.yaml --ember BIN --work DIR
Prints "ok - ..." / "not ok - ..." lines and "contract: N passed, M failed".
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ember_http  # noqa: E402 (tests/lib: the HTTP-over-Unix-socket client the tests and benchmarks share)

PASSED = 0
FAILED = 0


def ok(msg):
    global PASSED
    PASSED += 1
    print(f"ok - {msg}")


def not_ok(msg):
    global FAILED
    FAILED += 1
    print(f"not ok - {msg}")


# ---------------------------------------------------------------- schema


class Loader(yaml.SafeLoader):
    """YAML 1.1 would read the enum value Off (Logger.level) as false: only true/false are booleans here."""


Loader.yaml_implicit_resolvers = {k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
                                  for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Loader.add_implicit_resolver("tag:yaml.org,2002:bool", __import__("re").compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                             list("tTfF"))


class Spec:
    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.load(f, Loader=Loader)
        self.defs = self.doc.get("definitions", {})

    def resolve(self, schema):
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.defs[name]
            seen += 1
            if seen > 20:
                raise ValueError("$ref loop")
        return schema

    def operation(self, template, method):
        return self.doc["paths"].get(template, {}).get(method.lower())

    def validate(self, schema, value, where, errors, notes):
        """Appends to errors what violates schema; to notes properties the schema does not name."""
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        schema = self.resolve(schema)
        if ref:
            where = f"{where}<{ref.rsplit('/', 1)[-1]}>"
        t = schema.get("type")
        if t is None and "properties" in schema:
            t = "object"
        if t == "object":
            if not isinstance(value, dict):
                errors.append(f"{where}: expected an object, got {json.dumps(value)[:80]}")
                return
            for r in schema.get("required", []):
                if r not in value:
                    errors.append(f"{where}: required property '{r}' missing")
            props = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for k, v in value.items():
                if k in props:
                    self.validate(props[k], v, f"{where}.{k}", errors, notes)
                elif isinstance(extra, dict):
                    self.validate(extra, v, f"{where}.{k}", errors, notes)
                elif extra is False:
                    errors.append(f"{where}: property '{k}' is not allowed")
                else:
                    notes.append(f"{where}: property '{k}' is not in the spec")
        elif t == "array":
            if not isinstance(value, list):
                errors.append(f"{where}: expected an array, got {json.dumps(value)[:80]}")
                return
            for i, v in enumerate(value):
                self.validate(schema.get("items", {}), v, f"{where}[{i}]", errors, notes)
        elif t == "string":
            if not isinstance(value, str):
                errors.append(f"{where}: expected a string, got {json.dumps(value)[:80]}")
            elif "enum" in schema and value not in [str(e) for e in schema["enum"]]:
                errors.append(f"{where}: '{value}' is not one of {schema['enum']}")
        elif t == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                errors.append(f"{where}: expected an integer, got {json.dumps(value)[:80]}")
            else:
                if "minimum" in schema and value < schema["minimum"]:
                    errors.append(f"{where}: {value} < minimum {schema['minimum']}")
                if "maximum" in schema and value > schema["maximum"]:
                    errors.append(f"{where}: {value} > maximum {schema['maximum']}")
        elif t == "number":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                errors.append(f"{where}: expected a number, got {json.dumps(value)[:80]}")
        elif t == "boolean":
            if not isinstance(value, bool):
                errors.append(f"{where}: expected a boolean, got {json.dumps(value)[:80]}")


# ---------------------------------------------------------------- the checks

COVERAGE = {}  # (METHOD, template) -> set of "valid"/"invalid"


def check(spec, sock, kind, method, template, path, body=None, want=None):
    """Sends one request and checks it against the operation's documented responses.

    kind: "valid" (want a 2xx) or "invalid" (want an error); want: an exact status, if any.
    Returns the parsed JSON body (or None)."""
    label = f"{kind} {method} {path}"
    op = spec.operation(template, method)
    if op is None:
        not_ok(f"{label}: {method} {template} is not in the spec")
        return None
    COVERAGE.setdefault((method, template), set()).add(kind)
    try:
        status, ctype, raw = ember_http.request(sock, method, path, body)
    except OSError as e:
        not_ok(f"{label}: no answer ({e})")
        return None
    responses = {str(k): v for k, v in op.get("responses", {}).items()}
    problems = []
    if str(status) in responses:
        resp, how = responses[str(status)], f"documented {status}"
    elif "default" in responses and status >= 400:
        resp, how = responses["default"], f"{status} under 'default'"
    else:
        resp, how = None, None
        problems.append(f"status {status} is not documented (documented: {', '.join(sorted(responses))})")
    if kind == "valid" and not 200 <= status < 300:
        problems.append(f"a valid request got {status}: {raw[:200]!r}")
    if kind == "invalid" and status < 400:
        problems.append(f"an invalid request got {status}")
    if want is not None and status != want:
        problems.append(f"want {want}, got {status}")
    parsed = None
    notes = []
    if resp is not None:
        schema = resp.get("schema")
        if schema is None:
            if raw:
                problems.append(f"{how} has no schema, but the body is {raw[:120]!r}")
        else:
            try:
                parsed = json.loads(raw)
            except ValueError:
                problems.append(f"{how}: body is not JSON: {raw[:120]!r}")
            else:
                errors = []
                spec.validate(schema, parsed, "body", errors, notes)
                problems += [f"{how}: {e}" for e in errors]
                if not ctype.startswith("application/json"):
                    problems.append(f"{how}: Content-Type is '{ctype}', the spec produces application/json")
                if status >= 400 and isinstance(parsed, dict) and not parsed.get("fault_message"):
                    problems.append(f"{how}: the Error has no fault_message text")
    if problems:
        not_ok(f"{label}: " + "; ".join(problems))
    else:
        extra = f" [{'; '.join(notes)}]" if notes else ""
        ok(f"{label}: {how}{extra}")
    return parsed


# ---------------------------------------------------------------- ember


def halting_guest(path):
    """A 64-bit ELF whose entry runs cli; hlt; jmp back: a guest that stays up doing nothing."""
    code = bytes([0xFA, 0xF4, 0xEB, 0xFD])
    base, off = 0x200000, 0x1000
    eh = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7,
                     2, 62, 1, base, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 1, 5, off, base, base, len(code), len(code), 0x1000)
    data = eh + ph
    data += b"\0" * (off - len(data)) + code
    with open(path, "wb") as f:
        f.write(data)


class Ember:
    def __init__(self, binary, work, name, prefix=()):
        self.sock = os.path.join(work, f"{name}.sock")
        self.out = open(os.path.join(work, f"{name}.out"), "wb")
        self.err_path = os.path.join(work, f"{name}.err")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([*prefix, binary, "--api-sock", self.sock, "--id", name],
                                     stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err)
        if ember_http.wait_answering(self.sock, timeout=10, alive=lambda: self.proc.poll() is None):
            return
        raise RuntimeError(f"ember {name} never answered on {self.sock}: " + open(self.err_path).read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.out.close()
        self.err.close()
        return rc


# ---------------------------------------------------------------- the run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--ember", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    spec = Spec(args.spec)
    work = args.work
    kernel = os.path.join(work, "halt.elf")
    halting_guest(kernel)
    disk1, disk2, disk3 = (os.path.join(work, f"disk{i}.img") for i in (1, 2, 3))
    for d, size in ((disk1, 1 << 20), (disk2, 2 << 20), (disk3, 1 << 20)):
        with open(d, "wb") as f:
            f.truncate(size)
    log, metrics = os.path.join(work, "ember.log"), os.path.join(work, "ember.metrics")

    # A network namespace with a tap, when this runs as root with iproute2: the NIC operations then run for real.
    ns, prefix = None, ()
    if os.geteuid() == 0 and shutil.which("ip"):
        name = f"ember-contract-{os.getpid()}"
        if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0:
            ns, prefix = name, ("ip", "netns", "exec", name)
            subprocess.run(["ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap", "vnet_hdr"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "tap0", "up"], check=True)
    if not ns:
        print("# no network namespace here: the valid NIC requests are skipped")

    try:
        run(spec, args.ember, work, kernel, (disk1, disk2, disk3), log, metrics, prefix, ns is not None)
    finally:
        if ns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    print("# coverage (operation: valid/invalid requests sent)")
    for (m, t), kinds in sorted(COVERAGE.items(), key=lambda x: (x[0][1], x[0][0])):
        print(f"#   {m:5} {t:32} {'+'.join(sorted(kinds))}")
    print(f"contract: {PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


IMPLEMENTED = {
    ("GET", "/"), ("GET", "/version"), ("GET", "/machine-config"), ("PUT", "/machine-config"),
    ("PATCH", "/machine-config"), ("GET", "/vm/config"), ("PUT", "/boot-source"), ("PUT", "/drives/{drive_id}"),
    ("PATCH", "/drives/{drive_id}"), ("PUT", "/network-interfaces/{iface_id}"),
    ("PATCH", "/network-interfaces/{iface_id}"), ("PUT", "/actions"), ("PATCH", "/vm"), ("PUT", "/logger"),
    ("PUT", "/metrics"), ("PUT", "/serial"), ("PUT", "/snapshot/create"), ("PUT", "/snapshot/load"),
    ("PUT", "/entropy"), ("PUT", "/vsock"), ("PUT", "/cpu-config"),
    ("PUT", "/mmds"), ("PATCH", "/mmds"), ("GET", "/mmds"), ("PUT", "/mmds/config"),
    ("PUT", "/balloon"), ("PATCH", "/balloon"), ("GET", "/balloon"), ("GET", "/balloon/statistics"),
    ("PATCH", "/balloon/statistics"),
}


def run(spec, binary, work, kernel, disks, log, metrics, prefix, have_net):
    disk1, disk2, disk3 = disks
    print("# before boot")
    e = Ember(binary, work, "contract-pre", prefix)
    s = e.sock
    try:
        info = check(spec, s, "valid", "GET", "/", "/")
        if info is not None and info.get("state") != "Not started":
            not_ok(f"GET / before boot: state is {info.get('state')!r}, want 'Not started'")
        check(spec, s, "valid", "GET", "/version", "/version")
        check(spec, s, "valid", "GET", "/machine-config", "/machine-config")
        check(spec, s, "valid", "PUT", "/machine-config", "/machine-config",
              {"vcpu_count": 2, "mem_size_mib": 64, "smt": False, "track_dirty_pages": False})
        check(spec, s, "invalid", "PUT", "/machine-config", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 64})
        check(spec, s, "invalid", "PUT", "/machine-config", "/machine-config", {"vcpu_count": 1})
        check(spec, s, "invalid", "PUT", "/machine-config", "/machine-config", "{not json")
        check(spec, s, "valid", "PATCH", "/machine-config", "/machine-config", {"vcpu_count": 1})
        check(spec, s, "invalid", "PATCH", "/machine-config", "/machine-config", {"mem_size_mib": "lots"})
        check(spec, s, "valid", "PUT", "/cpu-config", "/cpu-config", {"kvm_capabilities": []})
        check(spec, s, "invalid", "PUT", "/cpu-config", "/cpu-config", {"cpuid_modifiers": [{"leaf": "0x1"}]})
        check(spec, s, "valid", "PUT", "/boot-source", "/boot-source",
              {"kernel_image_path": kernel, "boot_args": "console=ttyS0"})
        check(spec, s, "invalid", "PUT", "/boot-source", "/boot-source", {"boot_args": "console=ttyS0"})
        check(spec, s, "invalid", "PUT", "/boot-source", "/boot-source", {"kernel_image_path": "/nonexistent/vmlinux"})
        check(spec, s, "valid", "PUT", "/drives/{drive_id}", "/drives/rootfs",
              {"drive_id": "rootfs", "path_on_host": disk1, "is_root_device": True, "is_read_only": False,
               "cache_type": "Unsafe", "io_engine": "Sync"})
        check(spec, s, "valid", "PUT", "/drives/{drive_id}", "/drives/data",
              {"drive_id": "data", "path_on_host": disk3, "is_root_device": False, "is_read_only": True})
        check(spec, s, "invalid", "PUT", "/drives/{drive_id}", "/drives/data",
              {"drive_id": "other", "path_on_host": disk1, "is_root_device": False})
        check(spec, s, "invalid", "PUT", "/drives/{drive_id}", "/drives/second_root",
              {"drive_id": "second_root", "path_on_host": disk1, "is_root_device": True})
        if have_net:
            check(spec, s, "valid", "PUT", "/network-interfaces/{iface_id}", "/network-interfaces/eth0",
                  {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"})
        check(spec, s, "invalid", "PUT", "/network-interfaces/{iface_id}", "/network-interfaces/eth1",
              {"iface_id": "eth1"})
        # "level" is documented as case-insensitive: a lowercase one is valid input.
        check(spec, s, "valid", "PUT", "/logger", "/logger",
              {"log_path": log, "level": "info", "show_level": True, "show_log_origin": False})
        check(spec, s, "invalid", "PUT", "/logger", "/logger", {"level": "Chatty"})
        check(spec, s, "valid", "PUT", "/metrics", "/metrics", {"metrics_path": metrics})
        check(spec, s, "invalid", "PUT", "/metrics", "/metrics", {"emit_id": True})
        check(spec, s, "valid", "PUT", "/serial", "/serial", {})
        check(spec, s, "invalid", "PUT", "/serial", "/serial", {"serial_out_path": 5})
        check(spec, s, "valid", "PUT", "/entropy", "/entropy",
              {"rate_limiter": {"bandwidth": {"size": 1048576, "one_time_burst": 0, "refill_time": 100}}})
        check(spec, s, "invalid", "PUT", "/entropy", "/entropy",
              {"rate_limiter": {"bandwidth": {"size": -1, "refill_time": 100}}})
        check(spec, s, "valid", "PUT", "/vsock", "/vsock", {"guest_cid": 3, "uds_path": os.path.join(work, "v.sock")})
        # Firecracker's server takes any u32 guest_cid (its swagger's minimum 3 is not enforced), so the
        # invalid body is one beyond u32.
        check(spec, s, "invalid", "PUT", "/vsock", "/vsock", {"guest_cid": 1 << 32, "uds_path": os.path.join(work, "v.sock")})
        check(spec, s, "invalid", "GET", "/balloon", "/balloon")  # none yet
        check(spec, s, "valid", "PUT", "/balloon", "/balloon",
              {"amount_mib": 16, "deflate_on_oom": True, "stats_polling_interval_s": 1})
        check(spec, s, "invalid", "PUT", "/balloon", "/balloon", {"amount_mib": 16})
        check(spec, s, "valid", "GET", "/balloon", "/balloon")
        check(spec, s, "invalid", "PATCH", "/balloon", "/balloon", {"amount_mib": 8})  # before boot
        check(spec, s, "invalid", "GET", "/balloon/statistics", "/balloon/statistics")  # before boot
        check(spec, s, "invalid", "PATCH", "/balloon/statistics", "/balloon/statistics",
              {"stats_polling_interval_s": 2})  # before boot
        check(spec, s, "invalid", "PUT", "/actions", "/actions", {"action_type": "Explode"})
        check(spec, s, "invalid", "PUT", "/actions", "/actions", {"action_type": "FlushMetrics"})  # before boot
        check(spec, s, "invalid", "PATCH", "/vm", "/vm", {"state": "Paused"})  # before boot
        check(spec, s, "invalid", "PATCH", "/drives/{drive_id}", "/drives/rootfs",
              {"drive_id": "rootfs", "path_on_host": disk2})  # before boot
        check(spec, s, "invalid", "PATCH", "/network-interfaces/{iface_id}", "/network-interfaces/eth0",
              {"iface_id": "eth0"})  # before boot
        check(spec, s, "invalid", "PATCH", "/mmds", "/mmds", {"latest": {}})  # before any PUT
        check(spec, s, "valid", "PUT", "/mmds", "/mmds", {"latest": {"meta-data": {"ami-id": "ami-1"}}})
        check(spec, s, "invalid", "PUT", "/mmds", "/mmds", "{not json")
        check(spec, s, "valid", "PATCH", "/mmds", "/mmds", {"latest": {"meta-data": {"ami-id": "ami-2"}}})
        check(spec, s, "valid", "GET", "/mmds", "/mmds")
        check(spec, s, "invalid", "GET", "/mmds", "/mmds", {"x": 1})
        if have_net:
            check(spec, s, "valid", "PUT", "/mmds/config", "/mmds/config", {"network_interfaces": ["eth0"]})
        check(spec, s, "invalid", "PUT", "/mmds/config", "/mmds/config", {"network_interfaces": ["nope"]})
        check(spec, s, "valid", "GET", "/vm/config", "/vm/config")
        for p in ("/", "/version", "/machine-config", "/vm/config"):  # a GET with a body is bad input
            check(spec, s, "invalid", "GET", p, p, {"x": 1})
        snap_state, snap_mem = os.path.join(work, "snap.state"), os.path.join(work, "snap.mem")
        check(spec, s, "invalid", "PUT", "/snapshot/create", "/snapshot/create",
              {"snapshot_path": snap_state, "mem_file_path": snap_mem})  # before boot
        check(spec, s, "invalid", "PUT", "/snapshot/load", "/snapshot/load",
              {"snapshot_path": snap_state, "mem_file_path": snap_mem})  # this process was configured
        unimplemented(spec, s)
        print("# boot (a guest that halts forever)")
        check(spec, s, "valid", "PUT", "/actions", "/actions", {"action_type": "InstanceStart"}, want=204)
        print("# after boot")
        info = check(spec, s, "valid", "GET", "/", "/")
        if info is not None and info.get("state") != "Running":
            not_ok(f"GET / after boot: state is {info.get('state')!r}, want 'Running'")
        check(spec, s, "valid", "GET", "/machine-config", "/machine-config")
        check(spec, s, "valid", "GET", "/vm/config", "/vm/config")
        check(spec, s, "invalid", "PUT", "/actions", "/actions", {"action_type": "InstanceStart"})
        check(spec, s, "valid", "PUT", "/actions", "/actions", {"action_type": "FlushMetrics"}, want=204)
        check(spec, s, "valid", "PUT", "/actions", "/actions", {"action_type": "SendCtrlAltDel"}, want=204)
        check(spec, s, "invalid", "PUT", "/snapshot/create", "/snapshot/create",
              {"snapshot_path": snap_state, "mem_file_path": snap_mem})  # running, not paused
        check(spec, s, "valid", "PATCH", "/vm", "/vm", {"state": "Paused"}, want=204)
        info = check(spec, s, "valid", "GET", "/", "/")
        if info is not None and info.get("state") != "Paused":
            not_ok(f"GET / while paused: state is {info.get('state')!r}, want 'Paused'")
        check(spec, s, "valid", "PUT", "/snapshot/create", "/snapshot/create",
              {"snapshot_type": "Full", "snapshot_path": snap_state, "mem_file_path": snap_mem}, want=204)
        check(spec, s, "invalid", "PUT", "/snapshot/create", "/snapshot/create",
              {"snapshot_type": "Incremental", "snapshot_path": snap_state, "mem_file_path": snap_mem})
        check(spec, s, "valid", "PATCH", "/vm", "/vm", {"state": "Resumed"}, want=204)
        check(spec, s, "invalid", "PATCH", "/vm", "/vm", {"state": "Frozen"})
        check(spec, s, "valid", "PATCH", "/drives/{drive_id}", "/drives/data",
              {"drive_id": "data", "path_on_host": disk2}, want=204)
        check(spec, s, "invalid", "PATCH", "/drives/{drive_id}", "/drives/nope",
              {"drive_id": "nope", "path_on_host": disk2})
        check(spec, s, "valid", "PATCH", "/drives/{drive_id}", "/drives/data",
              {"drive_id": "data", "rate_limiter": {"ops": {"size": 1000, "refill_time": 1000}}}, want=204)
        if have_net:
            check(spec, s, "valid", "PATCH", "/network-interfaces/{iface_id}", "/network-interfaces/eth0",
                  {"iface_id": "eth0"}, want=204)
        check(spec, s, "invalid", "PATCH", "/network-interfaces/{iface_id}", "/network-interfaces/nope",
              {"iface_id": "nope"})
        check(spec, s, "valid", "PATCH", "/balloon", "/balloon", {"amount_mib": 32}, want=204)
        check(spec, s, "invalid", "PATCH", "/balloon", "/balloon", {"amount_mib": 1000})  # more than the VM has
        check(spec, s, "valid", "GET", "/balloon/statistics", "/balloon/statistics")
        check(spec, s, "valid", "PATCH", "/balloon/statistics", "/balloon/statistics",
              {"stats_polling_interval_s": 2}, want=204)
        check(spec, s, "invalid", "PATCH", "/balloon/statistics", "/balloon/statistics",
              {"stats_polling_interval_s": 0})  # statistics cannot be switched off after boot
        # Pre-boot operations, now refused.
        check(spec, s, "invalid", "PUT", "/machine-config", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
        check(spec, s, "invalid", "PATCH", "/machine-config", "/machine-config", {"vcpu_count": 1})
        check(spec, s, "invalid", "PUT", "/boot-source", "/boot-source", {"kernel_image_path": kernel})
        check(spec, s, "invalid", "PUT", "/drives/{drive_id}", "/drives/late",
              {"drive_id": "late", "path_on_host": disk1, "is_root_device": False})
        check(spec, s, "invalid", "PUT", "/network-interfaces/{iface_id}", "/network-interfaces/late",
              {"iface_id": "late", "host_dev_name": "tap9"})
        check(spec, s, "invalid", "PUT", "/logger", "/logger", {"level": "Debug"})
        check(spec, s, "invalid", "PUT", "/metrics", "/metrics", {"metrics_path": metrics})
        check(spec, s, "invalid", "PUT", "/serial", "/serial", {})
        check(spec, s, "invalid", "PUT", "/entropy", "/entropy", {})
        check(spec, s, "invalid", "PUT", "/balloon", "/balloon", {"amount_mib": 1, "deflate_on_oom": False})
        unimplemented(spec, s)
    finally:
        rc = e.stop()
    if rc == 0:
        ok("ember stopped by SIGTERM with the guest running: exit 0")
    else:
        not_ok(f"ember exit {rc} on SIGTERM: " + open(e.err_path).read()[-500:])

    print("# a fresh process loads the snapshot")
    # The snapshot's vsock device listens on its uds_path again: the old socket file goes first, as with
    # Firecracker (or a load would name a new path in vsock_override).
    if os.path.exists(os.path.join(work, "v.sock")):
        os.unlink(os.path.join(work, "v.sock"))
    e = Ember(binary, work, "contract-load", prefix)
    s = e.sock
    try:
        check(spec, s, "invalid", "PUT", "/snapshot/load", "/snapshot/load",
              {"snapshot_path": snap_state})  # no memory backend
        check(spec, s, "valid", "PUT", "/snapshot/load", "/snapshot/load",
              {"snapshot_path": snap_state, "mem_backend": {"backend_type": "File", "backend_path": snap_mem},
               "track_dirty_pages": False, "resume_vm": False}, want=204)
        info = check(spec, s, "valid", "GET", "/", "/")
        if info is not None and info.get("state") != "Paused":
            not_ok(f"GET / after a load without resume_vm: state is {info.get('state')!r}, want 'Paused'")
        check(spec, s, "valid", "GET", "/vm/config", "/vm/config")
        check(spec, s, "valid", "PATCH", "/vm", "/vm", {"state": "Resumed"}, want=204)
    finally:
        rc = e.stop()
    if rc == 0:
        ok("the restored ember stopped by SIGTERM: exit 0")
    else:
        not_ok(f"restored ember exit {rc} on SIGTERM: " + open(e.err_path).read()[-500:])

    missing = [f"{m} {t}" for (m, t) in sorted(IMPLEMENTED) if COVERAGE.get((m, t)) != {"valid", "invalid"}]
    if missing and not have_net:
        missing = [x for x in missing if "network-interfaces" not in x and "/mmds/config" not in x]
    if missing:
        not_ok("operations without both a valid and an invalid request: " + ", ".join(missing))
    else:
        ok(f"every implemented operation got a valid and an invalid request ({len(IMPLEMENTED)} operations)")


def unimplemented(spec, sock):
    """Every documented operation Ember does not implement: a documented error status, an Error body."""
    bodies = {"put": {}, "patch": {}}
    for template, ops in spec.doc["paths"].items():
        for method in ops:
            if method not in ("get", "put", "patch"):
                continue
            m = method.upper()
            if (m, template) in IMPLEMENTED:
                continue
            path = template.replace("{id}", "p0")
            check(spec, sock, "invalid", m, template, path, bodies.get(method))


if __name__ == "__main__":
    sys.exit(main())
