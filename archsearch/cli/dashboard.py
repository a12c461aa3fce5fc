"""``archsearch dashboard``: optuna-dashboard on a run's Optuna storage (trials, constraints, user attributes)."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from archsearch.cli.arguments import MAX_PORT, port_number
from archsearch.errors import SpecError

DEFAULT_PORT = 8080


class _QuietHandler(WSGIRequestHandler):
    """One line per request would bury the address the user needs; errors still reach stderr."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def run_storage_url(run_dir: Path) -> str:
    """The storage the run's study used: study.yaml's ``storage`` (its password, masked there, from the
    environment: see ``storage_url``), else the run directory's SQLite file."""
    from archsearch.io import read_yaml
    from archsearch.run.directory import RunDirectory
    from archsearch.storage_url import connection_url

    if not run_dir.is_dir():
        raise SpecError("no such run directory", value=str(run_dir), allowed="a directory `archsearch run` wrote")
    study_file = run_dir / "study.yaml"
    if not study_file.is_file():
        raise SpecError("no study.yaml in the run directory", source=str(study_file),
                        allowed="a directory `archsearch run` wrote")
    study = read_yaml(study_file)
    storage = study.get("storage") if isinstance(study, dict) else None
    if storage is not None:
        try:
            return connection_url(str(storage))
        except SpecError as error:
            raise error.with_source(str(study_file)) from None
    database = run_dir / "study.db"
    if not database.is_file():  # opening it would create an empty one
        raise SpecError("no study.db in the run directory", source=str(database),
                        allowed="a run directory whose study has started (or a study.yaml naming its storage)")
    return RunDirectory(run_dir).default_storage


def _storage_with_listed_constraints(url: str):
    """The run's RDB storage, its trials' constraint values also given as one list.

    Optuna 5 stores each ``Trial.set_constraint`` value under its own ``constraints:<name>``
    system attribute; optuna-dashboard (0.21, the latest) reads the older single
    ``constraints`` list, so without this the constraint column stays empty. Read-only: only
    what the dashboard is shown changes, never what is stored.
    """
    from optuna.storages import RDBStorage

    class ListedConstraints(RDBStorage):
        def get_all_trials(self, study_id, deepcopy=True, states=None):
            trials = super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
            for trial in trials:
                named = [value for key, value in trial.system_attrs.items() if key.startswith("constraints:")]
                if named and "constraints" not in trial.system_attrs:
                    trial._system_attrs = {**trial.system_attrs, "constraints": named}
            return trials

    return ListedConstraints(url)


def dashboard_server(run_dir: Path, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> WSGIServer:
    """A WSGI server (not yet serving) of optuna-dashboard on the run's storage; port 0 picks a free one."""
    import optuna_dashboard
    import sqlalchemy.exc

    from archsearch.storage_url import hide_secret, masked

    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= MAX_PORT:
        raise SpecError("not a port number", path="--port", value=port, allowed=f"0 to {MAX_PORT} (0: any free one)")
    url = run_storage_url(run_dir)
    try:
        storage = _storage_with_listed_constraints(url)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, RuntimeError, ValueError) as error:
        message = hide_secret(" ".join(str(getattr(error, "orig", None) or error).split()), url)[:500]
        raise SpecError(f"cannot open the run's storage: {message}", value=masked(url),
                        allowed="an Optuna storage that `archsearch run` wrote") from None
    try:
        return make_server(host, port, optuna_dashboard.wsgi(storage), handler_class=_QuietHandler)
    except OSError as error:
        if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:  # the address, not the port
            raise SpecError(f"cannot listen on this address: {error.strerror or error}", value=host,
                            allowed="an address of this machine: 127.0.0.1 (this machine only), 0.0.0.0 (every "
                                    "interface) or one of its interfaces' addresses", source="--host") from None
        raise SpecError(f"cannot listen there: {error.strerror or error}", value=port,
                        allowed="a free port (0: any free one)", source="--port") from None


def command_dashboard(arguments: argparse.Namespace) -> int:
    server = dashboard_server(arguments.run, host=arguments.host, port=arguments.port)
    host, port = server.server_address[:2]
    print(f"optuna-dashboard for {arguments.run} on http://{host}:{port}/ (Ctrl-C stops it)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def add_dashboard_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("dashboard", help="browse a run's trials, constraints and attributes "
                                                   "in optuna-dashboard")
    parser.add_argument("run", type=Path, metavar="RUN", help="a run directory")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT, metavar="N",
                        help=f"port to listen on (default {DEFAULT_PORT}; 0: any free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.set_defaults(handler=command_dashboard)
