#!/usr/bin/env python3
"""Ctrl-C in a script host: run interrupt.lua under an interpreter (lua5.4, or interp-pool run),
send SIGINT to the interpreter's process while the script blocks in pool:map, f:result(),
ip.wait or ch:recv, and check that the call raised "interrupted" to the script (which catches
it) within 1 s of the signal (the figure is printed: ip.now() in the script and
time.monotonic() here read the same clock), and that every task that had started was
cancelled (its <close> handler saw the cancel; the script checks its futures and stats).

  run_interrupt.py INTERPRETER... -- MODE..."""
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BOUND = 1.0  # seconds from SIGINT to exit; the target is 0.1 s (a loaded machine: 1 s)


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def run(interp, mode):
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "log")
        p = subprocess.Popen(interp + [os.path.join(HERE, "interrupt.lua"), mode, log],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = p.stdout.readline()
        if first.strip() != "blocking":
            p.kill()
            sys.exit(f"{mode}: the script did not start: {first!r} {p.stderr.read()}")
        want = {"map": 2, "imap": 2, "result": 1, "wait": 2, "as_completed": 2}.get(mode, 0)
        deadline = time.monotonic() + 30
        while sum(l.startswith("started") for l in lines(log)) < want:
            if time.monotonic() > deadline:
                p.kill()
                sys.exit(f"{mode}: the tasks did not start: {lines(log)}")
            time.sleep(0.01)
        time.sleep(0.05)  # blocked for a moment
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGINT)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            sys.exit(f"{mode}: still running 30 s after SIGINT")
        took = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit(f"{mode}: exit status {p.returncode}:\n{err}")
        caught = [l for l in out.splitlines() if l.startswith("caught: ")]
        if not caught or not caught[0].startswith("caught: interrupted at "):
            sys.exit(f"{mode}: the script did not catch 'interrupted':\n{out}{err}")
        raised = float(caught[0].split()[3].rstrip(";")) - t0
        started = [l.split()[1] for l in lines(log) if l.startswith("started")]
        closed = {l.split()[1]: l for l in lines(log) if l.startswith("closed")}
        for n in started:
            if n not in closed or "cancel" not in closed[n]:
                sys.exit(f"{mode}: task {n} was not cancelled: {lines(log)}")
        if raised > BOUND:
            sys.exit(f"{mode}: 'interrupted' {raised * 1000:.0f} ms after SIGINT (bound {BOUND} s)")
        print(f"{' '.join(os.path.basename(a) for a in interp)} {mode}: 'interrupted' caught "
              f"{raised * 1000:.1f} ms after SIGINT (exit after {took * 1000:.0f} ms); "
              f"{len(started)} started tasks cancelled")


def main():
    sep = sys.argv.index("--")
    interp, modes = sys.argv[1:sep], sys.argv[sep + 1:]
    for mode in modes:
        run(interp, mode)


main()
