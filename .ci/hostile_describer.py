"""A hostile peer for the gotalk tool: it describes itself (EXTENSIONS.md, "Describing")
with terminal escape sequences in every text it chooses (service, operation and type
names, docs) and answers every other request with an error text full of them. CI checks
that `gotalk describe` and `gotalk call` print none of them raw. On 127.0.0.1:PORT it
serves connections one at a time until killed.

    python3 .ci/hostile_describer.py PORT
"""
import json
import socket
import sys

# Sets the window title, clears the screen, writes the clipboard (OSC 52), and a C1 CSI.
EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZWNobyBoaQ==\x07\u009b31m"
DESCRIPTION = json.dumps({
    "operations": [{
        "name": "op" + EVIL,
        "kind": "request",
        "service": "Svc" + EVIL,
        "docs": "Docs" + EVIL + "\nsecond line" + EVIL,
        "input": {"name": "In" + EVIL},
        "output": {"name": "Out" + EVIL},
    }]
}).encode()


def message(kind, rid, payload):
    return kind + rid + b"%08x" % len(payload) + payload


def serve(conn):
    conn.sendall(b"01" + b"n00cgotalk:hello" + b"%08x" % len(b"describe") + b"describe")
    buf = b""
    while chunk := conn.recv(4096):
        buf += chunk
        if buf.startswith(b"01"):
            buf = buf[2:]
        while True:
            if buf[:1] == b"n" and len(buf) >= 4:
                name_len = int(buf[1:4], 16)
                head = 4 + name_len + 8
                if len(buf) < head or len(buf) < head + int(buf[head - 8:head], 16):
                    break
                buf = buf[head + int(buf[head - 8:head], 16):]
            elif buf[:1] == b"r" and len(buf) >= 8:
                rid, name_len = buf[1:5], int(buf[5:8], 16)
                head = 8 + name_len + 8
                if len(buf) < head or len(buf) < head + int(buf[head - 8:head], 16):
                    break
                name = buf[8:8 + name_len]
                buf = buf[head + int(buf[head - 8:head], 16):]
                if name == b"gotalk:describe":
                    conn.sendall(message(b"R", rid, DESCRIPTION))
                else:
                    conn.sendall(message(b"E", rid, ("failed" + EVIL).encode()))
            else:
                break


port = int(sys.argv[1])
with socket.create_server(("127.0.0.1", port)) as server:
    while True:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(10)
            try:
                serve(conn)
            except (OSError, ValueError):
                pass
