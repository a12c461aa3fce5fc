"""The run directory: everything a report or an export needs, and nothing else.

``study.db`` (Optuna storage, unless the study names another), ``study.yaml`` (the study as
run), ``specs/<arch_hash>.yaml`` (every concrete architecture), ``weights/trial_<n>.safetensors``
(trained train-form weights), ``latency.db`` (the latency cache) and ``trials.csv`` (one row per
trial, rewritten atomically from the storage after every trial).
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

try:
    import fcntl
except ImportError:  # not POSIX: runs sharing a directory are not serialized
    fcntl = None

from archsearch.io import output_error, write_text_atomic
from archsearch.run.study_file import write_study_file

if TYPE_CHECKING:  # the run directory's files need no network code (a dry run reads no torch)
    from archsearch.arch.spec import ArchSpec



@dataclass(frozen=True)
class RunDirectory:
    root: Path

    def create(self) -> "RunDirectory":
        (self.root / "specs").mkdir(parents=True, exist_ok=True)
        (self.root / "weights").mkdir(parents=True, exist_ok=True)
        return self

    @property
    def default_storage(self) -> str:
        return f"sqlite:///{(self.root / 'study.db').resolve()}"

    @property
    def trials_csv(self) -> Path:
        return self.root / "trials.csv"

    @property
    def latency_cache(self) -> Path:
        return self.root / "latency.db"

    def spec_path(self, arch_hash: str) -> Path:
        return self.root / "specs" / f"{arch_hash}.yaml"

    def weights_path(self, trial_number: int) -> Path:
        return self.root / "weights" / f"trial_{trial_number}.safetensors"

    def share_weights(self, from_trial: int, to_trial: int) -> None:
        """Give ``to_trial`` the weights file of ``from_trial`` (a hard link where the filesystem has them)."""
        source, target = self.weights_path(from_trial), self.weights_path(to_trial)
        try:
            target.unlink(missing_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
        except FileNotFoundError:  # the twin's weights are gone: this trial fails, the run goes on
            raise
        except OSError as error:  # the run's own file cannot be written (a full disk): stops the run
            raise output_error(target, error) from None

    def save_spec(self, spec: ArchSpec) -> Path:
        path = self.spec_path(spec.arch_hash)
        if not path.exists():
            write_text_atomic(path, spec.to_yaml())
        return path

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold an exclusive lock (``.<name>.lock`` in the run directory) against other processes of the run.

        For read-then-write steps that two processes of one study must not interleave: queueing the
        grid or a dead process's trials, and rewriting trials.csv from the storage.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.root / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o666)  # less the umask
        try:
            if fcntl is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def save_study(self, raw: dict) -> None:
        """``study.yaml``: the study as run (see ``run.study_file``)."""
        write_study_file(self.root, raw)
