"""How archsearch's processes wait for each other on the CPU: OpenMP's wait policy and spin count.

torch's CPU kernels run on OpenMP (libgomp), which reads ``OMP_WAIT_POLICY`` and
``GOMP_SPINCOUNT`` once, when torch is imported. By default a thread that reaches a barrier
first spins (up to 300,000 pauses, milliseconds) before it sleeps: fastest on an idle machine,
but when another process holds a core, a trial's threads burn their time slices spinning for a
partner that is not running, and a training step got 10-15x slower instead of the 1.5-2.5x a
fair share of the cores costs (``benchmarks/thread_settings.py``; README "Threads on a shared
machine"). :data:`DEFAULT` is what those figures chose.

:func:`configure_process` is the one place that sets them, before torch is imported: the CLI
calls it first thing, Ray workers get :func:`worker_environment` as their ``runtime_env``, and
data-loader workers inherit the environment. A value the user already set in the environment
wins, then the study's ``runtime:`` section, then :data:`DEFAULT`. This module must not import
torch.
"""

from __future__ import annotations

import json
import os
import sys
import typing
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from archsearch.errors import SpecError
from archsearch.schema import Range, coerce, unknown_key

WaitPolicy = Literal["active", "passive"]
WAIT_POLICIES: tuple[str, ...] = typing.get_args(WaitPolicy)
VARIABLES = {"wait_policy": "OMP_WAIT_POLICY", "spin_count": "GOMP_SPINCOUNT"}
"""Each setting and the environment variable OpenMP reads it from."""
THREADS_VARIABLE = "OMP_NUM_THREADS"
MARKER = "ARCHSEARCH_RUNTIME"
"""Set by :func:`configure_process`: where each variable's value came from, so that a child
process (a Ray worker) reports the study or archsearch as the source, not the environment."""
ENVIRONMENT, STUDY, ARCHSEARCH, STARTED = "environment", "study", "archsearch default", "process start"


@dataclass(frozen=True)
class RuntimeSettings:
    """OpenMP's waiting: ``wait_policy`` "active" or "passive", ``spin_count`` (pauses a waiting
    thread spins before it sleeps); None leaves OpenMP's own default (spin 300,000, then sleep)."""

    wait_policy: WaitPolicy | None = None
    spin_count: Annotated[int | None, Range(0)] = None
    named: frozenset[str] = field(default=frozenset(), compare=False)  # the settings a study's section names

    FIELD_DESCRIPTION: typing.ClassVar[str] = f"a mapping of {', '.join(VARIABLES)}"

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self), include_extras=True)
        for name in VARIABLES:  # checked by the one schema, as a study section's fields are
            coerce(getattr(self, name), hints[name], name)

    @classmethod
    def parse_field(cls, data: Any, path: str) -> "RuntimeSettings":
        """The study's ``runtime:`` mapping over :data:`DEFAULT` (keys left out keep the default); the schema
        parses the study's section through this, recording which settings the section names."""
        if not isinstance(data, Mapping):
            raise SpecError("expected a mapping", path=path, value=data, allowed=cls.FIELD_DESCRIPTION)
        for key in data:
            if key not in VARIABLES:
                raise unknown_key(key, tuple(VARIABLES), f"{path}.")
        values = {name: getattr(DEFAULT, name) for name in VARIABLES}
        try:
            return cls(**{**values, **data}, named=frozenset(data))
        except SpecError as error:
            raise error.under(path) from None

    @classmethod
    def from_dict(cls, data: Any, source: str = "", *, path: str = "runtime") -> "RuntimeSettings":
        """:meth:`parse_field` for a section read on its own (before torch loads), naming ``source`` in errors."""
        try:
            return cls.parse_field(data, path)
        except SpecError as error:
            raise error.with_source(source) from None

    def environment(self) -> dict[str, str]:
        """The variables these settings set (a None setting sets none)."""
        values = {"wait_policy": self.wait_policy.upper() if self.wait_policy else None,
                  "spin_count": str(self.spin_count) if self.spin_count is not None else None}
        return {VARIABLES[name]: value for name, value in values.items() if value is not None}


DEFAULT = RuntimeSettings(wait_policy=None, spin_count=1_000)
"""Chosen by ``benchmarks/thread_settings.py`` (README "Threads on a shared machine")."""


@dataclass(frozen=True)
class EffectiveRuntime:
    """The OpenMP variables this process runs with, and where each came from (ENVIRONMENT, STUDY,
    ARCHSEARCH, or STARTED: torch was loaded before archsearch could set anything)."""

    values: Mapping[str, str | None]
    sources: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        """What a trial records: each variable's value (None: unset, OpenMP's default) and source."""
        return {name: {"value": self.values[name], "source": self.sources[name]} for name in sorted(self.values)}

    def record(self, torch_threads: int) -> str:
        """Canonical JSON of :meth:`to_dict` and the torch threads a trial trained with (trials.csv ``runtime``)."""
        return json.dumps({**self.to_dict(), "torch_threads": torch_threads}, sort_keys=True, separators=(",", ":"))

    def timing_key(self) -> str:
        """The part of the process's state that changes a multi-threaded CPU timing (latency cache keys)."""
        return ",".join(f"{name}={self.values.get(name) or 'openmp default'}" for name in VARIABLES.values())


