"""The run directory: who may write it, what in it can be trusted, what it cost.

A run directory (``--out``) holds ``run.json``, ``models/<id>.json`` and the
reports of one configuration. Everything here protects it and the user's files:

- ``check_out_path`` / ``check_contents``: an empty path is refused, and so is a
  non-empty directory that is not a run directory (no ``run.json``), so a run never
  deletes or overwrites a file it did not write;
- ``RunLock``: an exclusive lock (``run.lock``) held for the whole run; a second
  writer into the same directory is refused with a message naming the holder. The
  operating system drops the lock when its holder dies, even by SIGKILL;
- ``read_run_file``, ``read_model_file``: ``run.json`` and model files that are
  readable but malformed (missing or null metrics, wrong types) are treated as
  unfinished, with a one-line ``RunWarning`` naming the file; only what cannot be
  recovered (another configuration's run, a ``run.json`` that is not ours) is refused;
- ``RunFile``: ``run.json`` with the wall-clock seconds of every invocation,
  refreshed by a heartbeat, so invocations that were killed or failed are counted
  in ``runtime_total_s`` (a killed one up to its last heartbeat).

Errors are ``RunDirError`` (a ``ValueError``: one line saying what to do).
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import warnings
from numbers import Real
from pathlib import Path

from manifold_lab.experiments.metric_fields import model_fields
from manifold_lab.experiments.reports import atomic_write_json, read_json

__all__ = [
    "HEARTBEAT_S",
    "LOCK_FILE",
    "MODELS_DIR",
    "RUN_FILE",
    "RunDirError",
    "RunFile",
    "RunLock",
    "RunWarning",
    "check_contents",
    "check_out_path",
    "read_model_file",
    "read_run_file",
    "row_problem",
]

RUN_FILE = "run.json"
LOCK_FILE = "run.lock"
MODELS_DIR = "models"

#: Seconds between refreshes of the running invocation's time in ``run.json``: a
#: killed invocation is counted up to its last refresh (one small atomic write).
HEARTBEAT_S = 5.0

#: Metric fields that are finite by construction (a fraction and two means of
#: squares) and that the regime labels need; the ratios and cosines may be null
#: (a ratio over zero is stored as null).
_FINITE_FIELDS = ("accuracy", "on_robustness", "off_robustness")
_CURVE_FIELDS = ("sigmas", "on", "off", "on_stderr", "off_stderr")


class RunDirError(ValueError):
    """A run directory that must not be written; the message says what to do."""


class RunWarning(UserWarning):
    """Something in the run directory was recovered (one line, names the file)."""


def _warn(message: str) -> None:
    warnings.warn(message, RunWarning, stacklevel=3)


# ---------------------------------------------------------------- the directory


def check_out_path(out: str | os.PathLike) -> Path:
    """``out`` as a ``Path``; ``RunDirError`` if empty or an existing non-directory."""
    if not str(out).strip():
        raise RunDirError("--out is empty; give a directory (a new one, or a run directory "
                          "to resume)")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"--out {out} is an existing file; give a directory")
    return path


def _is_leftover(name: str) -> bool:
    # Written by a run killed before its run.json existed: its lock and the temp file
    # of an unfinished atomic write of run.json.
    return name == LOCK_FILE or (name.startswith(f".{RUN_FILE}.") and name.endswith(".tmp"))


def check_contents(out: Path) -> None:
    """Refuse a non-empty directory that is not a run directory.

    A run directory has ``run.json``; a directory holding only what a killed run left
    before writing it (``run.lock``) counts as empty.
    """
    if not out.is_dir() or (out / RUN_FILE).exists():
        return
    others = sorted(p.name for p in out.iterdir() if not _is_leftover(p.name))
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise RunDirError(
            f"--out {out} is a non-empty directory that is not a run directory (it holds "
            f"{shown} and no {RUN_FILE}); give a new or empty directory"
        )


class RunLock:
    """Exclusive lock on a run directory (``out/run.lock``), as a context manager.

    ``flock`` on POSIX (also across NFS clients on Linux), ``msvcrt.locking`` on
    Windows; released by the operating system when the holder exits in any way.
    The lock file names the holder (pid, host, start time) for the refusal message;
    it stays in the directory (removing it would race with a waiting writer).
    """

    def __init__(self, out: str | os.PathLike):
        self.path = Path(out) / LOCK_FILE
        self._fh = None

    def __enter__(self) -> "RunLock":
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            _lock(fh)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise RunDirError(
                f"{self.path.parent} is being written by another run ({holder}); wait for it "
                "to finish or choose another --out"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}, since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the descriptor releases the lock
            self._fh = None


def _lock(fh) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


# ---------------------------------------------------------------- run.json


def _number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _durations(value) -> list[float] | None:
    """``value`` as a list of finite non-negative seconds, or None if it is not one."""
    if not isinstance(value, list) or not all(_number(v) and math.isfinite(v) and v >= 0
                                              for v in value):
        return None
    return [float(v) for v in value]


def read_run_file(out: Path, fingerprint: str, settings: dict | None = None) -> dict:
    """The stored ``run.json`` of ``out`` (``{}`` if none), validated.

    ``settings`` (this run's ``run.json`` fields: ``preset``, ``base_seed``, ``quick``,
    ``config``) lets the refusal of another configuration name the settings that differ.

    Returns a dict whose ``invocations_s`` (if present) is a list of seconds.

    Raises
    ------
    RunDirError
        ``run.json`` is another configuration's, or it is malformed in a directory
        with no other sign of a run (no ``models/``): it may not be ours to rewrite.
    """
    path = out / RUN_FILE
    if not path.exists():
        return {}
    try:
        stored = read_json(path)
        problem = None
    except (OSError, ValueError) as exc:
        stored, problem = None, f"unreadable ({type(exc).__name__})"
    if problem is None and not (isinstance(stored, dict)
                                and isinstance(stored.get("fingerprint"), str)):
        problem = "not a run file (no fingerprint)"
    if problem is not None:
        if not (out / MODELS_DIR).is_dir():
            raise RunDirError(f"{path} is {problem} and {out} holds no {MODELS_DIR}/; it may "
                              "not be a manifold_lab run: choose another --out")
        _warn(f"{path} is {problem}; rewriting it and reusing only the model files that "
              "match this configuration")
        return {}
    if stored["fingerprint"] != fingerprint:
        raise RunDirError(
            f"{out} holds a run of another configuration ({_what_differs(stored, settings)}); "
            "choose a new --out or delete that directory"
        )
    if "invocations_s" in stored:
        durations = _durations(stored["invocations_s"])
        if durations is None:
            _warn(f"{path}: invocations_s is not a list of seconds; earlier invocations are "
                  "left out of runtime_total_s")
            durations = []
        stored = dict(stored, invocations_s=durations)
    return stored


#: Differing settings named in the refusal of another configuration's run directory.
_SHOWN_DIFFERENCES = 3


def _flatten(value, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and scalars are leaves)."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _what_differs(stored: dict, settings: dict | None) -> str:
    """``"seed 0 there, 1 here; data.data_dir '/a' there, '/b' here"`` (at most
    ``_SHOWN_DIFFERENCES``), or what the stored run was when this run's settings are unknown."""
    if settings is None:
        return (f"preset {stored.get('preset')!r}, seed {stored.get('base_seed')!r}, "
                f"quick {stored.get('quick')!r}")
    settings = json.loads(json.dumps(settings, default=str))  # as stored: tuples become lists
    there = {k: stored.get(k, "<absent>") for k in ("preset", "base_seed", "quick")}
    here = {k: settings.get(k) for k in there}
    if isinstance(stored.get("config"), dict):  # the preset's fields, when the stored run has them
        there.update(_flatten(stored["config"], "config"))
        here.update(_flatten(settings.get("config") or {}, "config"))
    config_keys = sorted((k for k in set(there) | set(here) if k.startswith("config.")),
                         key=lambda k: (k.count("."), k))
    names = [k for k in (*("preset", "base_seed", "quick"), *config_keys)
             if there.get(k, "<absent>") != here.get(k, "<absent>")]
    if not names:
        return "the same settings, written by another manifold_lab version"
    shown = "; ".join(f"{k.removeprefix('config.')} {there.get(k, '<absent>')!r} there, "
                      f"{here.get(k, '<absent>')!r} here" for k in names[:_SHOWN_DIFFERENCES])
    more = f"; {len(names) - _SHOWN_DIFFERENCES} more" if len(names) > _SHOWN_DIFFERENCES else ""
    return shown + more


