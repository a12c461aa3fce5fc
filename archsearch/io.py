"""Files in and out: YAML read within bounds, outputs checked before work starts and written atomically.

Reading: every YAML file (spec, space, study, key map) and every ``--set`` value goes through
``read_yaml``/``parse_yaml``, which read only regular files of at most MAX_YAML_BYTES (never
/dev/zero, a FIFO or a sparse giant), read numbers as YAML 1.2 does (``1e30`` is a float, ``0o17``
octal, ``017`` decimal), refuse duplicated keys, and bound nesting depth and alias expansion, so
that a hostile file is a SpecError naming it rather than a hang, a RecursionError or gigabytes of copies.

Writing: a reader never sees a half-written spec, weights file or table; files follow the umask
as other tools' do; an OS error is an OutputError naming the path and the reason. Torch is
imported only to write weights, so that reading a file does not cost its import.
"""

from __future__ import annotations

import ast
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from archsearch.errors import OutputError, SpecError

MAX_YAML_DEPTH = 32
MAX_YAML_NODES = 200_000
YAML_LIMITS = (f"at most {MAX_YAML_DEPTH} levels of nested lists and mappings and {MAX_YAML_NODES:,} values "
               "once aliases (*name) are expanded")

# YAML 1.2 core schema numbers (PyYAML implements 1.1, where 1e30 is a string and 017 is octal).
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


class _LimitExceeded(yaml.MarkedYAMLError):
    """A file beyond YAML_LIMITS, or with a duplicated key: valid YAML that archsearch refuses."""

    def __init__(self, problem: str, mark, allowed: str) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.allowed = allowed


def _construct_int(loader: yaml.SafeLoader, node: ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _construct_float(loader: yaml.SafeLoader, node: ScalarNode) -> float:
    text = loader.construct_scalar(node).lower()
    if text.lstrip("+-") == ".inf":
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 numbers, no duplicated keys, and bounded depth and alias expansion."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _LimitExceeded(f"nested deeper than {MAX_YAML_DEPTH} levels", self.peek_event().start_mark,
                                     YAML_LIMITS)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node:
        node = super().compose_document()
        _check_expansion(node)
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        if isinstance(node, MappingNode):
            first_seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    earlier = first_seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # an unhashable key: SafeLoader reports it
                if earlier is not key_node.start_mark:
                    raise _LimitExceeded(f"duplicated key {key!r} (first at line {earlier.line + 1})",
                                         key_node.start_mark, "each key once in a mapping")
        return super().construct_mapping(node, deep=deep)


def _yaml12_resolvers(resolvers: Mapping[str, list]) -> dict[str, list]:
    kept = {first: [(tag, regexp) for tag, regexp in entries if tag not in (_INT_TAG, _FLOAT_TAG)]
            for first, entries in resolvers.items()}
    for tag, regexp, firsts in ((_INT_TAG, _INT, "-+0123456789"), (_FLOAT_TAG, _FLOAT, "-+.0123456789")):
        for first in firsts:
            kept.setdefault(first, []).append((tag, regexp))
    return kept


BoundedLoader.yaml_implicit_resolvers = _yaml12_resolvers(yaml.SafeLoader.yaml_implicit_resolvers)
BoundedLoader.add_constructor(_INT_TAG, _construct_int)
BoundedLoader.add_constructor(_FLOAT_TAG, _construct_float)


