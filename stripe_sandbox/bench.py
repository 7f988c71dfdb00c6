"""Throughput of stripe_sandbox through stripe-python over HTTP.

    .venv/bin/python bench/sandbox_throughput.py [--n 4000] [--procs 2] [--threads 4] [--in-process]

(The code lives in the sandbox package, the one place besides the app's gateway that
talks to stripe-python; `bench/sandbox_throughput.py` only runs it.)

Starts the sandbox (as a subprocess by default; --in-process to serve from this
interpreter), then runs N `customers.create` calls spread over `procs` client
processes of `threads` threads, each thread with its own StripeClient and
keep-alive connection. stripe-python costs more CPU per call than the sandbox
does, hence several client processes. Prints creates/sec, p50/p99 latency and the
CPU time per create of the clients and (for a subprocess sandbox) of the sandbox:
from those, the rate one core sustains whatever else the machine is doing (the
wall-clock rate depends on what else runs). Timing is printed, never asserted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU time of a process (Linux /proc), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def start_subprocess():
    proc = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    base = proc.stdout.readline().split(" on ", 1)[1].split()[0]

    def stop():
        proc.terminate()
        proc.wait(timeout=10)

    return base, stop, lambda: cpu_seconds(proc.pid)


def start_in_process():
    from stripe_sandbox import start_in_thread

    server, base = start_in_thread()
    return base, server.stop, lambda: None


def client_process(base: str, proc_no: int, per_thread: int, threads: int, ready, go, results) -> None:
    import stripe

    latencies: list[float] = []
    lock = threading.Lock()
    clients = []
    for i in range(threads):
        client = stripe.StripeClient(
            f"sk_test_bench{proc_no}x{i}", base_addresses={"api": base, "connect": base, "files": base}
        )
        client.v1.customers.create(params={"email": "warmup@example.test"})  # connect, create platform
        clients.append(client)

    def worker(i: int) -> None:
        mine = []
        for j in range(per_thread):
            t0 = time.perf_counter()
            clients[i].v1.customers.create(
                params={"email": f"c{proc_no}-{i}-{j}@example.test", "metadata": {"n": str(j)}}
            )
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    ready.put(proc_no)
    go.wait()
    start, cpu = time.time(), time.process_time()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    results.put((start, time.time(), latencies, time.process_time() - cpu))


def run(base: str, n: int, procs: int, threads: int, server_cpu) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    per_thread = max(n // (procs * threads), 1)
    workers = [
        ctx.Process(target=client_process, args=(base, p, per_thread, threads, ready, go, results))
        for p in range(procs)
    ]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get()
    cpu0 = server_cpu()
    go.set()
    outcomes = [results.get() for _ in workers]
    cpu1 = server_cpu()
    for w in workers:
        w.join()
    elapsed = max(o[1] for o in outcomes) - min(o[0] for o in outcomes)
    latencies = sorted(x for o in outcomes for x in o[2])
    done = len(latencies)
    print(f"{done} customers.create in {elapsed:.2f}s from {procs} processes x {threads} threads: "
          f"{done / elapsed:.0f} creates/sec")
    print(f"latency p50 {statistics.median(latencies) * 1000:.2f} ms, "
          f"p99 {latencies[int(done * 0.99) - 1] * 1000:.2f} ms")
    client_cpu = sum(o[3] for o in outcomes) / done
    print(f"stripe-python CPU {client_cpu * 1e6:.0f} us per call (client side)")
    if cpu0 is not None and cpu1 is not None and cpu1 > cpu0:
        per = (cpu1 - cpu0) / done
        print(f"sandbox CPU {per * 1e6:.0f} us per create: {1 / per:.0f} creates/sec on one core; "
              f"client and sandbox sharing one core: {1 / (per + client_cpu):.0f} creates/sec")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()
    base, stop, server_cpu = start_in_process() if args.in_process else start_subprocess()
    print(f"sandbox at {base} ({'in-process' if args.in_process else 'subprocess'}), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    try:
        run(base, args.n, args.procs, args.threads, server_cpu)
    finally:
        stop()


if __name__ == "__main__":
    main()
