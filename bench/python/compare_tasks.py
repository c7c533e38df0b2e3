"""The task functions of compare.py, in a module of their own so that every executor (threads,
processes, and the sub-interpreters of InterpreterPoolExecutor) can import them by name.
They mirror bench_compare's Lua workloads (bench/compare/workloads.c)."""
import time


def cpu_task(n):
    s = 0
    for i in range(n):
        s += i
    return s


def io_task(ms):
    time.sleep(ms / 1000)
    return ms


def tiny_task(x):
    return x * 2


def data_task(t):
    s = 0.0
    for v in t:
        s += v
    return s


def startup_task(x):
    return x
