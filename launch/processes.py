"""Start, wait for and stop local child processes: one implementation for launchers and tests.

Every child runs in a process group of its own (`start_new_session`), so stopping it signals
the child and everything it spawned (uvicorn or gunicorn workers, MLflow's job runners) and
nothing else, and a terminal's Ctrl-C reaches only the launcher, which then stops its children
in order instead of racing them. `stop_all` sends SIGTERM to every group at once and SIGKILL to
whatever is left after a short grace, so a stop is bounded (`STOP_GRACE_S`).

A launcher's `main` runs inside `interruptible()`: the first SIGINT, SIGTERM or SIGHUP raises
`Interrupted` (later ones are ignored while it cleans up), and a signal that arrives while a
child is being spawned is held until the child is registered, so no child escapes. The launcher
also becomes a child subreaper: a worker orphaned by its server's death is reparented to the
launcher, which reaps it, instead of lingering as a zombie under an init that may never reap.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import psutil

START_TIMEOUT_S = 180.0  # two busy cores: importing torch + kserve, or MLflow's migrations
STOP_GRACE_S = 3.0  # SIGTERM -> SIGKILL; keeps a Ctrl-C under 5 s end to end
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_CHILD_SUBREAPER = 36


class Interrupted(Exception):
    """A stop signal arrived (SIGINT, SIGTERM, SIGHUP); `signum` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Guard:
    """Signal state of this process: the first stop signal, and whether to hold it back."""

    received: int | None = None
    raised = False
    holding = 0


def _on_signal(signum: int, _frame: object) -> None:
    if _Guard.received is None:
        _Guard.received = signum
    if _Guard.holding == 0 and not _Guard.raised:
        _Guard.raised = True
        raise Interrupted(signum)


@contextlib.contextmanager
def _held() -> Iterator[None]:
    """Delay a stop signal until the block is done (spawning and registering a child)."""
    _Guard.holding += 1
    try:
        yield
    finally:
        _Guard.holding -= 1
    if _Guard.holding == 0 and _Guard.received is not None and not _Guard.raised:
        _Guard.raised = True
        raise Interrupted(_Guard.received)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn the first SIGINT/SIGTERM/SIGHUP into `Interrupted`; reap orphans on the way out.

    Use it around a launcher's whole run in the main thread; tests that start processes
    directly do not need it.
    """
    # A signal ignored on entry stays ignored (SIGHUP under nohup, SIGINT in a background job).
    watched = [sig for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.signal(sig, _on_signal) for sig in watched}
    _Guard.received, _Guard.raised, _Guard.holding = None, False, 0
    become_subreaper()
    try:
        yield
    finally:
        reap_orphans()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_like(signum: int) -> None:
    """End this process by `signum` with its default action, as a shell expects of a child
    that was interrupted (so `make` and `bash` stop too instead of carrying on)."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def become_subreaper() -> bool:
    """Make orphaned descendants children of this process (Linux); True when it worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(timeout: float = 1.0) -> None:
    """Kill and reap descendants left behind (workers whose parent died); never blocks long."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in descendants(os.getpid()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process (macOS): it exists, so it runs
        return True


def exists(pid: int) -> bool:
    """Whether `pid` has a process-table entry at all (running or zombie)."""
    return psutil.pid_exists(pid)


def descendants(pid: int) -> set[int]:
    """Every process below `pid` in the process tree."""
    try:
        return {child.pid for child in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def group_members(pgids: Iterable[int]) -> set[int]:
    """Every process (zombies included) in any of the process groups `pgids`."""
    wanted, found = set(pgids), set()
    for pid in psutil.pids():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) in wanted:
                found.add(pid)
    return found


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when `url` answers HTTP 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Process:
    """One child process in its own process group, with an optional log file and ready URL.

    Args:
        name: how messages name it.
        cmd: the command line.
        ready_url: answers HTTP 200 once the process serves (None: ready when started).
        env: variables added to this process's environment (None removes one).
        log: file that takes stdout and stderr (None: inherit the launcher's terminal).
        cwd: working directory.
    """

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        ready_url: str | None = None,
        env: Mapping[str, str | None] | None = None,
        log: Path | None = None,
        cwd: Path | None = None,
    ):
        self.name, self.cmd, self.ready_url = name, list(cmd), ready_url
        self.env, self.log, self.cwd = dict(env or {}), log, cwd
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait: bool = True, timeout: float = START_TIMEOUT_S) -> Process:
        """Spawn it (a stop signal meanwhile is held until `self.proc` is set); then, with
        `wait`, block until `ready_url` answers."""
        merged = os.environ | {"PYTHONUNBUFFERED": "1"} | self.env
        env = {key: value for key, value in merged.items() if value is not None}
        out: object = None
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            out = self.log.open("ab")
        try:
            with _held():
                self.proc = subprocess.Popen(
                    self.cmd,
                    cwd=self.cwd,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT if out is not None else None,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        finally:
            if out is not None:
                out.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Poll `ready_url` until HTTP 200; RuntimeError (with the log's tail) if the process
        exits first or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while self.ready_url is not None:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"{self.name} exited with status {code}{self._tail_text()}")
            if http_ok(self.ready_url):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} not ready at {self.ready_url} after {timeout:.0f}s"
                    + self._tail_text()
                )
            time.sleep(0.3)

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the process group (the child and what it spawned)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signum)

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM the group, SIGKILL it after `grace_s`; the child is reaped."""
        stop_all([self], grace_s)

    def kill(self) -> None:
        """SIGKILL the group now: the abrupt death fault tests need."""
        if self.proc is not None:
            self.signal_group(signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        """The last `lines` of its log ('' without a log file)."""
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def _tail_text(self) -> str:
        tail = self.tail()
        return f"; last lines of {self.log}:\n{tail}" if tail else " (see its output above)"


def stop_all(processes: Iterable[Process], grace_s: float = STOP_GRACE_S) -> None:
    """Stop every process at once: SIGTERM each group, wait up to `grace_s` in total, SIGKILL
    the groups still there (the leader may be gone while its workers are not), reap."""
    started = [p for p in processes if p.proc is not None]
    for process in started:
        if process.proc.poll() is None:
            process.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    for process in started:
        if group_members([process.proc.pid]) or process.proc.poll() is None:
            process.signal_group(signal.SIGKILL)
        process.proc.wait()


def stop_pid(pid: int, grace_s: float = 20.0) -> None:
    """Stop the process group led by `pid`, a process this one did not spawn (a pid file's):
    SIGTERM, then SIGKILL after `grace_s`."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
