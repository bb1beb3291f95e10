#!/usr/bin/env python3
"""Hostile HTTP against ember's API socket (issue #16): every malformed or ambiguous
request gets exactly one well-formed Firecracker-shaped JSON error, and hundreds of
idle or trickling connections do not keep GET / from being answered.

usage: api_http_hostile.py EMBER_BINARY WORKDIR
Prints "ok - ..." / "not ok - ..." lines (tests/integration/lib.sh's format); exit 1 on a failure."""
import json
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time

FAILS = 0


def ok(msg):
    print("ok - " + msg, flush=True)


def not_ok(msg):
    global FAILS
    FAILS += 1
    print("not ok - " + msg, flush=True)


def connect(path, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)  # blocking: waits for room in the listen backlog (with a timeout it fails at once)
    s.settimeout(timeout)
    return s


def read_all(s, deadline):
    """Everything the server sends until it closes (or the deadline)."""
    data = b""
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


RESPONSE = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n", re.S)


def parse_responses(data):
    """Splits data into (status, headers, body) tuples; raises ValueError on anything else."""
    out = []
    while data:
        m = RESPONSE.match(data)
        if not m:
            raise ValueError("not an HTTP/1.1 response: %r" % data[:80])
        headers = {}
        for line in m.group(2).split(b"\r\n")[:-1]:
            k, _, v = line.partition(b":")
            if k.lower() in headers:
                raise ValueError("header %r twice" % k)
            headers[k.lower()] = v.strip()
        data = data[m.end():]
        status = int(m.group(1))
        if status in (100, 204):
            body = b""
        else:
            if b"content-length" not in headers:
                raise ValueError("no Content-Length")
            n = int(headers[b"content-length"])
            if len(data) < n:
                raise ValueError("body shorter than its Content-Length")
            body, data = data[:n], data[n:]
        out.append((status, headers, body))
    return out


def fault_of(resp):
    """The fault_message of a Firecracker-shaped error response, or raises ValueError."""
    status, headers, body = resp
    if headers.get(b"content-type") != b"application/json":
        raise ValueError("Content-Type %r" % headers.get(b"content-type"))
    obj = json.loads(body.decode("utf-8"))
    if not isinstance(obj, dict) or list(obj) != ["fault_message"] or not isinstance(obj["fault_message"], str):
        raise ValueError("not {\"fault_message\": str}: %r" % body[:80])
    msg = obj["fault_message"]
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in msg):
        raise ValueError("control character in the fault_message %r" % msg)
    return msg


def one_error(sock_path, name, raw, want_status, want_text=None, timeout=5):
    """Sends raw on a new connection: the answer must be one JSON error with want_status, then close."""
    try:
        s = connect(sock_path, timeout)
        try:
            s.sendall(raw)
        except BrokenPipeError:
            pass
        data = read_all(s, time.monotonic() + timeout)
        s.close()
        resps = [r for r in parse_responses(data) if r[0] != 100]
        if len(resps) != 1:
            raise ValueError("%d responses" % len(resps))
        msg = fault_of(resps[0])
        if resps[0][0] != want_status:
            raise ValueError("status %d (%s)" % (resps[0][0], msg))
        if want_text and want_text not in msg:
            raise ValueError("fault_message %r lacks %r" % (msg, want_text))
        ok("%s: one %d JSON error (%s)" % (name, want_status, msg))
    except (OSError, ValueError) as e:
        not_ok("%s: want one %d JSON error: %s" % (name, want_status, e))


GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n"
PUT_MC = b"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\n"
BODY = b'{"vcpu_count":1,"mem_size_mib":128}'


def chunked(data):
    return PUT_MC + b"Transfer-Encoding: chunked\r\n\r\n" + data


