"""Command-line start-up: wall time of ``archsearch --help`` and ``archsearch list`` (target: under 1.5 s).

Each command runs in a fresh Python process (as a user's shell starts it), ``--repeats`` times;
prints the median and the slowest, and which heavy libraries (torch, Ray, matplotlib) the command
imported: none, since each command imports them only when it runs.

    python benchmarks/cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
COMMANDS = (["--help"], ["list"])
HEAVY = ("torch", "ray", "matplotlib")
# Runs the command as the entry point does, then names the heavy libraries it left imported.
PROBE = ("import sys\nfrom archsearch.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
         f"print('IMPORTED', sorted(name for name in {HEAVY!r} if name in sys.modules), file=sys.stderr)")


def time_command(arguments: list[str], repeats: int) -> tuple[list[float], str]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY),
                                                                           os.environ.get("PYTHONPATH")]))}
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archsearch.cli.main", *arguments], env=environment, check=True,
                       stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - started)
    probe = subprocess.run([sys.executable, "-c", PROBE, *arguments], env=environment, check=True,
                           capture_output=True, text=True)
    imported = next(line for line in probe.stderr.splitlines() if line.startswith("IMPORTED"))
    return seconds, imported.removeprefix("IMPORTED ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    for arguments in COMMANDS:
        seconds, imported = time_command(arguments, repeats)
        print(f"archsearch {' '.join(arguments):8s} median {statistics.median(seconds):.2f} s, "
              f"slowest {max(seconds):.2f} s over {repeats} runs; heavy imports: {imported}")


if __name__ == "__main__":
    main()
