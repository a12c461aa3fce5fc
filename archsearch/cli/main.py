"""The ``archsearch`` command line. Bad input ends with one message and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from archsearch.cli.arguments import EXIT_BAD_INPUT, CommandParser
from archsearch.cli.build import add_build_commands
from archsearch.cli.dashboard import add_dashboard_command
from archsearch.cli.export import add_export_command
from archsearch.cli.fidelity import add_fidelity_command
from archsearch.cli.latency import add_latency_command
from archsearch.cli.study import add_study_commands
from archsearch.errors import ArchsearchError


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archsearch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    add_build_commands(commands)
    add_study_commands(commands)
    add_latency_command(commands)
    add_export_command(commands)
    add_fidelity_command(commands)
    add_dashboard_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    arguments = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = arguments.handler
    try:
        return handler(arguments)
    except ArchsearchError as error:
        print(f"archsearch: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("archsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
