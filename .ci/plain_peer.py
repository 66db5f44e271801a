"""A plain protocol-1 peer, as the Go reference is to our extension: it sends its version
and never announces anything. It takes one connection on 127.0.0.1:PORT and writes every
byte it receives to OUT once the client closes (CI checks that it was sent nothing new).

    python3 .ci/plain_peer.py PORT OUT
"""
import socket
import sys

port, out = int(sys.argv[1]), sys.argv[2]
with socket.create_server(("127.0.0.1", port)) as server:
    conn, _ = server.accept()
    with conn:
        conn.sendall(b"01")
        received = b""
        conn.settimeout(10)
        while chunk := conn.recv(4096):
            received += chunk
with open(out, "wb") as f:
    f.write(received)
