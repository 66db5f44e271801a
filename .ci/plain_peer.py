"""A plain protocol-1 peer, as the Go reference is to our extension: it sends its version
and never announces anything. On 127.0.0.1:PORT it takes connections one at a time until
one speaks Gotalk (it starts with the version, 01), and writes what that one sent to OUT
once it closes (CI checks that it was sent nothing new). Others (a probe for the port)
are let go.

    python3 .ci/plain_peer.py PORT OUT
"""
import socket
import sys

port, out = int(sys.argv[1]), sys.argv[2]
with socket.create_server(("127.0.0.1", port)) as server:
    received = b""
    while not received.startswith(b"01"):
        received = b""
        conn, _ = server.accept()
        with conn:
            conn.settimeout(10)
            try:
                conn.sendall(b"01")
                while chunk := conn.recv(4096):
                    received += chunk
            except OSError:
                pass
with open(out, "wb") as f:
    f.write(received)
