#!/usr/bin/env python3
"""The Go client side of the request-sequence replays (issue #15), as firecracker-go-sdk uses it:
net/http's Transport over the Unix socket (one keep-alive connection, Go's header order) carrying
go-openapi/runtime v0.24's requests (Accept/Content-Type application/json, JSON bodies with a trailing
newline) and reading answers as the generated client does (any 2xx is success, a failure's
{"fault_message": ...}, a 200's JSON chosen by Content-Type); plus the VMM process, the SDK's socket
poll, and the guest's console and control drive. Used by replay_go_sdk.py (which names the sources read).
Standard library only.
"""
import atexit
import json
import os
import random
import socket
import subprocess
import time

FAILS = 0
# The emulated KVM host (QEMU TCG) is slower than hardware: the SDK's request timeouts
# (500 ms, 250 ms for PUT /drives) are multiplied by this before they are checked.
TIMEOUT_SCALE = float(os.environ.get("REPLAY_TIMEOUT_SCALE", "1"))


def ok(msg):
    print("ok - " + msg, flush=True)


def not_ok(msg):
    global FAILS
    FAILS += 1
    print("not ok - " + msg, flush=True)


def check(msg, cond):
    (ok if cond else not_ok)(msg)
    return cond


def go_json(obj):
    """encoding/json's Encoder output for obj (keys already in the model's field order): compact, no HTML
    escaping, a trailing newline."""
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


class Answer:
    def __init__(self, status, headers, body, ms):
        self.status, self.headers, self.body, self.ms = status, headers, body, ms

    def json(self):
        return json.loads(self.body.decode())


class GoClient:
    """net/http's Transport as the SDK uses it: one persistent connection to the Unix socket."""

    def __init__(self, path):
        self.path = path
        self.sock = None
        self.buf = b""
        self.dials = 0
        self.server_closes = 0
        self.slowest = (0.0, "")  # the largest share of the SDK's timeout one request used, and which
        self.last_done = None  # when the last answer was read
        self.max_idle = 0.0  # the longest the connection sat idle between two requests (s)

    def _dial(self, timeout):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.path)
        self.sock, self.buf = s, b""
        self.dials += 1

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None

    def _idle_closed(self):
        """Go's Transport notices an idle connection the server closed (its background read) and redials."""
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(1)
            closed = data == b""
        except BlockingIOError:
            closed = False
        except OSError:
            closed = True
        self.sock.setblocking(True)
        return closed

    def _read_until(self, marker):
        while marker not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise OSError("connection closed mid-answer")
            self.buf += d
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_n(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise OSError("connection closed mid-body")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def request(self, method, path, body=None, timeout=None):
        """One request; body: an already ordered dict/list (sent as Go's JSON) or None. timeout: the SDK's
        (seconds) or None for none; a request is still bounded by 120 s here."""
        if self.last_done is not None:
            self.max_idle = max(self.max_idle, time.monotonic() - self.last_done)
        if self.sock is not None and self._idle_closed():
            self.server_closes += 1
            self.close()
        if self.sock is None:
            self._dial(120)
        self.sock.settimeout(120)
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: localhost", "User-Agent: Go-http-client/1.1"]
        data = b""
        if body is not None:
            data = go_json(body)
            lines.append("Content-Length: %d" % len(data))
        lines.append("Accept: application/json")
        if method in ("PUT", "PATCH", "POST", "DELETE"):
            lines.append("Content-Type: application/json")
        lines.append("Accept-Encoding: gzip")
        t0 = time.monotonic()
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        head = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for h in head[1:]:
            if ":" in h:
                k, v = h.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            payload = b""
            while True:
                n = int(self._read_until(b"\r\n").strip().split(b";")[0], 16)
                if n == 0:
                    self._read_until(b"\r\n")
                    break
                payload += self._read_n(n)
                self._read_n(2)
        elif status in (204, 304) or status < 200:
            payload = b""
        else:
            payload = self._read_n(int(headers.get("content-length", "0")))
        ms = (time.monotonic() - t0) * 1000
        self.last_done = time.monotonic()
        if headers.get("connection", "").lower() == "close":
            self.server_closes += 1
            self.close()
        a = Answer(status, headers, payload, ms)
        if timeout is not None and ms / (timeout * 1000) > self.slowest[0]:
            self.slowest = (ms / (timeout * 1000), "%s %s %.0f ms of %.0f ms" % (method, path, ms, timeout * 1000))
        if timeout is not None and ms > timeout * 1000 * TIMEOUT_SCALE:
            not_ok("%s %s answered in %.0f ms, over the SDK's %.0f ms timeout (x%g here)" %
                   (method, path, ms, timeout * 1000, TIMEOUT_SCALE))
        return a


def sdk_ok(c, name, method, path, body=None, timeout=None, want=204):
    """A call whose answer the SDK only checks for success (any 2xx); Firecracker answers `want`.
    A failure's body must be Firecracker's {"fault_message": ...}, which the SDK decodes (models.Error)."""
    a = c.request(method, path, body, timeout)
    good = 200 <= a.status < 300
    desc = "%s: %s %s -> %d" % (name, method, path, a.status)
    if not good:
        try:
            desc += " fault_message=%r" % a.json().get("fault_message")
        except (ValueError, AttributeError):
            desc += " (body is not the JSON error the SDK decodes: %r)" % a.body[:200]
    check(desc + (" (Firecracker: %d)" % want if a.status != want else ""), good and a.status == want)
    ct = a.headers.get("content-type", "")
    if a.body:
        check("%s: answer's Content-Type %r is one go-openapi decodes as JSON" % (name, ct),
              ct.split(";")[0].strip() in ("application/json", ""))
    return a


def sdk_get(c, name, path, timeout=None):
    """A GET whose 200 body the SDK decodes as JSON into its model (Content-Type picks the consumer)."""
    a = c.request("GET", path, None, timeout)
    check("%s: GET %s -> %d (want 200)" % (name, path, a.status), a.status == 200)
    ct = a.headers.get("content-type", "").split(";")[0].strip()
    check("%s: Content-Type %r is application/json" % (name, ct), ct == "application/json")
    try:
        return a.json()
    except ValueError:
        not_ok("%s: body is not JSON: %r" % (name, a.body[:200]))
        return None


def go_map_args(args):
    """kernelargs.go: the boot args go through a Go map (random order; a repeated key keeps its last value)."""
    m = {}
    for kv in args.split():
        k, _, v = kv.partition("=")
        m[k] = kv
    fields = list(m.values())
    random.shuffle(fields)
    return " ".join(fields)


def ip_boot_param(ip, gw, mask, ifname):
    """cni/vmconf StaticNetworkConf.IPBootParam with no nameservers."""
    return ":".join([ip, "", gw, mask, "", ifname, "off", "", "", ""])


# ---- The VMM process and the SDK's socket polling


VMMS = []


def kill_vmms():
    """At exit, whatever VMM a failed replay left running (by its own pid)."""
    for v in VMMS:
        if v.proc.poll() is None:
            v.proc.kill()
            v.proc.wait()


atexit.register(kill_vmms)


class Vmm:
    def __init__(self, cmd, console, errlog):
        self.out = open(console, "ab")
        self.err = open(errlog, "ab")
        self.console = console
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err)
        VMMS.append(self)

    def wait(self, seconds):
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return 124


