"""archsearch: architecture search and ablation for real-time semantic segmentation.

A network is data (an ArchSpec, usually YAML); ``build`` makes it a module, ``deploy``
folds it for inference, ``analyze`` counts it without training.

The names below are loaded on first use, so that the command line (``archsearch --help``)
starts without importing torch.
"""

from archsearch.lazy import lazy_exports

_EXPORTS = {
    "Analysis": "archsearch.arch.analyze", "analyze": "archsearch.arch.analyze",
    "build": "archsearch.arch.build", "resolve_spec": "archsearch.arch.build",
    "load_weights": "archsearch.arch.checkpoints", "deploy": "archsearch.arch.deploy",
    "ArchsearchError": "archsearch.errors", "SpecError": "archsearch.errors",
    "preset_names": "archsearch.arch.presets",
    "ArchSpec": "archsearch.arch.spec", "load_spec": "archsearch.arch.spec", "parse_spec": "archsearch.arch.spec",
    "save_spec": "archsearch.arch.spec",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