def resolve(study: RuntimeSettings | None, environ: Mapping[str, str]) -> EffectiveRuntime:
    """Each variable from the environment if it is set there, else from the study (the settings its
    ``runtime:`` section names), else from :data:`DEFAULT`. A value an archsearch parent process set
    as its default (see MARKER) gives way to the study's."""
    study_keys = study.named if study is not None else frozenset()
    inherited = _marker(environ)
    wanted = (study or DEFAULT).environment()
    values: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    for name, variable in VARIABLES.items():
        same = variable in environ and inherited.get(variable, {}).get("value") == environ[variable]
        source = inherited[variable]["source"] if same else ENVIRONMENT
        if variable in environ and not (source == ARCHSEARCH and name in study_keys):
            values[variable], sources[variable] = environ[variable], source
        else:
            values[variable] = wanted.get(variable)
            sources[variable] = STUDY if name in study_keys else ARCHSEARCH
    values[THREADS_VARIABLE] = environ.get(THREADS_VARIABLE)
    sources[THREADS_VARIABLE] = ENVIRONMENT if THREADS_VARIABLE in environ else ARCHSEARCH
    return EffectiveRuntime(values, sources)


def configure_process(study: RuntimeSettings | None = None, *,
                      environ: MutableMapping[str, str] = os.environ) -> EffectiveRuntime:
    """Set OpenMP's variables for this process and its children; call before torch is imported.

    Once torch is loaded OpenMP has read its variables, so nothing is changed and the
    environment is reported as the process started with it (source STARTED where archsearch
    did not set it).
    """
    if "torch" in sys.modules:
        return current(environ)
    effective = resolve(study, environ)
    set_variables(effective, environ)
    return effective


def set_variables(effective: EffectiveRuntime, environ: MutableMapping[str, str]) -> None:
    """Write ``effective`` into ``environ``; a variable it leaves unset (a study's null over a default an
    archsearch parent set; never a user's value) is removed, so OpenMP uses its own default."""
    for variable in VARIABLES.values():
        if effective.values[variable] is None:
            environ.pop(variable, None)
    environ.update(_variables(effective))


def current(environ: Mapping[str, str] = os.environ) -> EffectiveRuntime:
    """The variables this process runs with, as :func:`configure_process` left them (if it ran)."""
    inherited = _marker(environ)
    names = [*VARIABLES.values(), THREADS_VARIABLE]
    values = {name: environ.get(name) for name in names}
    sources = {name: inherited[name]["source"] if name in inherited and inherited[name].get("value") == values[name]
               else (ENVIRONMENT if values[name] is not None else STARTED) for name in names}
    return EffectiveRuntime(values, sources)


def training_threads(configured: int | None, environ: Mapping[str, str] = os.environ) -> int | None:
    """The torch threads a trial trains with: ``OMP_NUM_THREADS`` where the user set it (a choice for this
    process, e.g. one of several studies sharing a machine), else the study's ``training.num_threads``.
    SpecError for a value that is not a positive integer."""
    if configured is None or current(environ).sources[THREADS_VARIABLE] != ENVIRONMENT:
        return configured  # None: torch already started with OMP_NUM_THREADS's count
    text = environ[THREADS_VARIABLE]
    if not text.strip().isdigit() or int(text) < 1:
        raise SpecError("must be a positive whole number of threads", value=text, allowed="an integer >= 1",
                        source=THREADS_VARIABLE)
    return int(text)


def worker_environment(study: RuntimeSettings | None, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables a worker process (a Ray worker) starts with: what :func:`configure_process` sets
    for ``study``, whether or not this process could still take them (torch may be loaded here)."""
    return _variables(resolve(study, environ))


def _variables(effective: EffectiveRuntime) -> dict[str, str]:
    """OpenMP's variables to set (not OMP_NUM_THREADS: torch's threads are the trainer's to set) and MARKER."""
    values = {name: value for name, value in effective.values.items() if value is not None and name in
              VARIABLES.values()}
    return {**values, MARKER: json.dumps(effective.to_dict(), sort_keys=True)}


def study_runtime(study_path: Path, overrides: list[str] | tuple[str, ...] = ()) -> RuntimeSettings | None:
    """The ``runtime:`` section of a study file and ``--set runtime.KEY=VALUE`` overrides, read before
    torch is imported; None when there is none, or the file cannot be read or checked here: reading
    the study properly reports that, with its usual message."""
    from archsearch.io import parse_yaml, read_yaml

    try:
        data = read_yaml(study_path)
        section = dict(data.get("runtime") or {}) if isinstance(data, Mapping) else {}
        for assignment in overrides:
            key, _, text = assignment.partition("=")
            if key.startswith("runtime."):
                section[key.removeprefix("runtime.")] = parse_yaml(text, source=f"--set {key}")
        return RuntimeSettings.from_dict(section, str(study_path)) if section else None
    except (SpecError, OSError, TypeError, ValueError):
        return None


def _marker(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    try:
        marker = json.loads(environ.get(MARKER, "{}"))
    except ValueError:
        return {}
    return marker if isinstance(marker, dict) else {}