CASES = [
    ("Content-Length abc", PUT_MC + b"Content-Length: abc\r\n\r\n", 400, "Content-Length"),
    ("Content-Length +2", PUT_MC + b"Content-Length: +2\r\n\r\n{}", 400, "Content-Length"),
    ("Content-Length '2, 2'", PUT_MC + b"Content-Length: 2, 2\r\n\r\n{}", 400, "Content-Length"),
    ("Content-Length empty", PUT_MC + b"Content-Length: \r\n\r\n", 400, "Content-Length"),
    ("Content-Length -1", PUT_MC + b"Content-Length: -1\r\n\r\n", 400, "Content-Length"),
    ("Content-Length 21 digits", PUT_MC + b"Content-Length: 100000000000000000000\r\n\r\n", 400, "Content-Length"),
    ("two different Content-Length", PUT_MC + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "Content-Length"),
    ("two equal Content-Length", PUT_MC + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400, "Content-Length"),
    ("Content-Length with Transfer-Encoding",
     PUT_MC + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "ambiguous"),
    ("Transfer-Encoding: gzip, chunked", PUT_MC + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "gzip"),
    ("Transfer-Encoding: chunked, chunked", PUT_MC + b"Transfer-Encoding: chunked, chunked\r\n\r\n", 501, None),
    ("two Transfer-Encoding headers",
     PUT_MC + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, None),
    ("Transfer-Encoding in HTTP/1.0",
     b"PUT /machine-config HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "HTTP/1.0"),
    ("NUL in the method", b"PUT\0 /machine-config HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 400, "method"),
    ("lower-case method", b"put /machine-config HTTP/1.1\r\n\r\n", 400, "method"),
    ("bad chunk size", chunked(b"zz\r\n{}\r\n0\r\n\r\n"), 400, "chunk size"),
    ("chunk size over 8 hex digits", chunked(b"100000000\r\n"), 400, "chunk size"),
    ("negative chunk size", chunked(b"-5\r\n"), 400, "chunk size"),
    ("chunk extension", chunked(b"2;x=y\r\n{}\r\n0\r\n\r\n"), 400, "extension"),
    ("chunk longer than its size", chunked(b"1\r\n{}\r\n0\r\n\r\n"), 400, "CRLF"),
    ("chunked trailer", chunked(b"2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n"), 400, "railer"),
    ("chunked body over the limit", chunked(b"c801\r\n" + b" " * 51201 + b"\r\n0\r\n\r\n"), 413, "51200"),
    ("Content-Length over the limit, body sent", PUT_MC + b"Content-Length: 51201\r\n\r\n" + b" " * 51201, 413, "51200"),
    ("Content-Length 10 GB with Expect", PUT_MC + b"Content-Length: 10000000000\r\nExpect: 100-continue\r\n\r\n", 413,
     "51200"),
    ("Expect: something else", PUT_MC + b"Expect: 200-ok\r\nContent-Length: 2\r\n\r\n", 417, "Expect"),
    ("2000-byte path", b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n", 414, None),
    ("9000-byte header", GET + b"X-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, None),
    ("100 headers", GET + b"".join(b"X-%d: y\r\n" % i for i in range(100)) + b"\r\n", 431, None),
    ("HTTP/0.9 request", b"GET /\r\n", 400, "HTTP/0.9"),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "HTTP/2.0"),
    ("HTTP/2.0 request line", b"GET / HTTP/2.0\r\n\r\n", 505, None),
    ("HTTP/1.2", b"GET / HTTP/1.2\r\n\r\n", 505, None),
    ("garbage request line", b"GARBAGE\r\n\r\n", 400, "request line"),
    ("empty request line", b"\r\n\r\n", 400, None),
    ("absolute-form target", b"GET http://localhost/ HTTP/1.1\r\n\r\n", 400, "start with '/'"),
    ("two spaces in the request line", b"GET  / HTTP/1.1\r\n\r\n", 400, None),
    ("ESC in the path", b"GET /\x1b[31m HTTP/1.1\r\n\r\n", 400, "\\x1b"),
    ("bare LF line ends", b"GET / HTTP/1.1\n\n", 400, "LF"),
    ("bare CR in a header", GET + b"X-A: 1\rX-B: 2\r\n\r\n", 400, "CR"),
    ("folded header", GET + b"X-A: 1\r\n 2\r\n\r\n", 400, "Folded"),
    ("space before the colon", PUT_MC + b"Content-Length : 2\r\n\r\n{}", 400, "header"),
    ("NUL in a header value", GET + b"X-A: a\0b\r\n\r\n", 400, "control"),
    ("header without a colon", GET + b"NoColon\r\n\r\n", 400, "header"),
    ("two Host headers", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host"),
    ("unknown path, control bytes escaped", b"GET /no\x7fpe HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "\\x7f"),
    ("unknown path (handler's error)", b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "Invalid request method"),
]


def good_exchanges(path):
    """What must keep working: pipelining, chunked, HTTP/1.0, Expect: 100-continue, a query string."""
    try:
        s = connect(path)
        s.sendall(GET + b"\r\n" + GET + b"\r\n" + GET + b"Connection: close\r\n\r\n")
        rs = parse_responses(read_all(s, time.monotonic() + 5))
        if [r[0] for r in rs] != [200, 200, 200]:
            raise ValueError([r[0] for r in rs])
        ok("three pipelined GET / on one connection: three 200s in order")
    except (OSError, ValueError) as e:
        not_ok("pipelined GET /: %s" % e)
    for name, raw, want in [
        ("chunked PUT", chunked(b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)), [204]),
        ("chunked PUT in three chunks", chunked(b"1\r\n{\r\n10\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" %
                                                 (BODY[1:17], len(BODY) - 17, BODY[17:])), [204]),
        ("HTTP/1.0 GET /", b"GET / HTTP/1.0\r\n\r\n", [200]),
        ("Expect: 100-continue", PUT_MC + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(BODY), [100, 204]),
        ("a query string is ignored", b"GET /?x=1 HTTP/1.1\r\n\r\n", [200]),
    ]:
        try:
            s = connect(path)
            s.sendall(raw)
            if want[0] == 100:
                got = s.recv(100)
                if not got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):
                    raise ValueError("no 100 Continue: %r" % got)
                s.sendall(BODY)
                rs = [(100, {}, b"")] + parse_responses(read_until(s, 1))
            else:
                rs = parse_responses(read_until(s, 1) if b"HTTP/1.1" in raw else read_all(s, time.monotonic() + 5))
            if [r[0] for r in rs] != want:
                raise ValueError([r[0] for r in rs])
            ok("%s: %s" % (name, want))
            s.close()
        except (OSError, ValueError) as e:
            not_ok("%s: %s" % (name, e))


def read_until(s, n):
    """Reads until n complete responses arrived (keep-alive: the server does not close)."""
    data = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if len(parse_responses(data)) >= n:
                return data
        except ValueError:
            pass
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def starvation(path, pid, n_idle=320, n_trickle=320):
    """Hundreds of idle and trickling connections are held; GET / on a new connection keeps being answered."""
    base = fd_count(pid)
    held, stop = [], threading.Event()
    for _ in range(n_idle):
        try:
            held.append(connect(path, timeout=2))
        except OSError:
            break
    trick = []
    for _ in range(n_trickle):
        try:
            trick.append(connect(path, timeout=2))
        except OSError:
            break

    def trickle():
        msg = GET + b"X-Slow: " + b"s" * 1000
        i = 0
        while not stop.is_set() and i < len(msg):
            for t in trick:
                try:
                    t.send(msg[i:i + 1])
                except OSError:
                    pass
            i += 1
            stop.wait(1.0)

    th = threading.Thread(target=trickle)
    th.start()
    answered, slowest, held_now = 0, 0.0, 0
    tries = 20
    for _ in range(tries):
        t0 = time.monotonic()
        try:
            s = connect(path, timeout=3)
            s.sendall(GET + b"Connection: close\r\n\r\n")
            rs = parse_responses(read_all(s, time.monotonic() + 3))
            s.close()
            if len(rs) == 1 and rs[0][0] == 200:
                answered += 1
        except (OSError, ValueError):
            pass
        slowest = max(slowest, time.monotonic() - t0)
        held_now = max(held_now, fd_count(pid) - base)
        time.sleep(0.5)
    stop.set()
    th.join()
    if answered == tries:
        ok("%d idle + %d trickling connections held: GET / answered %d/%d (slowest %.3f s)" %
           (len(held), len(trick), answered, tries, slowest))
    else:
        not_ok("%d idle + %d trickling connections held: GET / answered only %d/%d" %
               (len(held), len(trick), answered, tries))
    if held_now <= 130:
        ok("ember held at most its connection cap meanwhile (at most %d connection fds)" % held_now)
    else:
        not_ok("ember held %d connection fds (cap 128)" % held_now)
    for s in held + trick:
        s.close()
    deadline = time.monotonic() + 5
    while fd_count(pid) > base and time.monotonic() < deadline:
        time.sleep(0.1)
    if fd_count(pid) <= base:
        ok("every connection fd is closed once the clients are gone")
    else:
        not_ok("ember holds %d more fds than before" % (fd_count(pid) - base))


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def flood(path, pid, name, n=10000):
    """10,000 connections opened and held, every fourth with half a request: the API keeps answering GET /
    between them, ember evicts the longest-waiting ones (503 to those mid-request) instead of piling them
    up, and neither its fds nor its memory grow with them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 256
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
        except (OSError, ValueError) as e:
            not_ok("%s: cannot raise this process's open-file limit to %d (run as root): %s" % (name, want, e))
            return 0
    base_fds, base_rss = fd_count(pid), vm_rss_kib(pid)
    held, answered, tries, max_fds, t0 = [], 0, 0, 0, time.monotonic()
    try:
        for i in range(n):
            s = connect(path, timeout=2)
            if i % 4 == 3:
                s.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{")
            held.append(s)
            if i % 1000 == 999:  # the real client, in the middle of the flood
                tries += 1
                c = connect(path, timeout=3)
                c.sendall(GET + b"Connection: close\r\n\r\n")
                rs = parse_responses(read_all(c, time.monotonic() + 3))
                c.close()
                answered += len(rs) == 1 and rs[0][0] == 200
                max_fds = max(max_fds, fd_count(pid) - base_fds)
    except (OSError, ValueError) as e:
        not_ok("10,000 connections: failed after %d: %s" % (len(held), e))
    took = time.monotonic() - t0
    check_ = ok if len(held) == n and answered == tries else not_ok
    check_("%s: 10,000 connections opened and held in %.1f s: GET / answered %d/%d times among them" %
           (name, took, answered, tries))
    (ok if max_fds <= 130 else not_ok)("ember held at most its cap meanwhile (%d connection fds at most)" % max_fds)
    evicted = refused = 0
    for s in held[:256]:  # the oldest: closed by ember to make room (503 first if a request was under way)
        data, closed = b"", False
        s.settimeout(0.5)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
        except ConnectionResetError:
            closed = True
        except OSError:
            pass
        try:
            rs = parse_responses(data)
        except ValueError:
            rs = []
        evicted += closed
        refused += closed and len(rs) == 1 and rs[0][0] == 503
    (ok if evicted == 256 and refused == 64 else not_ok)(
        "the 256 oldest were closed by ember (%d), the 64 of them mid-request with a 503 (%d)" % (evicted, refused))
    during = vm_rss_kib(pid) - base_rss
    for s in held:
        s.close()
    deadline = time.monotonic() + 5
    while fd_count(pid) > base_fds and time.monotonic() < deadline:
        time.sleep(0.1)
    (ok if fd_count(pid) <= base_fds else not_ok)("every fd of the flood is closed once its clients are gone")
    after = vm_rss_kib(pid) - base_rss
    print("# %s: ember's RSS %+d KiB while held (128 connection buffers), %+d KiB after" % (name, during, after),
          flush=True)
    return after


def slowloris(path):
    """A slowloris client: a header byte every 2 s keeps the connection alive only until the request
    timeout (10 s from its first byte), then it gets one 408 and is closed."""
    try:
        s = connect(path, timeout=1)
        msg, i, t0, rs = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100, 0, time.monotonic(), None
        while time.monotonic() - t0 < 20:
            try:
                s.send(msg[i:i + 1])
                i += 1
            except OSError:
                break
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            rs = parse_responses(data + read_all(s, time.monotonic() + 2))
            break
        took = time.monotonic() - t0
        if rs is None or len(rs) != 1 or rs[0][0] != 408:
            raise ValueError("got %s after %.1f s" % (rs and [r[0] for r in rs], took))
        fault_of(rs[0])
        ok("a slowloris client (a header byte every 1-2 s): one 408 JSON error after %.1f s, %d bytes sent" %
           (took, i))
    except (OSError, ValueError) as e:
        not_ok("a slowloris client: want one 408 JSON error within the request timeout: %s" % e)


def idle_open(path):
    """A keep-alive connection after one answered request, left idle (returned with when it went idle)."""
    s = connect(path, timeout=5)
    s.sendall(GET + b"\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(4096)
    return s, time.monotonic()


def idle_reuse(held, min_idle=31.0):
    """The idle connection still serves a PUT: no idle deadline, as Firecracker keeps such connections."""
    s, since = held
    if time.monotonic() - since < min_idle:
        time.sleep(min_idle - (time.monotonic() - since))
    idle = time.monotonic() - since
    body = b'{"vcpu_count":1,"mem_size_mib":128}'
    try:
        s.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        status = got.split(b" ")[1].decode() if got.startswith(b"HTTP/1.1 ") else "closed"
    except OSError as e:
        status = str(e)
    s.close()
    (ok if status == "204" else not_ok)("a keep-alive connection idle %.0f s still serves a PUT (%s)" % (idle, status))


def timeout_case(path):
    """A request that never completes gets a 408 JSON error after the request timeout (10 s)."""
    try:
        s = connect(path, timeout=15)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x")
        t0 = time.monotonic()
        rs = parse_responses(read_all(s, time.monotonic() + 15))
        took = time.monotonic() - t0
        if len(rs) != 1 or rs[0][0] != 408:
            raise ValueError([r[0] for r in rs])
        fault_of(rs[0])
        ok("an incomplete request: one 408 JSON error after %.1f s" % took)
    except (OSError, ValueError) as e:
        not_ok("an incomplete request: want one 408 JSON error: %s" % e)


def main():
    binary, work = sys.argv[1], sys.argv[2]
    path = os.path.join(work, "api.sock")
    err = open(os.path.join(work, "ember.err"), "w")
    proc = subprocess.Popen([binary, "--api-sock", path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err)
    for _ in range(500):  # until ember accepts: the socket file appears before listen(2)
        try:
            connect(path, timeout=1).close()
            break
        except OSError:
            time.sleep(0.01)
    try:
        for name, raw, status, text in CASES:
            one_error(path, name, raw, status, text)
            if proc.poll() is not None:
                not_ok("ember died after '%s'" % name)
                return 1
        good_exchanges(path)
        starvation(path, proc.pid)
        first = flood(path, proc.pid, "flood 1")
        again = flood(path, proc.pid, "flood 2")
        # The first flood may leave the heap grown by what the cap's worth of connections took; a second
        # must not add to it.
        (ok if first < 2048 and again < 256 else not_ok)(
            "ember's RSS after the floods: %+d KiB after the first (under 2 MiB), %+d KiB after the second "
            "(under 256 KiB)" % (first, again))
        idle = idle_open(path)  # after the floods, whose eviction would take it
        slowloris(path)
        timeout_case(path)
        idle_reuse(idle)
        if proc.poll() is None:
            ok("ember is still running")
        else:
            not_ok("ember ended (status %s)" % proc.returncode)
    finally:
        if proc.poll() is None:
            proc.terminate()
        rc = proc.wait(timeout=20)
        err.close()
    if rc != 0:
        not_ok("ember exit status %d on SIGTERM" % rc)
    else:
        ok("ember exit 0 on SIGTERM")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
