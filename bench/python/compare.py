#!/usr/bin/env python3
"""bench/python/compare.py - bench_compare's workloads on Python's executors.

Runs the same workloads as bench/compare (cpu, io, tiny-submit, tiny-map, data, startup) with
a plain loop (sequential), ThreadPoolExecutor (thread: the GIL model), ProcessPoolExecutor
(process) and, on Python 3.14 or newer, InterpreterPoolExecutor (interpreter), with 1, 2 and
online-CPUs workers. Prints a table and writes a CSV with bench_compare's columns (impl is
"python"), so bench_compare's chart can put both side by side.

Standard library only. Usage: compare.py [--quick] [--runs N] [--csv PATH] [--only LIST]
"""
import argparse
import concurrent.futures as cf
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_tasks as T  # noqa: E402  (the functions every executor imports by name)

CSV_HEADER = "impl,executor,workload,workers,tasks,runs,wall_s,speedup,tasks_per_s,peak_rss_kib"


# ---- peak resident memory -----------------------------------------------------------------

def hwm_reset():
    """Reset this process's peak RSS (VmHWM) to its current RSS, where the kernel allows."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def hwm_kib(pid="self"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    if pid == "self":
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return 0


def children_hwm_kib(ex):
    """Summed peak RSS of a ProcessPoolExecutor's worker processes (read while they live)."""
    procs = getattr(ex, "_processes", None) or {}
    return sum(hwm_kib(pid) for pid in list(procs))


# ---- executors ----------------------------------------------------------------------------

class Sequential:
    """Runs each call at once on the calling thread; the baseline of every speedup."""

    class _Done:
        def __init__(self, value):
            self._value = value

        def result(self):
            return self._value

    def __init__(self, workers=1):
        pass

    def submit(self, fn, *args):
        return self._Done(fn(*args))

    def map(self, fn, items, chunksize=1):
        return [fn(x) for x in items]

    def shutdown(self, wait=True):
        pass


def executors():
    """(name, factory(workers)) of every executor this Python has."""
    out = [("sequential", lambda w: Sequential()),
           ("thread", lambda w: cf.ThreadPoolExecutor(max_workers=w)),
           ("process", lambda w: cf.ProcessPoolExecutor(max_workers=w))]
    ipe = getattr(cf, "InterpreterPoolExecutor", None)
    if sys.version_info >= (3, 14) and ipe is not None:
        # Sub-interpreters do not inherit sys.path[0] (this script's folder), where
        # compare_tasks lives; the builtin exec is shareable and puts it there.
        here = os.path.dirname(os.path.abspath(__file__))
        init = f"import sys\nif {here!r} not in sys.path: sys.path.insert(0, {here!r})"
        out.append(("interpreter",
                    lambda w: ipe(max_workers=w, initializer=exec, initargs=(init,))))
    else:
        print(f"note: InterpreterPoolExecutor skipped: needs Python 3.14 or newer, this is "
              f"{sys.version.split()[0]} ({sys.executable})")
    return out


# ---- workloads: each returns the number of tasks; a wrong result raises ----------------------

class WrongResult(Exception):
    pass


def expect(got, want, what):
    if got != want or type(got) is not type(want):
        raise WrongResult(f"{what}: got {got!r}, want {want!r}")


def run_submit(ex, fn, args, wants, what):
    futures = [ex.submit(fn, a) for a in args]
    results = [f.result() for f in futures]
    for i, (r, w) in enumerate(zip(results, wants)):
        expect(r, w, f"{what} task {i}")
    return len(args)


