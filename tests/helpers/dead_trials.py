"""A trial left RUNNING by a process that has died, as a killed `archsearch run` leaves one."""

from __future__ import annotations

import socket
import subprocess
import sys

import optuna


def leave_orphan_trial(study: optuna.Study) -> int:
    """Start a trial in ``study`` that claims a process id that no longer runs; return that id."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = study.ask({"pattern": optuna.distributions.CategoricalDistribution(["short", "long"])})
    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", int(dead.stdout))
    orphan.set_user_attr("seed", 0)
    return int(dead.stdout)
