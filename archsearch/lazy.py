"""Packages that load their exported names on first use (PEP 562), so that importing a light part of
archsearch (reading a study, the CLI's first steps) does not import torch through a package's ``__init__``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's ``__getattr__``: each name in ``exports`` is read from its module (the mapping's value)
    when first asked for; any other name is an AttributeError, as for a plain module."""
    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(exports[name]), name)
    return __getattr__
