#!/usr/bin/env python3
"""Sends the scenario's reference request COUNT times, one after another, going round CONNECTIONS
keep-alive connections (default 4); waits up to 2 minutes for the server to accept; fails on any
answer other than 200. Used by benches/instructions.sh and benches/link-order.sh.

usage: benches/send.py PORT COUNT [CONNECTIONS]
"""
import socket
import sys
import time

port, count = int(sys.argv[1]), int(sys.argv[2])
connections = int(sys.argv[3]) if len(sys.argv) > 3 else 4
body = b'{"data":{"status":"paid","amount":1250,"currency":"EUR"},"customer":{"email":"a@b.c"}}'
req = (b"POST /hooks/payment?order=42 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
       b"X-Request-Id: abc-123\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


def connect():
    for _ in range(600):
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.2)
    sys.exit("the server did not accept")


conns = [connect() for _ in range(connections)]
bufs = [b""] * len(conns)
for i in range(count):
    k = i % len(conns)
    conns[k].sendall(req)
    buf = bufs[k]
    while True:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) >= length:
                if not head.startswith(b"HTTP/1.1 200"):
                    sys.exit("not 200: " + head.split(b"\r\n")[0].decode())
                bufs[k] = rest[length:]
                break
        chunk = conns[k].recv(65536)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk
for c in conns:
    c.close()
