"""Compact pattern expressions for per-block values, e.g. RegSeg's ``[[1],[1,2]] + 4*[[1,4]] + 7*[[1,14]]``.

Only list literals, numbers, ``+`` (concatenation) and ``int * list`` are allowed; nothing is
evaluated as Python.
"""

from __future__ import annotations

import ast
from typing import Any

from archsearch.errors import SpecError
from archsearch.io import parse_expression

PATTERN_HELP = "a list, or an expression of lists like '[[1],[1,2]] + 4*[[1,4]]' (list literals, +, int*list)"
MAX_PATTERN_LENGTH = 1000
"""No network has this many blocks in one list; a longer pattern is a typo (and would take hours to build)."""


def expand_pattern(value: Any, path: str) -> list[Any]:
    """A YAML list is returned as is; a string is parsed as a pattern expression."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise SpecError("expected a pattern", path=path, value=value, allowed=PATTERN_HELP)
    try:
        body = parse_expression(value)
    except SyntaxError as error:
        raise SpecError(f"cannot parse pattern: {error.msg}", path=path, value=value, allowed=PATTERN_HELP) from None
    result = _evaluate(body, value, path)
    if not isinstance(result, list):
        raise SpecError("a pattern must give a list", path=path, value=value, allowed=PATTERN_HELP)
    return result


def _evaluate(node: ast.AST, text: str, path: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_evaluate(item, text, path) for item in node.elts]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _evaluate(node.left, text, path), _evaluate(node.right, text, path)
        if isinstance(node.op, ast.Add) and isinstance(left, list) and isinstance(right, list):
            _check_length(len(left) + len(right), text, path)
            return left + right
        if isinstance(node.op, ast.Mult):
            if isinstance(left, int) and isinstance(right, list):
                left, right = right, left
            if isinstance(left, list) and isinstance(right, int) and right >= 0:
                _check_length(len(left) * right, text, path)  # counted before the list is made
                return [item for _ in range(right) for item in left]
    raise SpecError("unsupported pattern expression", path=path, value=text, allowed=PATTERN_HELP)


def _check_length(length: int, text: str, path: str) -> None:
    if length > MAX_PATTERN_LENGTH:
        raise SpecError(f"pattern gives {length} values", path=path, value=text,
                        allowed=f"at most {MAX_PATTERN_LENGTH}")
