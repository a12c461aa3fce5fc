"""Safe arithmetic over named values, for spaces: ``${4 * width}``, ``${depth > 2 and width < 32}``.

Names are looked up through a callback, so a search parameter is sampled the first time an
expression needs it (and never, if no taken branch needs it: that is how conditional
parameters arise). Nothing is evaluated as Python.

Evaluation is bounded: an integer may not grow past MAX_INTEGER_BITS, a list or string past
MAX_SEQUENCE_VALUES values (nested lists counted in full), and ``round`` takes at most
MAX_ROUND_DIGITS digits. Each operation is checked *before* it runs, from its operands' sizes, so
that ``10 ** 10 ** 10`` or ``[1] * 10 ** 10`` is refused at once instead of hanging or filling memory.
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


MAX_INTEGER_BITS = 1024
MAX_SEQUENCE_VALUES = 10_000
MAX_ROUND_DIGITS = 400
"""No architecture needs a number of more than 1024 bits, a list of more than 10,000 values or ``round`` to more
than 400 digits (a float has 309); beyond them an expression is a mistake that would hang or fill memory."""
EXPRESSION_BOUNDS = (f"integers of at most {MAX_INTEGER_BITS} bits, lists and strings of at most "
                     f"{MAX_SEQUENCE_VALUES:,} values, round() to at most {MAX_ROUND_DIGITS} digits")


class ExpressionSyntaxError(SpecError):
    """An expression that cannot be parsed or uses syntax that is not allowed: the file is wrong."""


class ExpressionTooLarge(ExpressionSyntaxError):
    """An expression whose value would pass EXPRESSION_BOUNDS: no architecture needs it, so the file is wrong."""


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
    except (TypeError, ZeroDivisionError, ValueError, OverflowError) as error:
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
        items = [recurse(item) for item in node.elts]
        if _values(items) > MAX_SEQUENCE_VALUES:
            _too_large(f"a list of more than {MAX_SEQUENCE_VALUES:,} values", text, path)
        return items
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        left, right = recurse(node.left), recurse(node.right)
        _check_operation(node.op, left, right, text, path)
        return BINARY[type(node.op)](left, right)
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
        arguments = [recurse(argument) for argument in node.args]
        if node.func.id == "round" and len(arguments) == 2 and _is_integer(arguments[1]) \
                and abs(arguments[1]) > MAX_ROUND_DIGITS:
            _too_large(f"round() to {arguments[1]} digits", text, path)
        return FUNCTIONS[node.func.id](*arguments)
    raise ExpressionSyntaxError("unsupported expression", path=path, value=text, allowed=EXPRESSION_HELP)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int)  # bools included: True ** 3 is an int operation


def _values(value: Any) -> int:
    """How many values a list (nested lists in full) or string holds; 1 for a number."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return len(value) + sum(_values(item) for item in value if isinstance(item, (list, str)))
    return 1


def _check_operation(op: ast.operator, left: Any, right: Any, text: str, path: str) -> None:
    """Refuse, before it runs, an operation whose result would pass EXPRESSION_BOUNDS."""
    if isinstance(op, ast.Mod) and isinstance(left, str):
        raise ExpressionSyntaxError("unsupported expression: % formats strings", path=path, value=text,
                                    allowed=EXPRESSION_HELP)
    if isinstance(op, ast.Pow) and _is_integer(left) and _is_integer(right) and right > 0 and abs(left) > 1:
        bits = (abs(left).bit_length() - 1) * right  # a lower bound on the result's bits, exact for powers of two
        if bits > MAX_INTEGER_BITS:
            _too_large(f"a power of more than {MAX_INTEGER_BITS} bits", text, path)
    if isinstance(op, ast.Mult):
        if _is_integer(left) and _is_integer(right) and left.bit_length() + right.bit_length() > MAX_INTEGER_BITS + 1:
            _too_large(f"a product of more than {MAX_INTEGER_BITS} bits", text, path)
        sequence, count = (left, right) if isinstance(left, (list, str)) else (right, left)
        if isinstance(sequence, (list, str)) and _is_integer(count) and count > 0 \
                and _values(sequence) * count > MAX_SEQUENCE_VALUES:
            _too_large(f"a repetition of more than {MAX_SEQUENCE_VALUES:,} values", text, path)
    if isinstance(op, ast.Add) and isinstance(left, (list, str)) and isinstance(right, (list, str)) \
            and _values(left) + _values(right) > MAX_SEQUENCE_VALUES:
        _too_large(f"a concatenation of more than {MAX_SEQUENCE_VALUES:,} values", text, path)


def _too_large(what: str, text: str, path: str) -> None:
    raise ExpressionTooLarge(f"expression would compute {what}", path=path, value=text, allowed=EXPRESSION_BOUNDS)
