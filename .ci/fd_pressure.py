"""A server under descriptor pressure recovers: 600 connections are opened to PORT (more
than its `ulimit -n` lets it accept), the first 300 are closed (unread, so the kernel
resets them), and the command given must then succeed within 10 s."""
import socket
import subprocess
import sys
import time

port, command = int(sys.argv[1]), sys.argv[2:]
opened = []
for _ in range(600):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"01")
    except OSError:
        break  # the listen backlog is full too: enough pressure
    opened.append(s)
time.sleep(1)
for s in opened[:300]:
    s.close()
started = time.time()
done = subprocess.run(command, capture_output=True, timeout=30)
took = time.time() - started
print(f"{len(opened)} connections opened, 300 closed; a fresh client: exit {done.returncode}, "
      f"{done.stdout.decode().strip()!r}, in {took:.2f} s")
for s in opened[300:]:
    s.close()
sys.exit(0 if done.returncode == 0 and took < 10 else 1)
