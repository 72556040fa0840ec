"""`launch.processes` with stand-in commands: a stop is bounded and leaves nothing behind, and
a launcher's stop signal becomes `Interrupted` once, never lost while a child is spawned."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from launch.processes import (
    STOP_GRACE_S,
    Process,
    group_members,
    http_ok,
    stop_all,
)
from tests.support.signals import foreground_job_signals

# A shell that ignores SIGTERM and has a child that ignores it too: only SIGKILL ends them.
STUBBORN = ["bash", "-c", "trap '' TERM; (trap '' TERM; sleep 300) & sleep 300"]


def _sleeps(group: int) -> int:
    """How many `sleep` processes run in process group `group`."""
    names = []
    for pid in group_members([group]):
        with contextlib.suppress(psutil.Error):
            names.append(psutil.Process(pid).name())
    return names.count("sleep")


def test_stop_all_is_bounded_and_leaves_no_member_of_any_group(tmp_path: Path) -> None:
    processes = [Process(f"stubborn-{i}", STUBBORN, log=tmp_path / f"{i}.log") for i in range(2)]
    for process in processes:
        process.start()
    groups = [p.pid for p in processes]
    # Each shell has trapped TERM once both its sleeps run (its child's and its own, which
    # inherit the ignored TERM): only then is the group as stubborn as it gets.
    deadline = time.monotonic() + 30
    while not all(_sleeps(g) == 2 for g in groups) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_sleeps(g) == 2 for g in groups), [group_members([g]) for g in groups]
    began = time.monotonic()
    stop_all(processes)
    assert time.monotonic() - began < STOP_GRACE_S + 1.5
    deadline = time.monotonic() + 2
    while group_members(groups) and time.monotonic() < deadline:
        time.sleep(0.05)  # orphans are reaped by init; zombies vanish in a moment
    assert not group_members(groups)
    assert all(p.proc.returncode == -signal.SIGKILL for p in processes)


def test_a_process_that_dies_before_ready_says_so_with_its_log(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; print('no model here'); sys.exit(3)"]
    process = Process("broken", cmd, "http://127.0.0.1:9/never", log=tmp_path / "broken.log")
    with pytest.raises(RuntimeError, match=r"broken exited with status 3(.|\n)*no model here"):
        process.start()


def test_ready_url_is_polled_until_it_answers(tmp_path: Path) -> None:
    from launch.processes import free_port

    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        f"import time, http.server as h; time.sleep(1); "
        f"h.HTTPServer(('127.0.0.1', {port}), h.SimpleHTTPRequestHandler).serve_forever()",
    ]
    process = Process("http", cmd, f"http://127.0.0.1:{port}/", cwd=tmp_path)
    try:
        process.start(timeout=30)
        assert http_ok(f"http://127.0.0.1:{port}/")
    finally:
        process.stop()
    assert not process.running


LAUNCHER = """
import sys, time
from launch.processes import Interrupted, Process, exit_like, interruptible, stop_all
started = []
with interruptible():
    try:
        for i in range(40):  # spawning continuously: the signal lands during a spawn
            started.append(Process(f"sleep{i}", ["sleep", "300"]))
            started[-1].start()
            print(started[-1].pid, flush=True)
        time.sleep(300)
    except Interrupted as stop:
        signum = stop.signum
    finally:
        stop_all(started)
exit_like(signum)
"""


def test_a_signal_during_spawning_stops_every_child_and_ends_the_launcher_by_it() -> None:
    root = Path(__file__).resolve().parents[2]
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER], cwd=root, stdout=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=foreground_job_signals,
    )  # fmt: skip
    pids = [int(launcher.stdout.readline()) for _ in range(3)]
    launcher.send_signal(signal.SIGINT)
    assert launcher.wait(timeout=STOP_GRACE_S + 2) == -signal.SIGINT
    pids += [int(line) for line in launcher.stdout.read().split()]
    assert not group_members(pids), "a child outlived its launcher"
