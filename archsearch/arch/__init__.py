"""Networks as data: the spec grammar, its blocks and presets, and what is built, folded and counted from it."""
