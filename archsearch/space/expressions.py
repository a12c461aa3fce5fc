"""Safe arithmetic over named values, for spaces: ``${4 * width}``, ``${depth > 2 and width < 32}``.

Names are looked up through a callback, so a search parameter is sampled the first time an
expression needs it (and never, if no taken branch needs it: that is how conditional
parameters arise). Nothing is evaluated as Python.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Any, Callable

from archsearch.errors import SpecError
from archsearch.io import parse_expression

BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
           ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
           ast.NotIn: lambda a, b: a not in b}
FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "int": int, "round": round, "len": len,
                                            "abs": abs}
EXPRESSION_HELP = "numbers, names of parameters, + - * / // % **, comparisons, and/or/not, x if c else y, " \
                  "lists, min/max/int/round/len/abs"


class ExpressionSyntaxError(SpecError):
    """An expression that cannot be parsed or uses syntax that is not allowed: the file is wrong."""


WHOLE = re.compile(r"^\$\{([^{}]*)\}$")
PART = re.compile(r"\$\{([^{}]*)\}")


def evaluate(text: str, lookup: Callable[[str], Any], path: str) -> Any:
    """Evaluate one expression; unknown names and unsupported syntax are SpecErrors at ``path``."""
    try:
        body = parse_expression(text.strip())
    except SyntaxError as error:
        raise ExpressionSyntaxError(f"cannot parse expression: {error.msg}", path=path, value=text,
                                    allowed=EXPRESSION_HELP) from None
    try:
        return _evaluate(body, lookup, text, path)
    except (TypeError, ZeroDivisionError, ValueError) as error:
        raise SpecError(f"expression failed: {error}", path=path, value=text) from None


def condition(text: str, lookup: Callable[[str], Any], path: str) -> bool:
    """An ``if`` condition: an expression, with or without ``${...}`` around its names."""
    return bool(evaluate(PART.sub(lambda match: f"({match.group(1)})", text), lookup, path))


def substitute(text: str, lookup: Callable[[str], Any], path: str) -> Any:
    """``"${expr}"`` alone gives the expression's value; ``${...}`` inside other text is interpolated."""
    whole = WHOLE.match(text)
    if whole:
        return evaluate(whole.group(1), lookup, path)
    if "${" not in text:
        return text
    return PART.sub(lambda match: str(evaluate(match.group(1), lookup, path)), text)


def _evaluate(node: ast.AST, lookup: Callable[[str], Any], text: str, path: str) -> Any:
    recurse = lambda child: _evaluate(child, lookup, text, path)  # noqa: E731
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("true", "false"):
            return node.id == "true"
        return lookup(node.id)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [recurse(item) for item in node.elts]
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        return BINARY[type(node.op)](recurse(node.left), recurse(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        value = recurse(node.operand)
        return -value if isinstance(node.op, ast.USub) else (not value if isinstance(node.op, ast.Not) else +value)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(recurse(value) for value in node.values)
        return any(recurse(value) for value in node.values)
    if isinstance(node, ast.Compare) and all(type(op) in COMPARE for op in node.ops):
        left = recurse(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = recurse(comparator)
            if not COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return recurse(node.body) if recurse(node.test) else recurse(node.orelse)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS
            and not node.keywords):
        return FUNCTIONS[node.func.id](*[recurse(argument) for argument in node.args])
    raise ExpressionSyntaxError("unsupported expression", path=path, value=text, allowed=EXPRESSION_HELP)
