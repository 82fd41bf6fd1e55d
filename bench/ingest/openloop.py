"""Open-loop, fixed-rate load generator (Debian has no wrk2), for latency at a given rate.

Two implementations with the same behaviour and the same summary: ``openloop.c`` (the
default in run.py: epoll, about 0.03 ms of CPU per request) driven by :func:`run_c`, and this
module's asyncio one (:func:`run`, 0.2-0.35 ms of CPU per request, so it takes a good share
of the cores it shares with the server at a few thousand requests per second).

Request n is due at ``t0 + n / rate`` whatever happened to the earlier ones (open loop), so a
slow server cannot slow the generator down and hide its own queueing (no coordinated omission).
Each request is sent on a fresh TCP connection: gunicorn's sync workers answer every request
with ``Connection: close``, so keep-alive would not survive one request anyway (wrk reconnects
the same way).

Latency is reported two ways:

* ``from_due``: response complete minus the due time (or minus the send, for a request sent
  up to 1 ms early, see EARLY). This is the figure to use; it includes any lateness of the
  generator itself.
* ``from_send``: response complete minus the moment this generator actually started connecting.

The difference between the two, and ``lag`` (send minus due), show the generator's own
overhead; ``cpu`` is the CPU time the generator processes used, as a share of one core.

Requests are generated and signed right before the sending starts (see signedreq.py).
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import signedreq

DRAIN_SECONDS = 10.0  # how long to wait for answers after the last request is due
# epoll sleeps in whole milliseconds, so a request may go out up to 1 ms before it is due
# (its latency is then counted from the send); without this every send would be 0-1 ms late
EARLY = 0.001
# at most this many requests waiting for an answer; past it the server is so far behind that
# the figures are meaningless anyway, and requests are counted as status -2 (not sent)
# instead of opening ever more sockets (status -1: a socket error)
MAX_IN_FLIGHT = 2000


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


async def _one(loop: asyncio.AbstractEventLoop, addr: tuple[str, int], raw: bytes,
               due: float, out: list[tuple[float, float, float, int]]) -> None:
    start = loop.time()
    sock = None
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        await loop.sock_connect(sock, addr)
        await loop.sock_sendall(sock, raw)
        buf = bytearray()
        need = -1
        while True:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                break
            buf += chunk
            if need < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                length = 0
                for line in bytes(buf[:end]).split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                need = end + 4 + length
            if len(buf) >= need:
                break
        done = loop.time()
        # status 0: the connection was closed before a complete response
        status = int(buf[9:12]) if need >= 0 and len(buf) >= need else 0
        out.append((due, start, done, status))
    except OSError:
        out.append((due, start, loop.time(), -1))
    finally:
        if sock is not None:
            sock.close()


async def _schedule(port: int, rate: float, requests: list[tuple[int, bytes]], t0_wall: float,
                    out: list[tuple[float, float, float, int]]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    addr = ("127.0.0.1", port)
    # translate the shared wall-clock start into this loop's monotonic clock
    t0 = loop.time() + (t0_wall - time.time())
    tasks = set()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    i = 0
    while i < len(requests):
        now = loop.time()
        while i < len(requests):
            n, raw = requests[i]
            due = t0 + n / rate
            if due > now + EARLY:
                break
            i += 1
            if len(tasks) >= MAX_IN_FLIGHT:  # the server is hopelessly behind: count, skip
                out.append((due, now, now, -2))
                continue
            task = loop.create_task(_one(loop, addr, raw, due, out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if i < len(requests):
            n, _ = requests[i]
            await asyncio.sleep(max(0.0, t0 + n / rate - EARLY - loop.time()))
    last_due = loop.time()
    cpu_sending = resource.getrusage(resource.RUSAGE_SELF)
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=DRAIN_SECONDS)
        for task in pending:
            task.cancel()
        unanswered = len(pending)
    else:
        unanswered = 0
    cpu1 = cpu_sending
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"cpu_seconds": cpu, "wall_seconds": loop.time() - t0, "unanswered": unanswered,
            "schedule_seconds": last_due - t0, "t0": t0}


def _worker(k: int, procs: int, port: int, path: str, rate: float, total: int, secret: str,
            prefix: str, conn: Any) -> None:
    indices = list(range(k, total, procs))
    raws = list(signedreq.generate(secret, prefix, indices, path))
    requests = list(zip(indices, raws, strict=True))
    # no cyclic GC pauses while sending: they would stall the event loop and show up as
    # server latency (the sending phase allocates little that is cyclic)
    gc.collect()
    gc.freeze()
    gc.disable()
    conn.send("ready")
    t0_wall = conn.recv()
    out: list[tuple[float, float, float, int]] = []
    info = asyncio.run(_schedule(port, rate, requests, t0_wall, out))
    t0 = info["t0"]
    # (due - t0, send - due, done - min(due, send), done - send, status): a request sent
    # early (up to EARLY) counts from its send, a late one from its due time
    rel = [(due - t0, start - due, done - min(due, start), done - start, status)
           for due, start, done, status in out]
    conn.send({"info": info, "records": rel})
    conn.close()


def run(port: int, path: str, rate: float, duration: float, secret: str, prefix: str,
        procs: int = 1, keep_records: bool = False) -> dict[str, Any]:
    """Send ``rate * duration`` requests open loop; the summary (and, with ``keep_records``,
    every ``(due, send - due, latency from due, latency from send, status)``)."""
    total = int(rate * duration)
    ctx = multiprocessing.get_context("fork")
    pipes, workers = [], []
    for k in range(procs):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(k, procs, port, path, rate, total, secret,
                                                  prefix, child), daemon=True)
        proc.start()
        child.close()
        pipes.append(parent)
        workers.append(proc)
    results = []
    try:
        for parent in pipes:  # each worker has generated and signed its requests
            if not parent.poll(60) or parent.recv() != "ready":
                raise RuntimeError("open-loop worker did not get ready in time")
        t0_wall = time.time() + 0.2
        for parent in pipes:
            parent.send(t0_wall)
        for parent in pipes:
            if not parent.poll(duration + DRAIN_SECONDS + 60):
                raise RuntimeError("open-loop worker did not report in time")
            results.append(parent.recv())
    finally:
        for proc in workers:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    records = [r for res in results for r in res["records"]]
    return summarize(
        records, rate=rate, duration=duration, planned=total,
        unanswered=sum(res["info"]["unanswered"] for res in results),
        cpu=sum(res["info"]["cpu_seconds"] for res in results),
        schedule=max(res["info"]["schedule_seconds"] for res in results),
        generator=f"python asyncio x{procs}", keep_records=keep_records)


def run_c(binary: Path, workdir: Path, port: int, path: str, rate: float, duration: float,
          secret: str, prefix: str, keep_records: bool = False) -> dict[str, Any]:
    """The same, sent by the C generator ``openloop.c`` (built as ``binary``)."""
    total = int(rate * duration)
    requests, out = workdir / "openloop-requests.bin", workdir / "openloop-out.txt"
    with open(requests, "wb") as f:
        for raw in signedreq.generate(secret, prefix, range(total), path):
            f.write(raw)
            f.write(b"\x1e")
    try:
        done = subprocess.run([str(binary), str(port), repr(rate), repr(duration),
                               str(requests), str(out)], capture_output=True, text=True,
                              timeout=duration + DRAIN_SECONDS + 60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"openloop failed ({done.returncode}): {done.stderr}")
        lines = out.read_text().splitlines()
    finally:
        requests.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
    cpu, _wall, schedule = (float(x) for x in lines[-1].lstrip("# ").split())
    records = []
    for line in lines[:-1]:
        due_us, lag_us, lat_us, status = line.split()
        lag, lat = float(lag_us) / 1e6, float(lat_us) / 1e6
        # (due - t0, send - due, latency from due, latency from send, status)
        records.append((float(due_us) / 1e6, lag, lat, lat - max(0.0, lag), int(status)))
    unanswered = sum(1 for r in records if r[4] == -3)
    return summarize(records, rate=rate, duration=duration, planned=total,
                     unanswered=unanswered, cpu=cpu, schedule=schedule, generator="c",
                     keep_records=keep_records)


def summarize(records: list[tuple[float, float, float, float, int]], *, rate: float,
              duration: float, planned: int, unanswered: int, cpu: float, schedule: float,
              generator: str, keep_records: bool) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for *_, status in records:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    ok = [r for r in records if r[4] > 0]
    from_due = sorted(r[2] for r in ok)
    from_send = sorted(r[3] for r in ok)
    lag = sorted(max(0.0, r[1]) for r in records)

    def ms(values: list[float]) -> dict[str, float]:
        return {name: round(_percentile(values, p) * 1000, 3)
                for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9),
                                ("max", 100))}

    per_second: dict[int, list[float]] = {}
    for r in ok:
        per_second.setdefault(int(r[0]), []).append(r[2])
    seconds = []
    for second, values in sorted(per_second.items()):
        values.sort()
        seconds.append({"second": second, "n": len(values),
                        "p50_ms": round(_percentile(values, 50) * 1000, 2),
                        "p99_ms": round(_percentile(values, 99) * 1000, 2),
                        "max_ms": round(values[-1] * 1000, 2)})
    return {
        "generator": generator,
        "rate_target": rate,
        "duration_target": duration,
        "planned": planned,
        "answered": len(ok),
        "unanswered": unanswered,
        "statuses": statuses,
        "achieved_rate": round(len(ok) / schedule, 1) if schedule > 0 else 0.0,
        "latency_ms": {"from_due": ms(from_due), "from_send": ms(from_send)},
        "lag_ms": ms(lag),
        "per_second": seconds,
        "seconds_p99_over_15ms": sum(x["p99_ms"] > 15 for x in seconds),
        "cpu_seconds": round(cpu, 3),
        # CPU over the sending window (the generator idles while it waits for late answers)
        "cpu_share_of_one_core": round(cpu / schedule, 3) if schedule > 0 else 0.0,
        "cpu_us_per_request": round(cpu / max(1, len(records)) * 1e6, 1),
        **({"records": sorted(records)} if keep_records else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default=signedreq.PATH)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds")
    parser.add_argument("--secret", required=True, help="whsec_... the server verifies with")
    parser.add_argument("--prefix", required=True, help="webhook-id prefix, unique per run")
    parser.add_argument("--procs", type=int, default=1, help="generator processes")
    parser.add_argument("--binary", type=Path,
                        help="use the C generator built from openloop.c at this path")
    args = parser.parse_args()
    if args.binary:
        with tempfile.TemporaryDirectory(prefix="openloop-") as workdir:
            result = run_c(args.binary, Path(workdir), args.port, args.path, args.rate,
                           args.duration, args.secret, args.prefix)
    else:
        result = run(args.port, args.path, args.rate, args.duration, args.secret, args.prefix,
                     args.procs)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
