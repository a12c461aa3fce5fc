"""The ``archsearch`` command line. Bad input ends with one message and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

from archsearch.cli.arguments import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED, CommandParser, Terminated
from archsearch.cli.build import add_build_commands
from archsearch.cli.dashboard import add_dashboard_command
from archsearch.cli.export import add_export_command
from archsearch.cli.fidelity import add_fidelity_command
from archsearch.cli.latency import add_latency_command
from archsearch.cli.study import add_study_commands
from archsearch.errors import ArchsearchError
from archsearch.runtime import configure_process, study_runtime


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


def attach_dashed_values(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``--input -5x10`` as ``--input=-5x10``: argparse would take ``-5x10`` for an option and say only
    "expected one argument"; attached, the value reaches the flag's own check and its message."""
    takes_value = {option for action in _all_actions(parser) if action.nargs != 0 for option in action.option_strings}
    result: list[str] = []
    for token in argv:
        if result and result[-1] in takes_value and re.match(r"-[\d.]", token):
            result[-1] = f"{result[-1]}={token}"
        else:
            result.append(token)
    return result


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                actions += _all_actions(subparser)
    return actions


def configure_runtime(arguments: argparse.Namespace) -> None:
    """OpenMP's waiting, set before any command imports torch: the study's ``runtime:`` section
    (and ``--set runtime.KEY=VALUE``) for ``run``, archsearch's defaults otherwise."""
    study = getattr(arguments, "study", None)
    overrides = getattr(arguments, "set", None) or ()
    configure_process(study_runtime(study, overrides) if isinstance(study, Path) else None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    arguments = parser.parse_args(attach_dashed_values(parser, sys.argv[1:] if argv is None else list(argv)))
    handler: Callable[[argparse.Namespace], int] = arguments.handler
    configure_runtime(arguments)
    try:
        return handler(arguments)
    except ArchsearchError as error:
        print(f"archsearch: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # a path the checks before the work could not foresee (a full disk, say)
        where = f"{error.filename}: " if error.filename else ""
        print(f"archsearch: error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Terminated:
        print("archsearch: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("archsearch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
