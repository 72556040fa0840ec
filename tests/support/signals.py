"""Signals as a terminal's foreground job has them.

A job started in the background by a non-interactive shell (`cmd &`, CI runners, nohup) inherits
SIGINT and SIGQUIT ignored, and the launcher keeps signals that were ignored when it started
(so `nohup make up` is not stopped by a stray Ctrl-C). The Ctrl-C tests stand for a person at a
terminal, whose shell gives the foreground job default handling: this restores it in the child,
whatever the test runner itself inherited.
"""

from __future__ import annotations

import signal


def foreground_job_signals() -> None:
    """`preexec_fn` for a child that should see SIGINT/SIGQUIT as a terminal's job does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