def wl_cpu(ex, p, workers):
    n = p["cpu_n"]
    return run_submit(ex, T.cpu_task, [n] * p["cpu_tasks"], [n * (n - 1) // 2] * p["cpu_tasks"],
                      "cpu_task")


def wl_io(ex, p, workers):
    ms = p["io_ms"]
    return run_submit(ex, T.io_task, [ms] * p["io_tasks"], [ms] * p["io_tasks"], "io_task")


def wl_tiny_submit(ex, p, workers):
    n = p["tiny_tasks"]
    return run_submit(ex, T.tiny_task, range(n), [2 * i for i in range(n)], "tiny_task")


def wl_tiny_map(ex, p, workers):
    n = p["tiny_tasks"]
    # the same chunking as bench_compare's baselines: about four chunks per worker
    chunk = max(1, -(-n // (4 * workers)))
    out = list(ex.map(T.tiny_task, range(n), chunksize=chunk))
    for i, r in enumerate(out):
        expect(r, 2 * i, f"tiny_task (map) {i}")
    return n


DATA = {}


def wl_data(ex, p, workers):
    n = p["data_len"]
    if n not in DATA:
        DATA[n] = [(i % 1024) * 0.25 + 0.5 for i in range(n)]
    table = DATA[n]
    want = 0.0
    for v in table:
        want += v
    return run_submit(ex, T.data_task, [table] * p["data_tasks"], [want] * p["data_tasks"],
                      "data_task")


WORKLOADS = [("cpu", wl_cpu, False), ("io", wl_io, False), ("tiny-submit", wl_tiny_submit, True),
             ("tiny-map", wl_tiny_map, True), ("data", wl_data, True), ("startup", None, False)]


def warm(ex, workers):
    """Start every worker (process pools start theirs lazily) before the clock runs."""
    fs = [ex.submit(T.startup_task, i) for i in range(4 * workers)]
    for i, f in enumerate(fs):
        expect(f.result(), i, "warm-up")


def measure(name, factory, wl, fn, warmup, workers, p, runs, quick):
    hwm_reset()
    times, child = [], 0
    if fn is None:  # startup: create, one task, shut down, each cycle timed whole
        runs = 7 if quick else 21
        for _ in range(runs):
            t0 = time.perf_counter()
            ex = factory(workers)
            expect(ex.submit(T.startup_task, 42).result(), 42, "startup_task")
            child = max(child, children_hwm_kib(ex))
            ex.shutdown(wait=True)
            times.append(time.perf_counter() - t0)
        tasks = 1
    else:
        ex = factory(workers)
        try:
            warm(ex, workers)
            if warmup:
                fn(ex, p, workers)
            for _ in range(runs):
                t0 = time.perf_counter()
                tasks = fn(ex, p, workers)
                times.append(time.perf_counter() - t0)
            child = children_hwm_kib(ex)
        finally:
            ex.shutdown(wait=True)
    wall = statistics.median(times)
    return dict(impl="python", executor=name, workload=wl, workers=workers, tasks=tasks,
                runs=runs, wall_s=wall, speedup=0.0, tasks_per_s=tasks / wall,
                peak_rss_kib=hwm_kib() + child)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (well under a minute)")
    ap.add_argument("--runs", type=int, default=0, help="timed runs per row (median reported)")
    ap.add_argument("--csv", default="build/compare_python.csv")
    ap.add_argument("--only", default="", help="comma-separated workloads")
    ap.add_argument("--exec", default="", help="comma-separated executors (sequential always runs)")
    a = ap.parse_args()
    runs = a.runs or (3 if a.quick else 5)
    # Python's loop is ~20x slower than Lua's and its process pool pays ~50 us per task: the
    # quick mode shrinks cpu and tiny so that it stays short; speedups and tasks/s compare,
    # wall times across languages do not.
    if a.quick:
        p = dict(cpu_n=500_000, cpu_tasks=15, io_tasks=8, io_ms=20, tiny_tasks=10_000,
                 data_tasks=16, data_len=131072)
    else:
        p = dict(cpu_n=10_000_000, cpu_tasks=15, io_tasks=32, io_ms=20, tiny_tasks=100_000,
                 data_tasks=64, data_len=131072)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    worker_counts = sorted({1, 2, cpus or 1})
    only = set(filter(None, a.only.split(",")))
    execs_wanted = set(filter(None, a.exec.split(",")))

    print(f"compare.py ({'quick' if a.quick else 'full'} mode): Python {sys.version.split()[0]}, "
          f"{cpus} CPUs, median of {runs} runs")
    print(f"  cpu: {p['cpu_tasks']} tasks summing 0..{p['cpu_n']}-1 | io: {p['io_tasks']} tasks "
          f"sleeping {p['io_ms']} ms | tiny: {p['tiny_tasks']} tasks x*2 | data: "
          f"{p['data_tasks']} tasks of {p['data_len']} floats | startup: create, 1 task, shutdown")
    execs = executors()
    print()
    print(f"{'workload':<12} {'executor':<11} {'workers':>7} {'tasks':>7} {'wall ms':>11} "
          f"{'speedup':>8} {'tasks/s':>12} {'peak RSS MiB':>13}")
    rows = []
    for wl, fn, warmup in WORKLOADS:
        if only and wl not in only:
            continue
        seq_wall = None
        for name, factory in execs:
            if name != "sequential" and execs_wanted and name not in execs_wanted:
                continue
            for w in ([1] if name == "sequential" else worker_counts):
                try:
                    r = measure(name, factory, wl, fn, warmup, w, p, runs, a.quick)
                except WrongResult as e:
                    print(f"compare.py: {wl} on {name} with {w} workers FAILED: {e}",
                          file=sys.stderr)
                    return 2
                except Exception as e:  # an executor that cannot run here (e.g. sharing rules)
                    print(f"{wl:<12} {name:<11} {w:>7}   skipped: {type(e).__name__}: {e}")
                    continue
                if name == "sequential":
                    seq_wall = r["wall_s"]
                r["speedup"] = seq_wall / r["wall_s"] if seq_wall else 0.0
                rows.append(r)
                print(f"{wl:<12} {name:<11} {w:>7} {r['tasks']:>7} {r['wall_s'] * 1e3:>11.2f} "
                      f"{r['speedup']:>8.2f} {r['tasks_per_s']:>12.0f} "
                      f"{r['peak_rss_kib'] / 1024:>13.1f}", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.csv)), exist_ok=True)
    with open(a.csv, "w") as f:
        f.write(CSV_HEADER + "\n")
        for r in rows:
            f.write(f"{r['impl']},{r['executor']},{r['workload']},{r['workers']},{r['tasks']},"
                    f"{r['runs']},{r['wall_s']:.6f},{r['speedup']:.6g},{r['tasks_per_s']:.1f},"
                    f"{r['peak_rss_kib']}\n")
    print(f"\nCSV: {a.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
