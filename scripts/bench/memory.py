#!/usr/bin/env python3
"""Benchmark: server memory under hostile input, one fresh server per case.

Each case starts the release server on the embedded default (SQLite, in-process limiter and
bus, default limits), sends one input, waits for the server to finish with it (an accepted
import runs to its end), and reports the server's resident set before the input (VmRSS) and
its peak after (VmHWM): the growth is what the input made the server hold.

Usage: scripts/bench/memory.py   (builds nothing: cargo build --release first)
Environment: BIN [target/release/product-api], BENCH_PORT [3913].
Only the standard library; traffic goes to 127.0.0.1 only.
"""

import http.client
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BIN", os.path.join(ROOT, "target/release/product-api"))
PORT = int(os.environ.get("BENCH_PORT", "3913"))
SELLER = "seller-memory"
FIELD_LIMIT = 16 * 1024
MIB = 1024 * 1024
HEADER = b"name,description,price,quantity,category\n"


def kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/{pid}/status")


def request(method, path, body=None, headers=None, timeout=600):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    conn.request(method, path, body=body, headers={"X-Seller-Id": SELLER, **(headers or {})})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def chunks_of(total, piece):
    """`total` bytes of `piece` repeated, as a generator (never held whole)."""
    sent = 0
    while sent < total:
        part = piece[: total - sent] if total - sent < len(piece) else piece
        sent += len(part)
        yield part


def upload(body_iter, content_type, length=None):
    """Sends a body from an iterator; reads the answer even if the server stops reading."""
    s = socket.create_connection(("127.0.0.1", PORT))
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    s.sendall(
        f"POST /api/products/import HTTP/1.1\r\nHost: x\r\nX-Seller-Id: {SELLER}\r\n"
        f"Content-Type: {content_type}\r\n{framing}\r\n\r\n".encode()
    )
    try:
        for part in body_iter:
            s.sendall(part if length is not None else b"%x\r\n%s\r\n" % (len(part), part))
        if length is None:
            s.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server answered early and stopped reading
    data = b""
    s.settimeout(60)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
            if b"\r\n\r\n" in data and data.split(b"\r\n\r\n", 1)[1].rstrip().endswith(b"}"):
                break
    except OSError:
        pass
    s.close()
    status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1") else 0
    return status, data.split(b"\r\n\r\n", 1)[-1]


def run_case(name, send):
    data = tempfile.mkdtemp(prefix="bench-memory-")
    env = {
        "PATH": os.environ["PATH"],
        "PORT": str(PORT),
        "HOST": "127.0.0.1",
        "DATA_DIR": data,
        "SHUTDOWN_DELAY_SECS": "0",
        "LOG_FORMAT": "json",
        "RATE_LIMIT_ENABLED": "false",
    }
    server = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if request("GET", "/health/ready")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        request("GET", "/api/products")  # warm the request path
        before = kib(server.pid, "VmRSS")
        started = time.monotonic()
        outcome = send()
        took = time.monotonic() - started
        peak = kib(server.pid, "VmHWM")
        print(f"| {name} | {outcome} | {before / 1024:.1f} | {peak / 1024:.1f} | "
              f"{(peak - before) / 1024:.1f} | {took:.1f} |", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def import_and_wait(body_iter, length):
    status, body = upload(body_iter, "text/csv", length)
    if status != 202:
        return f"{status} {json.loads(body).get('error_code')}"
    import_id = json.loads(body)["import_id"]
    while True:
        _, st = request("GET", f"/api/products/import/{import_id}")
        st = json.loads(st)
        if st["status"] in ("completed", "failed", "cancelled"):
            return f"202, {st['status']}: {st['processed']} rows, {st['failed']} row errors"
        time.sleep(0.2)


def rows_with_field(rows, field):
    row = b'"' + b"d" * (field - 2) + b'",1.5,3,Tools\n'
    yield HEADER
    for i in range(rows):
        yield b"Item %d," % i + row


def main():
    print("| Input | Answer | RSS before (MiB) | Peak after (MiB) | Growth (MiB) | Seconds |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    one_field = b"".join(rows_with_field(1, FIELD_LIMIT))
    run_case("one row with a field at `IMPORT_MAX_FIELD_BYTES` (16 KiB)",
             lambda: import_and_wait([one_field], len(one_field)))
    many = b"".join(rows_with_field(2000, FIELD_LIMIT))
    run_case("2,000 rows, each with a 16 KiB field (31 MiB)",
             lambda: import_and_wait([many], len(many)))
    run_case("one 100 MiB field, chunked (`FIELD_TOO_LARGE`)",
             lambda: import_and_wait(
                 itertools.chain([HEADER + b'"'], chunks_of(100 * MIB, b"x" * MIB)), None))
    run_case("1 GiB declared (`FILE_TOO_LARGE` before reading)",
             lambda: import_and_wait(chunks_of(1024 * MIB, b"Item,1,1,Tools\n" * 4096), 1024 * MIB))
    run_case("1 GiB chunked of valid rows (`FILE_TOO_LARGE` at 100 MiB)",
             lambda: import_and_wait(chunks_of(1024 * MIB, b"Item,1,1,Tools\n" * 4096), None))
    json_body = b'{"name":"x","price":1,"quantity":1,"category":"c","description":"' + \
        b"d" * (MIB - 80) + b'"}'
    run_case("JSON create body of 1 MiB (at `JSON_BODY_LIMIT_BYTES`; 400, description too long)",
             lambda: str(request("POST", "/api/products", json_body,
                                 {"Content-Type": "application/json"})[0]))


if __name__ == "__main__":
    main()