def wait_for_socket(vmm, path, init_timeout=3.0, parent_exits=False):
    """machine.go waitForSocket: every 10 ms, stat the socket; once it exists, GET /machine-config (500 ms
    timeout) on the client; the first 2xx ends the wait. firecrackerInitTimeout defaults to 3 s; the
    emulated host gets TIMEOUT_SCALE times that. parent_exits: the process started is a daemonizing jailer,
    whose exit 0 is expected (the SDK then waits on its own). Returns (client, polls, seconds) or (None, ...)."""
    c = GoClient(path)
    t0 = time.monotonic()
    polls = 0
    deadline = t0 + init_timeout * TIMEOUT_SCALE
    while time.monotonic() < deadline:
        time.sleep(0.010)
        polls += 1
        if vmm.proc.poll() is not None and not (parent_exits and vmm.proc.returncode == 0):
            not_ok("the VMM exited (%d) before its API socket answered" % vmm.proc.returncode)
            return None, polls, time.monotonic() - t0
        if not os.path.exists(path):
            continue
        try:
            a = c.request("GET", "/machine-config", None, 0.5)
        except OSError:
            c.close()
            continue
        if 200 <= a.status < 300:
            return c, polls, time.monotonic() - t0
    not_ok("API socket %s did not answer GET /machine-config within %.1f s" % (path, init_timeout * TIMEOUT_SCALE))
    return None, polls, time.monotonic() - t0


def console_has(path, text, count=1, seconds=0.0):
    end = time.monotonic() + seconds
    while True:
        try:
            with open(path, "rb") as f:
                n = f.read().count(text.encode())
        except OSError:
            n = 0
        if n >= count or time.monotonic() >= end:
            return n >= count
        time.sleep(0.1)


def console_count(path, text):
    with open(path, "rb") as f:
        return f.read().count(text.encode())


def control(path, line):
    """The guest's ember.hold drive: its first line says what the held guest does (deploy/guest/init.sh)."""
    with open(path, "r+b" if os.path.exists(path) else "wb") as f:
        f.truncate(1 << 20)
        f.seek(0)
        f.write((line + "\n").encode().ljust(512, b"\0"))