class RunFile:
    """``run.json`` of the current invocation, with its running time kept current.

    ``info["invocations_s"]`` lists the wall-clock seconds of every invocation into
    the directory, this one last. Use as a context manager: entering appends this
    invocation and starts a heartbeat thread that refreshes its seconds every
    ``HEARTBEAT_S``; leaving (also on an exception or Ctrl-C) records the final time:
    the one given to ``finish``, else the elapsed time.
    """

    def __init__(self, out: Path, info: dict, *, heartbeat_s: float | None = None):
        self.path = out / RUN_FILE
        self.info = info
        self._heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.perf_counter()
        self._final: float | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def save(self, seconds: float | None = None) -> None:
        """Record ``seconds`` (default: elapsed) as this invocation's time and write."""
        with self._lock:
            self.info["invocations_s"][-1] = self.elapsed() if seconds is None else seconds
            atomic_write_json(self.path, self.info)

    def finish(self, seconds: float) -> None:
        """Record ``seconds`` as this invocation's final time."""
        self._final = seconds
        self.save(seconds)

    def __enter__(self) -> "RunFile":
        self._t0 = time.perf_counter()
        self.info.setdefault("invocations_s", []).append(0.0)
        self.save(0.0)
        self._thread = threading.Thread(target=self._beat, name="run.json heartbeat",
                                        daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            try:
                self.save()
            except OSError:  # a full disk must not kill the run; the final save reports it
                pass

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.save(self._final)


# ---------------------------------------------------------------- model files


def _problem_in_curve(curve) -> str | None:
    if not isinstance(curve, dict):
        return "robustness_curve is not an object"
    lengths = set()
    for key in _CURVE_FIELDS:
        values = curve.get(key)
        if not isinstance(values, list) or not all(v is None or _number(v) for v in values):
            return f"robustness_curve.{key} is not a list of numbers"
        lengths.add(len(values))
    return None if len(lengths) == 1 else "robustness_curve lists differ in length"


def row_problem(row, *, trained: bool = True, theorem: bool = False) -> str | None:
    """Why ``row`` (a stored model row) cannot be used, or None if it can.

    Checks what the reports read: the declared per-model metric fields (present; numbers, or null
    where a ratio or cosine may be undefined), the robustness curve, the identity
    fields of a ``trained`` model (not the Bayes-optimal one), timings, and the
    Theorem 3.1 table when ``theorem``.
    """
    if not isinstance(row, dict):
        return "row is not an object"
    if not isinstance(row.get("id"), str):
        return "id is missing"
    for key in (f.name for f in model_fields()):
        if key not in row:
            return f"{key} is missing"
        value = row[key]
        if value is None and key in _FINITE_FIELDS:
            return f"{key} is null"
        if value is not None and not _number(value):
            return f"{key} is {type(value).__name__}, not a number"
    problem = _problem_in_curve(row.get("robustness_curve"))
    if problem:
        return problem
    if trained:
        for key, kind in (("regularizer", str), ("strength", Real), ("strength_index", int),
                          ("seed", int)):
            if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
                return f"{key} is missing or not a {kind.__name__}"
    for key in ("train_s", "eval_s", "epochs_run"):
        if key in row and not _number(row[key]):
            return f"{key} is not a number"
    if theorem:
        table = row.get("theorem_3_1")
        if not (isinstance(table, dict) and isinstance(table.get("markdown"), str)
                and isinstance(table.get("rows"), list)):
            return "theorem_3_1 table is missing or malformed"
    return None


def read_model_file(path: Path, fingerprint: str, *, trained: bool = True,
                    theorem: bool = False, quiet: bool = False) -> dict | None:
    """The row stored in ``path`` if it is a finished model of this configuration.

    Returns None (the model is recomputed) for a file that is unreadable, malformed,
    or of another configuration or version, with a one-line ``RunWarning`` naming
    the file unless ``quiet``.
    """
    try:
        stored = read_json(path)
    except (OSError, ValueError) as exc:
        problem = f"is unreadable ({type(exc).__name__})"
    else:
        if not isinstance(stored, dict) or "row" not in stored:
            problem = "is not a model file"
        elif stored.get("fingerprint") != fingerprint:
            problem = "is from another configuration or version"
        else:
            reason = row_problem(stored["row"], trained=trained, theorem=theorem)
            if reason is None and stored["row"]["id"] != path.stem:
                reason = f"its id {stored['row']['id']!r} is not its file name"
            if reason is None:
                return stored["row"]
            problem = f"is malformed ({reason})"
    if not quiet:
        _warn(f"{path} {problem}; recomputing that model")
    return None

