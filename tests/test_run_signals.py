"""Killing the command line: workers die with their parent, SIGTERM ends the run
like Ctrl-C, and a killed invocation's time is still counted.

Real processes: a driver runs ``manifold_lab.run.main`` on the small tiny preset (``SMALL``) with
two local workers whose jobs never end (they record their pids and sleep), and
the test kills it. Every wait is bounded; whatever survives is killed by pid.
On the Ray backend the default suite sends SIGTERM to ``run.main`` running in this
process on the session's Ray instance (a driver process starting its own Ray costs
~30 s: that variant is ``-m slow``).
"""

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from experiments_fakes import SMALL
from process_helpers import pid_alive
from manifold_lab.experiments.pipeline import run_experiment

ROOT = Path(__file__).resolve().parents[1]

DRIVER = """
import functools, sys
sys.path[:0] = [{tests!r}, {root!r}]

if __name__ == "__main__":  # spawned workers import this file too
    from experiments_fakes import SMALL, sleeping_run_job
    from manifold_lab import run
    from manifold_lab.experiments import presets, rundir, sweep
    from manifold_lab.experiments.backends import workers

    presets.PRESETS["tiny"] = (SMALL, SMALL)  # every kind of job, the fewest models
    rundir.HEARTBEAT_S = 0.2
    workers.usable_cpus = lambda: 2  # two workers even on a one-core machine
    sweep.run_job = functools.partial(sleeping_run_job, marker_dir=sys.argv[1])
    sys.exit(run.main(sys.argv[2:]))
"""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture(params=["local"])
def driver(request, tmp_path):
    """Start the driver on backend ``request.param``; yield (process, worker pids,
    out dir); kill leftovers."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(tests=str(ROOT / "tests"), root=str(ROOT)))
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(markers), "tiny", "--out", str(out), "--jobs", "2",
         "--no-progress", "--no-figures", "--backend", request.param],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # Ray workers import the fakes by name: tests/ on their path too.
        env={**os.environ, "OMP_NUM_THREADS": "1",
             "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])},
    )

    def workers():
        return [int(p.name) for p in markers.iterdir()]

    try:
        started = _wait_for(lambda: len(workers()) == 2 or proc.poll() is not None, 120)
        assert started and proc.poll() is None, proc.communicate(timeout=10)
        yield proc, workers(), out
    finally:
        for pid in [proc.pid, *workers()]:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_sigkill_of_the_parent_ends_its_workers_and_its_time_is_counted(driver, tmp_path):
    proc, workers, out = driver
    proc.kill()
    # communicate() returns only when every holder of the pipes (the workers) is gone.
    stdout, _ = proc.communicate(timeout=30)
    assert _wait_for(lambda: not any(pid_alive(pid) for pid in workers), 15), "workers outlived it"
    killed = json.loads((out / "run.json").read_text())["invocations_s"]
    assert len(killed) == 1 and killed[0] > 0  # the heartbeat recorded the killed invocation
    # Its lock died with it: the next run resumes, and counts the killed invocation.
    results = run_experiment(SMALL, out, jobs=1, progress=False, figures=False)
    invocations = json.loads((out / "run.json").read_text())["invocations_s"]
    assert invocations[0] == killed[0] and len(invocations) == 2
    assert results["runtime_total_s"] == pytest.approx(sum(invocations))


@pytest.mark.parametrize("driver", ["local", pytest.param("ray", marks=pytest.mark.slow)], indirect=True)
def test_sigterm_ends_the_run_like_ctrl_c_with_one_line(driver, request):
    proc, workers, out = driver
    # As a batch system does: the whole process group (Ray's own processes have theirs).
    os.killpg(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and "SIGTERM received" not in stderr, stderr
    lines = stderr.strip().splitlines()
    ours = [line for line in lines if line.startswith("python -m manifold_lab.run")]
    assert len(ours) == 1 and "terminated (SIGTERM); finished models are kept" in ours[0]
    if request.node.callspec.params["driver"] == "local":
        assert lines == ours  # (Ray logs a line of its own when it starts)
    assert _wait_for(lambda: not any(pid_alive(pid) for pid in workers), 15), "workers outlived it"
    invocations = json.loads((out / "run.json").read_text())["invocations_s"]
    assert len(invocations) == 1 and invocations[0] > 0
    assert not (out / "results.json").exists()


def test_sigterm_during_a_ray_run_ends_it_like_ctrl_c_with_one_line(ray_instance, tmp_path, monkeypatch, capsys):
    """``run.main(... --backend ray)`` in this process, joining the session's Ray instance:
    SIGTERM while both tasks sleep. Ray catches the exception in its own waits and
    re-raises a plain KeyboardInterrupt, so this is the path where the signal, not the
    exception's type, says it was SIGTERM."""
    from experiments_fakes import sleeping_run_job
    from manifold_lab import run
    from manifold_lab.experiments import presets, rundir, sweep

    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "run"
    monkeypatch.setitem(presets.PRESETS, "tiny", (SMALL, SMALL))
    monkeypatch.setattr(rundir, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(sweep, "run_job", functools.partial(sleeping_run_job, marker_dir=str(markers)))

    def workers():
        return [int(p.name) for p in markers.iterdir()]

    sent = []
    returned = threading.Event()

    def terminate_when_both_sleep():
        if not _wait_for(lambda: len(workers()) == 2, 120):
            return
        # Handled by run.main while it runs (_sigterm_as_interrupt). Should one be lost, send
        # it again, so that the test fails (below) instead of hanging on the sleeping tasks.
        while len(sent) < 5 and not returned.is_set():
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
            returned.wait(20)

    killer = threading.Thread(target=terminate_when_both_sleep, daemon=True)
    killer.start()
    try:
        code = run.main(["tiny", "--out", str(out), "--jobs", "2", "--no-progress", "--no-figures",
                         "--backend", "ray"])
    finally:
        returned.set()
    killer.join(timeout=130)
    _, stderr = capsys.readouterr()
    assert sent, "the two tasks never started"
    assert len(sent) == 1, f"the run ended only after {len(sent)} SIGTERMs"
    assert code == 128 + signal.SIGTERM, stderr
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    assert "terminated (SIGTERM); finished models are kept" in lines[0]
    assert _wait_for(lambda: not any(pid_alive(pid) for pid in workers()), 15), "workers outlived it"
    invocations = json.loads((out / "run.json").read_text())["invocations_s"]
    assert len(invocations) == 1 and invocations[0] > 0
    assert not (out / "results.json").exists()
    assert ray_instance.is_initialized()  # joined, not started: left running for the other tests


def test_a_sigterm_is_recorded_in_the_given_list_and_raised_as_terminated():
    """The list ``run.main`` hands the Ray backend (``stop_requested``) sees the SIGTERM,
    whether or not its exception reaches the caller; the old handler comes back."""
    from manifold_lab.run import Terminated, _sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    received: list[int] = []
    with pytest.raises(Terminated):
        with _sigterm_as_interrupt(received):
            assert received == []
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)   # the handler raises before this ends
    assert received == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before
