"""HTTP over a Unix socket: the one client the Python tests and benchmarks use for Ember's API.

Standard library only, nothing to install. A script finds it from its own place in the tree:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "lib"))
    import ember_http

(tests/integration/ and perf/ are both two levels below the top; see their scripts.)
The shell tests have the same client as `api` in tests/integration/lib.sh (curl).
"""
import collections
import http.client
import json
import socket
import time

# status: int; content_type: the Content-Type header ("" if none); body: the raw bytes.
Response = collections.namedtuple("Response", "status content_type body")


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client's connection, to a Unix socket path instead of host:port."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def request(path, method, url, body=None, timeout=30):
    """One request on its own connection; returns a Response (unpacks as status, content_type, body).

    body: None (no body), bytes (sent as is), str (UTF-8) or anything else (sent as JSON).
    Raises OSError when the socket does not answer (no such socket, refused, reset, timeout)."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = UnixHTTPConnection(path, timeout=timeout)
    try:
        conn.request(method, url, body=data, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        return Response(r.status, r.getheader("Content-Type", ""), raw)
    finally:
        conn.close()


def accepting(path):
    """True if something accepts connections on the socket path now (the connection is closed unused)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_accepting(path, deadline, interval=0.0005):
    """Polls until the socket path accepts a connection or time.time() passes deadline; True if it did."""
    while time.time() < deadline:
        if accepting(path):
            return True
        time.sleep(interval)
    return False


def wait_answering(path, timeout=10, alive=None, interval=0.01):
    """Polls with GET / until the API answers (any status) or timeout seconds pass; True if it did.

    alive: a function saying whether the server process still runs; once it says no, stop waiting."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            request(path, "GET", "/")
            return True
        except OSError:
            if alive is not None and not alive():
                return False
            time.sleep(interval)
    return False