def _check_expansion(root: Node | None) -> None:
    """Depth and size of the document with every alias expanded; an alias inside its own anchor is refused.

    Iterative and memoized per node, so a billion-laughs document is measured in the time it takes to
    read it, and never expanded.
    """
    if root is None:
        return
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) once expanded
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in on_path:
                raise _LimitExceeded("an alias refers to a node that contains it", node.start_mark,
                                     "aliases (*name) of nodes defined before them, outside them")
            on_path.add(id(node))
            stack.append((node, True))
            for child in children:
                if id(child) in on_path:
                    raise _LimitExceeded("an alias refers to a node that contains it", child.start_mark,
                                         "aliases (*name) of nodes defined before them, outside them")
                if id(child) not in sizes:
                    stack.append((child, False))
            continue
        on_path.discard(id(node))
        values = 1 + sum(sizes[id(child)][0] for child in children)
        depth = 1 + max((sizes[id(child)][1] for child in children), default=0)
        if values > MAX_YAML_NODES:
            raise _LimitExceeded(f"more than {MAX_YAML_NODES:,} values once aliases are expanded",
                                 node.start_mark, YAML_LIMITS)
        if depth > MAX_YAML_DEPTH:
            raise _LimitExceeded(f"nested deeper than {MAX_YAML_DEPTH} levels once aliases are expanded",
                                 node.start_mark, YAML_LIMITS)
        sizes[id(node)] = (values, depth)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_yaml(text: str, *, source: str) -> Any:
    """YAML text (a file's or a ``--set`` value's) as data; bad or excessive YAML is a SpecError naming ``source``."""
    try:
        return yaml.load(text, Loader=BoundedLoader)
    except _LimitExceeded as error:
        raise SpecError(f"{error.problem}{_where(error.problem_mark)}", allowed=error.allowed,
                        source=source) from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        raise SpecError(f"not valid YAML: character U+{error.character:04X} at line {line}, column {column} "
                        "is not allowed", allowed="printable Unicode text", source=source) from None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error)
        raise SpecError(f"not valid YAML{_where(getattr(error, 'problem_mark', None))}: {problem}",
                        source=source) from None


def _where(mark) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


MAX_YAML_BYTES = 4 * 1024 ** 2
"""The largest YAML file read: the biggest space shipped is 6 KB; a larger file is a mistake (a device, a log)."""


