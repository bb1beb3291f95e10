"""tcp_echo_check.py ADDR PORT LINE SECONDS: exits 0 once a TCP echo service at
ADDR:PORT sends LINE (plus a newline) back on one connection; retries until
SECONDS have passed, then says what the last attempt got and exits 1."""
import socket
import sys
import time

addr, port, line, secs = sys.argv[1], int(sys.argv[2]), (sys.argv[3] + "\n").encode(), float(sys.argv[4])
end, last = time.time() + secs, ""
while True:
    try:
        with socket.create_connection((addr, port), timeout=5) as s:
            s.sendall(line)
            got = b""
            while not got.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        if got == line:
            sys.exit(0)
        last = "answered %r" % got
    except OSError as e:
        last = str(e)
    if time.time() > end:
        print("echo: no echo from %s:%d within %.0f s; last attempt: %s" % (addr, port, secs, last))
        sys.exit(1)
    time.sleep(0.3)
