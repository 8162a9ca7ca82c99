"""Peak memory of a command and every process it starts (their PSS summed, sampled).

``/usr/bin/time -v`` reports one process's peak RSS; vLLM serves from child processes
(EngineCore, Worker), so a step such as ``babelstack models prepare`` (whose engine check
starts vLLM) is measured here as the largest sum over the whole process tree, sampled
every ``--interval-s``. The sum is of PSS (proportional set size: a page shared by n
processes counts 1/n in each), so shared libraries and memory-mapped weights are not
counted once per process as summed RSS would. Printed beside it: the largest RSS of a
single process (what ``time -v`` would say) and the wall time.

    .venv/bin/python bench/peak_memory.py [--interval-s 0.2] -- COMMAND [ARG...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psutil


def tree_memory(root: psutil.Process) -> tuple[int, int]:
    """(sum of PSS, largest single RSS) over ``root`` and its descendants, in bytes."""
    pss, rss = [], []
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for process in processes:
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        pss.append(info.pss)
        rss.append(info.rss)
    return sum(pss), max(rss, default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--interval-s", type=float, default=0.2)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    began = time.perf_counter()
    child = subprocess.Popen(command)
    root = psutil.Process(child.pid)
    peak_sum = peak_one = 0
    while child.poll() is None:
        total, largest = tree_memory(root)
        peak_sum, peak_one = max(peak_sum, total), max(peak_one, largest)
        time.sleep(args.interval_s)
    seconds = time.perf_counter() - began
    gib = 2**30
    print(
        f"\npeak memory of {' '.join(command)}:\n"
        f"  process tree (PSS summed)  {peak_sum / gib:.2f} GiB\n"
        f"  largest single RSS         {peak_one / gib:.2f} GiB\n"
        f"  wall time                  {seconds:.1f} s, exit {child.returncode}"
    )
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
