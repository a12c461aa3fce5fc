"""Tests import their shared helpers (e.g. official_layouts) from this folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
