"""`make run`'s supervisor: a process that exits is restarted with backoff; SIGTERM or SIGINT
stops every process it started, their children too."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hotdash.supervise import Child, Supervisor
from tests.engine.test_workers import wait_for

ROOT = Path(__file__).resolve().parents[2]

CRASHER = "import os, sys; open(sys.argv[1], 'a').write(f'{os.getpid()}\\n'); sys.exit(1)"
# Starts a child of its own (as a Celery worker starts its pool), then waits to be stopped.
STEADY = (
    "import subprocess, sys, time; "
    "kid = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "open(sys.argv[1], 'w').write(f'{kid.pid}\\n'); time.sleep(600)"
)
STUBBORN = (
    "import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "open(sys.argv[1], 'w').write(f'{os.getpid()}\\n'); time.sleep(600)"
)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def supervise(tmp_path: Path, *children: str, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    with open(tmp_path / "supervise.log", "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hotdash.supervise", *extra, *children],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def script(name: str, code: str, tmp_path: Path) -> str:
    return f"{name}={sys.executable} -c {code!r} {tmp_path / name}"


def test_a_process_that_exits_is_restarted_with_doubling_backoff(tmp_path):
    supervisor = supervise(
        tmp_path,
        script("crasher", CRASHER, tmp_path),
        script("steady", STEADY, tmp_path),
        extra=("--backoff", "0.1", "--backoff-max", "0.4", "--stable", "60"),
    )
    try:
        wait_for(lambda: len(pids(tmp_path / "crasher")) >= 5, timeout=60, what="4 restarts")
        [steady_kid] = pids(tmp_path / "steady")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
    finally:
        supervisor.kill()

    out = (tmp_path / "supervise.log").read_text()
    delays = [
        line.rsplit("restarting in ", 1)[1]
        for line in out.splitlines()
        if "crasher" in line and "restarting in" in line
    ]
    assert delays[:4] == ["0.1 s", "0.2 s", "0.4 s", "0.4 s"]  # doubles, up to --backoff-max
    assert "crasher exited with status 1 after" in out
    assert "crasher restarted (pid" in out and "restart 4)" in out
    assert "steady restarted" not in out  # a process that keeps running is left alone
    assert not alive(steady_kid)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_every_process_and_its_children(tmp_path, stop):
    supervisor = supervise(
        tmp_path,
        script("steady", STEADY, tmp_path),
        script("stubborn", STUBBORN, tmp_path),
        extra=("--grace", "0.5"),
    )
    try:
        wait_for(
            lambda: pids(tmp_path / "steady") and pids(tmp_path / "stubborn"),
            timeout=60,
            what="both processes to start",
        )
        [steady_kid], [stubborn] = pids(tmp_path / "steady"), pids(tmp_path / "stubborn")
        supervisor.send_signal(stop)
        assert supervisor.wait(timeout=30) == 0
    finally:
        supervisor.kill()

    out = (tmp_path / "supervise.log").read_text()
    assert f"{signal.Signals(stop).name}: stopping everything" in out
    assert "stubborn still running after 0.5 s: killing it" in out  # it ignores SIGTERM
    assert "restarted" not in out  # stopping is not crashing
    assert not alive(steady_kid)
    assert not alive(stubborn)


def test_the_delay_starts_over_once_a_process_had_stayed_up(tmp_path):
    supervisor = Supervisor(
        [Child("flaky", [sys.executable, "-c", "raise SystemExit(3)"])],
        backoff=1,
        backoff_max=8,
        stable=30,
    )
    [child] = supervisor.children
    delays = []
    for ran in (1, 1, 1, 1, 45, 1):  # seconds each run lasted before it exited
        child.start()
        child.process.wait(timeout=30)
        supervisor.look_after(child, now=child.started_at + ran)
        delays.append(child.delay)
    assert delays == [1, 2, 4, 8, 1, 2]
