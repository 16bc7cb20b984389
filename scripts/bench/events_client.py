#!/usr/bin/env python3
"""Load client of scripts/bench/events.sh (run by it, in a virtualenv it makes).

  events_client.py sse ...      write-to-SSE latency with many idle streams open
  events_client.py produce ...  the broker's own ingest rate: a plain producer (librdkafka
                                via confluent-kafka, or aiokafka) publishing given records

Each prints one JSON object on stdout; progress and anomalies go to stderr.
"""

import argparse
import asyncio
import json
import resource
import sys
import time

# ---------------------------------------------------------------------------------------------
# SSE latency


def log(msg):
    print(f"client: {msg}", file=sys.stderr, flush=True)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def pct(values, p):
    """Nearest-rank percentile of a sorted list."""
    if not values:
        return None
    k = max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def summary(ms):
    s = sorted(ms)
    return {
        "n": len(s),
        "p50": pct(s, 50),
        "p90": pct(s, 90),
        "p99": pct(s, 99),
        "max": s[-1] if s else None,
        "min": s[0] if s else None,
        "mean": sum(s) / len(s) if s else None,
    }


class Stream:
    """One SSE connection; frames are parsed line by line and time-stamped on arrival."""

    def __init__(self, session, base, seller, queue=None):
        self.session, self.base, self.seller, self.queue = session, base, seller, queue
        self.connected = asyncio.Event()
        self.events = 0  # frames other than `connected`
        self.heartbeats = 0
        self.ended = None  # why the stream stopped, if it did
        self.status = None
        self.resp = None

    async def run(self):
        try:
            self.resp = await self.session.get(
                f"{self.base}/api/events/stream",
                headers={"X-Seller-Id": self.seller, "Accept": "text/event-stream"},
            )
            self.status = self.resp.status
            if self.resp.status != 200:
                self.ended = f"HTTP {self.resp.status}: {(await self.resp.text())[:200]}"
                self.connected.set()
                return
            frame = {}
            async for raw in self.resp.content:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if frame:
                        now = time.perf_counter()
                        self.on_frame(now, frame)
                        frame = {}
                    continue
                if line.startswith(":"):
                    self.heartbeats += 1
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    frame["data"] = frame.get("data", "") + value
                else:
                    frame[field] = value
            self.ended = "closed by server"
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            self.ended = f"{type(e).__name__}: {e}"
        finally:
            self.connected.set()

    def on_frame(self, now, frame):
        kind = frame.get("event", "message")
        if kind == "connected":
            self.connected.set()
            return
        if "id" not in frame and "data" not in frame:
            return  # a bare `retry:` frame
        self.events += 1
        if self.queue is not None:
            self.queue.put_nowait((now, frame))


