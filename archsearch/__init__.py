"""archsearch: architecture search and ablation for real-time semantic segmentation."""

from archsearch.errors import ArchsearchError, SpecError

__all__ = ["ArchsearchError", "SpecError"]