def read_bounded(path: str | Path, *, what: str, limit: int = MAX_YAML_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, never more read; anything else is a SpecError.

    A device (/dev/zero), a FIFO or a socket is refused before it is opened for reading, so that it can
    neither hang nor fill memory; the size is checked on the open file and the read stops at ``limit``
    even where the reported size is wrong (/proc files, a file growing as it is read).
    """
    source = str(path)
    allowed = f"{what}: a regular file of at most {limit // 1024 ** 2} MiB"
    try:
        if Path(path).is_dir():
            raise SpecError("is a directory", allowed=what, source=source)
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise SpecError("not a regular file (a device, a FIFO or a socket)", allowed=allowed, source=source)
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # never blocks on a swapped-in FIFO
    except FileNotFoundError:
        raise SpecError("no such file", source=source) from None
    except OSError as error:
        raise SpecError(f"cannot read file: {error.strerror or error}", source=source) from None
    with os.fdopen(descriptor, "rb") as file:
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise SpecError("not a regular file (a device, a FIFO or a socket)", allowed=allowed, source=source)
            if status.st_size > limit:
                raise SpecError(f"larger than {limit // 1024 ** 2} MiB ({status.st_size:,} bytes)", allowed=allowed,
                                source=source)
            data = file.read(limit + 1)
        except OSError as error:
            raise SpecError(f"cannot read file: {error.strerror or error}", source=source) from None
    if len(data) > limit:
        raise SpecError(f"larger than {limit // 1024 ** 2} MiB", allowed=allowed, source=source)
    return data


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file; a missing, unreadable, non-UTF-8 or malformed file is a SpecError naming it."""
    source = str(path)
    data = read_bounded(path, what="a YAML file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise SpecError(f"expected UTF-8 text, found byte 0x{data[error.start]:02x} at line {line}, "
                        f"column {column} (byte offset {error.start})",
                        allowed="a YAML file encoded as UTF-8", source=source) from None
    return parse_yaml(text, source=source)


MAX_EXPRESSION_LENGTH = 2000
MAX_EXPRESSION_DEPTH = 32


def parse_expression(text: str) -> ast.expr:
    """The expression in a spec's pattern or a space's ``${...}``, parsed by ``ast`` within bounds.

    Raises SyntaxError (its ``msg`` says why) for text that is not an expression, is longer than
    MAX_EXPRESSION_LENGTH or nests deeper than MAX_EXPRESSION_DEPTH, so that walking it never
    recurses past Python's limit.
    """
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise SyntaxError(f"longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        body = ast.parse(text, mode="eval").body
    except (RecursionError, MemoryError):
        raise SyntaxError(f"nested deeper than {MAX_EXPRESSION_DEPTH} levels") from None
    stack = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise SyntaxError(f"nested deeper than {MAX_EXPRESSION_DEPTH} levels")
        stack += [(child, depth + 1) for child in ast.iter_child_nodes(node)]
    return body


# ---------------------------------------------------------------- writing


def current_umask() -> int:
    """The process's umask, read without changing it where /proc allows (changing it is not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def shareable_mode(*, directory: bool = False) -> int:
    """The mode a plain ``open``/``mkdir`` would give: 0666 (0777 for a directory) less the umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


def create_shareable_file(path: str | Path) -> None:
    """Create ``path`` empty unless it exists, with the mode the umask gives (0666 less the umask): SQLite makes
    its databases 0644 whatever the umask, and then gives its journal and WAL files the database's mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))
    except OSError as error:
        raise output_error(path, error) from None


def output_error(path: str | Path, error: OSError) -> OutputError:
    """An OSError met while writing ``path``, as the one message the CLI prints."""
    return OutputError(f"cannot write {path}: {error.strerror or error or type(error).__name__}")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable_parent(path: Path, flag: str) -> None:
    """The nearest existing ancestor of ``path`` must be a directory this process can write in."""
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise SpecError(f"cannot write here: {ancestor} is not a directory", value=str(path),
                        allowed="a path under a directory", source=flag)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise SpecError(f"cannot write here: no permission to write in {ancestor}", value=str(path),
                        allowed="a path in a directory you can write", source=flag)


def check_output_file(path: str | Path, *, flag: str, force: bool = False) -> None:
    """Refuse, before any work, an output file that could not be written or would replace one unasked."""
    path = Path(path)
    if path.is_dir():
        raise SpecError("is a directory", value=str(path), allowed="a file path", source=flag)
    if path.exists() and not force:
        raise SpecError("the file already exists", value=str(path), allowed="a new file, or --force to replace it",
                        source=flag)
    _check_writable_parent(path, flag)


def check_output_directory(path: str | Path, *, flag: str) -> None:
    """Refuse, before any work, an output directory that is a file or could not be made or written."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise SpecError("exists and is not a directory", value=str(path), allowed="a directory path",
                            source=flag)
        if not os.access(path, os.W_OK | os.X_OK):
            raise SpecError("no permission to write in this directory", value=str(path),
                            allowed="a directory you can write", source=flag)
        return
    _check_writable_parent(path, flag)


def make_directories(path: str | Path) -> Path:
    """``mkdir -p``, an OSError being an OutputError naming the path."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_error(path, error) from None
    return path


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it into place.

    The file gets the mode the umask gives (mkstemp's are private); nothing is left behind when
    writing fails, and an OSError is an OutputError naming ``path`` and the reason.
    """
    path = Path(path)
    make_directories(path.parent)
    temporary = None
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        temporary = Path(name)
        os.close(handle)
        write(temporary)
        os.chmod(temporary, shareable_mode())  # after writing: some writers (safetensors) make the file anew
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise output_error(path, error) from None
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise


def write_files_atomic(contents: Mapping[Path, bytes]) -> None:
    """Write several files that belong together: every one is written in full beside its place before any
    is renamed in, so a failure (a full disk, say) leaves all of the old ones."""
    temporaries: dict[Path, Path] = {}
    path = next(iter(contents), Path("."))
    try:
        for path, data in contents.items():
            make_directories(path.parent)
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temporaries[path] = Path(name)
            os.close(handle)
            os.chmod(name, shareable_mode())
            temporaries[path].write_bytes(data)
        for path, temporary in temporaries.items():
            os.replace(temporary, path)
    except OSError as error:
        raise output_error(path, error) from None
    finally:
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_state_dict(path: Path, state_dict: Mapping[str, Any]) -> None:
    """``.safetensors`` via safetensors (contiguous copies), anything else via torch.save."""
    import torch

    tensors = {key: value.detach().cpu().contiguous() for key, value in state_dict.items()}
    if Path(path).suffix == ".safetensors":
        from safetensors.torch import save_file
        write_atomic(path, lambda temporary: save_file(tensors, str(temporary)))
    else:
        write_atomic(path, lambda temporary: torch.save(tensors, temporary))