async def sse(args):
    import aiohttp

    try:
        import uvloop  # noqa: F401

        loop_kind = "uvloop"
    except ImportError:
        loop_kind = "asyncio"
    base = args.base
    out = {"loop": loop_kind, "idle_streams": args.idle, "anomalies": []}

    def anomaly(msg):
        log("ANOMALY: " + msg)
        if len(out["anomalies"]) < 50:
            out["anomalies"].append(msg)

    out["rss_kib_before"] = rss_kib(args.server_pid)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    idle_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False), timeout=timeout
    )
    bench_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1), timeout=timeout
    )
    write_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1), timeout=aiohttp.ClientTimeout(total=30)
    )
    tasks = []
    try:
        # 1. idle streams, opened 100 at a time
        idle = [Stream(idle_session, base, f"seller-idle{i}") for i in range(args.idle)]
        t = time.perf_counter()
        for i in range(0, len(idle), 100):
            chunk = idle[i : i + 100]
            tasks += [asyncio.create_task(s.run()) for s in chunk]
            await asyncio.wait_for(
                asyncio.gather(*(s.connected.wait() for s in chunk)), timeout=60
            )
        failed = [s for s in idle if s.ended]
        out["idle_open_seconds"] = round(time.perf_counter() - t, 3)
        out["idle_open_failed"] = len(failed)
        for s in failed[:5]:
            anomaly(f"idle stream {s.seller} did not open: {s.ended}")
        log(f"{len(idle) - len(failed)} idle streams open in {out['idle_open_seconds']} s")

        # 2. the measured stream
        queue = asyncio.Queue()
        bench = Stream(bench_session, base, args.seller, queue)
        tasks.append(asyncio.create_task(bench.run()))
        await asyncio.wait_for(bench.connected.wait(), timeout=30)
        if bench.ended:
            raise SystemExit(f"the measured stream did not open: {bench.ended}")
        await asyncio.sleep(0.5)  # let the server settle after the burst of opens
        out["rss_kib_open"] = rss_kib(args.server_pid)
        out["sse_gauge_open"] = await gauge(write_session, base, "product_api_sse_connections")
        log(f"RSS with {args.idle + 1} streams open: {out['rss_kib_open']} KiB "
            f"(gauge product_api_sse_connections={out['sse_gauge_open']})")

        # 3. sequential writes
        hdr = {"X-Seller-Id": args.seller, "Content-Type": "application/json"}
        non2xx = 0
        missing = 0
        before_response = 0
        last_id = 0
        http_ms, sse_ms = [], []
        raw_ms = []

        async def write(method_url, body, expect_status):
            nonlocal non2xx
            t0 = time.perf_counter()
            async with write_session.post(method_url, json=body, headers=hdr) as r:
                text = await r.read()
                t1 = time.perf_counter()
                if r.status != expect_status:
                    non2xx += 1
                    anomaly(f"{method_url} -> HTTP {r.status}: {text[:200]!r}")
                    return t0, t1, None
                return t0, t1, json.loads(text)

        async def frame_for(t1, kind, product_id, quantity):
            """The next frame, which must be this write's event; latency from t1."""
            nonlocal missing, before_response, last_id
            try:
                t2, frame = await asyncio.wait_for(queue.get(), timeout=args.frame_timeout)
            except asyncio.TimeoutError:
                missing += 1
                anomaly(f"no SSE frame within {args.frame_timeout} s for {kind} q={quantity}")
                return None
            try:
                body = json.loads(frame.get("data", "null"))
                seq = int(frame.get("id", "0"))
                data = body.get("data") or {}
                ok = (
                    frame.get("event") == kind
                    and data.get("productId") == product_id
                    and data.get("quantity") == quantity
                    and seq > last_id
                )
            except (ValueError, AttributeError) as e:
                ok, seq = False, -1
                anomaly(f"unparsable frame {frame!r}: {e}")
            if not ok:
                anomaly(f"unexpected frame (wanted {kind} product {product_id} "
                        f"quantity {quantity} id>{last_id}): {frame!r}")
                return None
            last_id = seq
            if t2 < t1:
                before_response += 1
            return (t2 - t1) * 1000

        t0, t1, created = await write(
            f"{base}/api/products",
            {"name": "Bench", "price": 9.99, "quantity": 50, "category": "Bench"},
            201,
        )
        if created is None:
            raise SystemExit("could not create the product")
        pid = created["id"]
        quantity = 50
        lat = await frame_for(t1, "ProductCreated", pid, quantity)
        out["create"] = {"http_ms": (t1 - t0) * 1000, "sse_ms": lat}

        total = args.warmup + args.writes
        url = f"{base}/api/products/{pid}/quantity-adjustments"
        started = time.perf_counter()
        for i in range(total):
            delta = -1 if i % 2 == 0 else 1
            t0, t1, body = await write(url, {"delta": delta}, 200)
            if body is None:
                # the write failed: no event expected; keep the model in step with the server
                continue
            quantity += delta
            lat = await frame_for(t1, "ProductUpdated", pid, quantity)
            if i < args.warmup:
                continue
            http_ms.append((t1 - t0) * 1000)
            if lat is not None:
                raw_ms.append(lat)
                sse_ms.append(max(0.0, lat))
        elapsed = time.perf_counter() - started
        out["rss_kib_after_writes"] = rss_kib(args.server_pid)
        # Frames left over would mean duplicates or events nobody asked for.
        await asyncio.sleep(0.5)
        while not queue.empty():
            _, frame = queue.get_nowait()
            anomaly(f"extra frame on the measured stream: {frame!r}")
        out["writes"] = args.writes
        out["warmup"] = args.warmup
        out["writes_per_second"] = round(total / elapsed)
        out["non2xx"] = non2xx
        out["frames_missing"] = missing
        out["frames_before_response"] = before_response
        out["http_ms"] = summary(http_ms)
        out["sse_ms"] = summary(sse_ms)
        out["sse_raw_min_ms"] = min(raw_ms) if raw_ms else None
        out["bench_heartbeats"] = bench.heartbeats
        # idle streams must still be open and must have seen no event
        closed = [s for s in idle if s.ended]
        stray = sum(s.events for s in idle)
        out["idle_closed_during_run"] = len(closed)
        out["idle_stray_events"] = stray
        out["idle_heartbeats"] = sum(s.heartbeats for s in idle)
        for s in closed[:5]:
            anomaly(f"idle stream {s.seller} ended: {s.ended}")
        if stray:
            anomaly(f"{stray} events arrived on idle streams of other sellers")
        if bench.ended:
            anomaly(f"the measured stream ended: {bench.ended}")
        out["sse_gauge_end"] = await gauge(write_session, base, "product_api_sse_connections")
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out["client_cpu_s"] = round(ru.ru_utime + ru.ru_stime, 2)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await idle_session.close()
        await bench_session.close()
        await write_session.close()
    print(json.dumps(out))


