"""Run long-lived processes and keep them running: what ``make run`` starts its web server,
sandbox, worker and beat with.

    python -m hotdash.supervise NAME=COMMAND [NAME=COMMAND ...]

A process that exits, for any reason, is started again after a delay that doubles with each
exit in a row (``--backoff`` up to ``--backoff-max`` seconds) and goes back to ``--backoff``
once the process had stayed up for ``--stable`` seconds; each exit and restart is said on the
console. SIGINT (Ctrl-C), SIGTERM or SIGHUP stops them all: SIGTERM to each process, then
SIGKILL to its process group (what it started, a Celery worker's pool say) once it exited, or
``--grace`` seconds later if it has not, or at once on a second signal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

TICK_SECONDS = 0.1  # how often exits and due restarts are looked at
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def say(message: str) -> None:
    print(f"supervise: {message}", flush=True)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = 0.0  # the last restart delay (0: none yet)
    restart_at: float = 0.0
    restarts: int = 0

    def start(self) -> None:
        # Its own process group: Ctrl-C reaches only the supervisor, which stops the group.
        self.process = subprocess.Popen(self.argv, process_group=0)
        self.started_at = time.monotonic()

    def signal_group(self, signum: int) -> None:
        """Signal its process group: the process and whatever it started that is left."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # nobody left in the group
                os.killpg(self.process.pid, signum)


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


@dataclass
class Supervisor:
    children: list[Child]
    backoff: float = 1.0  # seconds before the first restart
    backoff_max: float = 30.0
    stable: float = 30.0  # uptime after which the delay starts over
    grace: float = 10.0  # from SIGTERM to SIGKILL when stopping
    signals: list[int] = field(default_factory=list)

    def on_signal(self, signum: int, _frame: object) -> None:
        self.signals.append(signum)
        if len(self.signals) > 1:  # asked twice: no more waiting
            for child in self.children:
                child.signal_group(signal.SIGKILL)

    def run(self) -> int:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.on_signal)
        for child in self.children:
            child.start()
        say("started " + ", ".join(f"{c.name} (pid {c.process.pid})" for c in self.children))
        while not self.signals:
            now = time.monotonic()
            for child in self.children:
                self.look_after(child, now)
            time.sleep(TICK_SECONDS)
        self.stop()
        return 0

    def look_after(self, child: Child, now: float) -> None:
        if child.process is not None:
            returncode = child.process.poll()
            if returncode is None:
                return
            child.signal_group(signal.SIGKILL)  # e.g. the pool of a worker that crashed
            child.process = None
            ran = now - child.started_at
            if ran >= self.stable or not child.delay:
                child.delay = self.backoff
            else:
                child.delay = min(child.delay * 2, self.backoff_max)
            child.restart_at = now + child.delay
            say(
                f"{child.name} {describe(returncode)} after {ran:.1f} s; "
                f"restarting in {child.delay:g} s"
            )
        elif now >= child.restart_at:
            child.start()
            child.restarts += 1
            say(f"{child.name} restarted (pid {child.process.pid}, restart {child.restarts})")

    def stop(self) -> None:
        say(f"{signal.Signals(self.signals[0]).name}: stopping everything")
        running = [child for child in self.children if child.process is not None]
        for child in running:
            # The process only: a Celery worker then finishes its running tasks (warm shutdown).
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in running:
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                say(f"{child.name} still running after {self.grace:g} s: killing it")
                child.signal_group(signal.SIGKILL)
                child.process.wait()
            child.signal_group(signal.SIGKILL)  # whatever it started and left behind
        say("stopped")


def parse_child(spec: str) -> Child:
    name, sep, command = spec.partition("=")
    if not sep or not name or not command.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=COMMAND, got {spec!r}")
    return Child(name=name, argv=shlex.split(command))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hotdash.supervise",
        description="Run processes, restart those that exit, stop them all on Ctrl-C.",
    )
    parser.add_argument("children", nargs="+", type=parse_child, metavar="NAME=COMMAND")
    options = {
        "backoff": "first restart delay (s)",
        "backoff-max": "longest restart delay (s)",
        "stable": "uptime (s) after which the delay starts over",
        "grace": "wait (s) after SIGTERM before SIGKILL when stopping",
    }
    for option, meaning in options.items():
        default = getattr(Supervisor, option.replace("-", "_"))
        parser.add_argument(f"--{option}", type=float, default=default, help=meaning)
    return Supervisor(**vars(parser.parse_args(argv))).run()


if __name__ == "__main__":
    sys.exit(main())
