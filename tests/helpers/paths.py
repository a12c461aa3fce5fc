"""Where the tests find the repository's fixtures, spaces and studies, wherever the test file sits."""

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
FIXTURES = REPOSITORY / "tests" / "fixtures"
SPACES = REPOSITORY / "spaces"
STUDIES = REPOSITORY / "studies"
