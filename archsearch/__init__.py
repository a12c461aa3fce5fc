"""archsearch: architecture search and ablation for real-time semantic segmentation.

A network is data (an ArchSpec, usually YAML); ``build`` makes it a module, ``deploy``
folds it for inference, ``analyze`` counts it without training.
"""

from archsearch.arch.analyze import Analysis, analyze
from archsearch.arch.build import build, resolve_spec
from archsearch.arch.checkpoints import load_weights
from archsearch.arch.deploy import deploy
from archsearch.errors import ArchsearchError, SpecError
from archsearch.arch.presets import preset_names
from archsearch.arch.spec import ArchSpec, load_spec, parse_spec, save_spec

__all__ = [
    "Analysis", "ArchSpec", "ArchsearchError", "SpecError", "analyze", "build", "deploy", "load_spec",
    "load_weights", "parse_spec", "preset_names", "resolve_spec", "save_spec",
]
