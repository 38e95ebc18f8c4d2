"""Worker processes on this machine: how many, how they start, how they stop.

What the local backend's pools (``backends.local``, ``backends.overlap``) and the
fits of the image kinds (``run_in_workers``) share:

- how many workers (``worker_count``): capped, and the cap reported, by the
  models to run, the usable CPUs when training on the CPU, and the available
  memory at ``WORKER_MEMORY_BYTES`` per worker;
- how a worker starts (``init_worker``): "spawn" (fork is unsafe once torch has
  started its thread pools), ``threads`` torch threads, freed memory kept for
  reuse (``manifold_lab._allocator``);
- how it stops: workers die with this process (on Linux the kernel sends them
  SIGKILL when it dies, ``prctl(PR_SET_PDEATHSIG)``, and everywhere a watchdog
  thread exits a worker whose parent is gone, so killing the parent, even with
  SIGKILL, leaves no worker running); they ignore SIGINT and SIGTERM (sent to the
  whole process group by Ctrl-C or a batch system): the parent handles them and
  kills the workers (``stop_workers``).
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Callable, Sequence

import torch
from tqdm import tqdm

from manifold_lab._allocator import keep_freed_memory

__all__ = ["WORKER_MEMORY_BYTES", "available_memory", "init_worker", "run_in_workers", "stop_workers",
           "usable_cpus", "worker_count", "worker_pool"]

#: Memory budgeted per worker process: the measured peak RSS of a toy_sphere
#: pgd_l2 job in a fresh process (torch + manifold_lab imported) is 460 MB.
WORKER_MEMORY_BYTES = 512 * 2**20

#: Seconds between a worker's checks that its parent is still alive (the
#: fallback where the kernel's parent-death signal does not exist).
_WATCHDOG_S = 1.0

#: ``prctl`` option: the signal a process receives when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def usable_cpus() -> int:
    """CPUs this process may run on (affinity-aware where the OS supports it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def available_memory() -> int | None:
    """Bytes of memory available to new processes (``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def worker_count(requested: int | None, n_jobs: int, device: str) -> tuple[int, str | None]:
    """Worker processes to start, and a one-line note if ``requested`` was capped.

    ``requested`` None means the default, the usable CPUs (capped silently). The
    cap is the smallest of: the jobs to run, the usable CPUs (CPU training only:
    each worker needs a core), and the available memory over ``WORKER_MEMORY_BYTES``.
    """
    limits = {f"{n_jobs} model(s) to run": n_jobs}
    if device == "cpu":
        limits[f"{usable_cpus()} usable CPU(s)"] = usable_cpus()
    memory = available_memory()
    if memory is not None:
        fit = max(1, memory // WORKER_MEMORY_BYTES)
        limits[f"memory for {fit} worker(s) of {WORKER_MEMORY_BYTES >> 20} MiB"] = fit
    cap = max(1, min(limits.values()))
    wanted = usable_cpus() if requested is None else requested
    if wanted <= cap:
        return wanted, None
    if requested is None:
        return cap, None
    return cap, f"--jobs {requested} capped to {cap} ({', '.join(limits)})"


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still applies
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(_WATCHDOG_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="parent watchdog", daemon=True).start()


def init_worker(threads: int, parent_pid: int) -> None:
    """A spawned worker's set-up (``ProcessPoolExecutor(initializer=...)``): ``threads``
    torch threads, freed memory kept, SIGINT/SIGTERM ignored, death with ``parent_pid``."""
    # Runs only in worker processes, never in the caller's.
    torch.set_num_threads(threads)
    keep_freed_memory()  # no page-fault round trip per training step (manifold_lab._allocator)
    # Ctrl-C and a batch system's SIGTERM reach the whole process group; only the
    # parent handles them (it kills the workers), so workers do not each print a
    # KeyboardInterrupt trace or die before the parent has recorded the stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    _no_process_locks()


def _no_process_locks() -> None:
    """Give tqdm a thread lock. tqdm makes a multiprocessing lock on its first bar, even a
    disabled one; in a spawned worker that is a named semaphore registered with the parent's
    resource tracker, and a worker killed on Ctrl-C or SIGTERM never unregisters it: the
    tracker then printed "There appear to be N leaked semaphore objects" after our one
    line. Workers draw no bars, so a thread lock does."""
    tqdm.set_lock(threading.RLock())


def worker_pool(workers: int, threads: int) -> cf.ProcessPoolExecutor:
    """A pool of ``workers`` spawned worker processes, each set up by :func:`init_worker`
    with ``threads`` torch threads and dying with this process."""
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=init_worker, initargs=(threads, os.getpid()))


def stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel pending jobs and kill running ones (their results are lost anyway)."""
    # The executor has no public way to stop a running job; its process table is
    # the only handle (absent in exotic implementations, hence getattr). Read it
    # before shutdown(), which drops it. kill, not terminate: workers ignore SIGTERM.
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.join(timeout=5)


def run_in_workers(calls: Sequence[tuple[Callable, tuple]], *, threads: int) -> list:
    """``[fn(*args) for fn, args in calls]``, each call in its own spawned worker process
    with ``threads`` torch threads (the workers die with this process and are killed,
    not waited for, when this process is interrupted). ``fn`` must be importable
    (module-level) and its arguments and result picklable."""
    pool = worker_pool(len(calls), threads)
    try:
        futures = [pool.submit(fn, *args) for fn, args in calls]
        results = [f.result() for f in futures]
    except BaseException:
        stop_workers(pool)
        raise
    pool.shutdown(wait=True)
    return results