async def gauge(session, base, name):
    async with session.get(f"{base}/metrics") as r:
        for line in (await r.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


# ---------------------------------------------------------------------------------------------
# Plain producer: the broker's own ingest rate


def load_records(path):
    """TSV from psql: id, seller_id, event_type, product_id, created_at (RFC 3339), payload."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            rid, seller, etype, product, created, payload = line.rstrip("\n").split("\t", 5)
            headers = [
                ("ce_specversion", b"1.0"),
                ("ce_id", rid.encode()),
                ("ce_type", etype.encode()),
                ("ce_source", b"product-api"),
                ("ce_time", created.encode()),
                ("ce_subject", product.encode()),
                ("content-type", b"application/json"),
            ]
            records.append((seller.encode(), payload.encode(), headers))
    return records


def produce_confluent(args, records):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": args.brokers})
    fs = admin.create_topics([NewTopic(args.topic, num_partitions=4, replication_factor=1)])
    for f in fs.values():
        f.result(timeout=30)
    p = Producer(
        {
            "bootstrap.servers": args.brokers,
            "acks": "all",  # as the relay (rskafka, acks = all)
            "compression.type": "none",  # as the relay
            "linger.ms": 5,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": len(records) + 1000,
            "partitioner": "murmur2_random",  # the Java client's, as the relay's
            "enable.idempotence": False,
        }
    )
    # connect and fetch metadata before timing
    p.list_topics(args.topic, timeout=30)
    errors = []
    delivered = [0]

    def cb(err, _msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered[0] += 1

    t = time.perf_counter()
    for key, value, headers in records:
        p.produce(args.topic, value=value, key=key, headers=headers, on_delivery=cb)
        p.poll(0)
    left = p.flush(120)
    elapsed = time.perf_counter() - t
    return {"client": "confluent-kafka (librdkafka)", "elapsed_s": elapsed,
            "delivered": delivered[0], "errors": len(errors), "first_error": errors[:1],
            "unflushed": left}


async def produce_aiokafka(args, records):
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=args.brokers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(args.topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    p = AIOKafkaProducer(bootstrap_servers=args.brokers, acks="all", linger_ms=5,
                         max_batch_size=1 << 20, enable_idempotence=False)
    await p.start()
    try:
        await p.partitions_for(args.topic)
        t = time.perf_counter()
        futs = [await p.send(args.topic, value=v, key=k, headers=h) for k, v, h in records]
        res = await asyncio.gather(*futs, return_exceptions=True)
        elapsed = time.perf_counter() - t
    finally:
        await p.stop()
    errs = [r for r in res if isinstance(r, Exception)]
    return {"client": "aiokafka", "elapsed_s": elapsed, "delivered": len(res) - len(errs),
            "errors": len(errs), "first_error": [repr(e) for e in errs[:1]], "unflushed": 0}


def produce(args):
    records = load_records(args.records)
    size = sum(len(k) + len(v) + sum(len(a) + len(b) for a, b in h) for k, v, h in records)
    if args.client == "confluent":
        res = produce_confluent(args, records)
    else:
        res = asyncio.run(produce_aiokafka(args, records))
    res["records"] = len(records)
    res["avg_record_bytes"] = round(size / max(1, len(records)), 1)
    res["events_per_s"] = round(res["delivered"] / res["elapsed_s"], 1)
    print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sse")
    s.add_argument("--base", required=True)
    s.add_argument("--server-pid", type=int, required=True)
    s.add_argument("--idle", type=int, default=1000)
    s.add_argument("--seller", default="seller-bench")
    s.add_argument("--writes", type=int, default=2000)
    s.add_argument("--warmup", type=int, default=100)
    s.add_argument("--frame-timeout", type=float, default=5.0)
    p = sub.add_parser("produce")
    p.add_argument("--brokers", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--records", required=True)
    p.add_argument("--client", choices=["confluent", "aiokafka"], default="confluent")
    args = ap.parse_args()
    if args.cmd == "sse":
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(sse(args))
    else:
        produce(args)


if __name__ == "__main__":
    main()
