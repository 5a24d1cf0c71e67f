"""`when`: a small expression over earlier nodes' outcomes, parsed with `ast` and walked here, never eval'd.

    when = "nodes.tests.status == 'failed' and len(nodes.plan.output.items) > 0"

Allowed: literals (strings, numbers, true/false/null, lists), references (dotted paths from
`nodes`, `vars`, `run`), comparisons (== != < <= > >= in, not in), and, or, not, unary minus,
and one function, `len`. Anything else is refused when the blueprint is validated.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from overmind_mcp.blueprints.template import Ref, TemplateError, parse_ref, resolve
from overmind_mcp.errors import InvalidRequest

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda left, right: left in right,
    ast.NotIn: lambda left, right: left not in right,
}
_LITERAL_NAMES: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}
_REF_ROOTS = ("nodes", "vars", "run")
_MAX_LENGTH = 1000


class WhenError(InvalidRequest):
    """An expression outside the language, or one that cannot be evaluated."""


@dataclass(frozen=True)
class Condition:
    text: str
    tree: ast.expr
    refs: tuple[Ref, ...]

    def holds(self, scope: Mapping[str, Any]) -> bool:
        """Whether the condition is true with these values; raises WhenError if it cannot be evaluated."""
        try:
            return bool(_evaluate(self.tree, scope))
        except TemplateError as exc:
            raise WhenError(f"when {self.text!r}: {exc}") from None
        except TypeError as exc:
            raise WhenError(f"when {self.text!r}: {exc}") from None


def compile_condition(text: str) -> Condition:
    """A checked condition; raises WhenError naming what is not allowed."""
    if len(text) > _MAX_LENGTH:
        raise WhenError(f"when: longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise WhenError(f"when {text!r}: not an expression ({exc.msg})") from None
    found: list[Ref] = []
    _check(tree, found)
    return Condition(text, tree, tuple(found))


def _check(node: ast.expr, found: list[Ref]) -> None:
    match node:
        case ast.Constant(value=value) if value is None or isinstance(value, str | int | float | bool):
            return
        case ast.Name(id=name) if name in _LITERAL_NAMES:
            return
        case ast.Name() | ast.Attribute() | ast.Subscript():
            found.append(_ref_of(node))
        case ast.BoolOp(values=values):
            for value in values:
                _check(value, found)
        case ast.UnaryOp(op=ast.Not() | ast.USub(), operand=operand):
            _check(operand, found)
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            if not all(type(op) in _COMPARE for op in ops):
                raise WhenError(f"when: only == != < <= > >= in, not in compare values ({ast.unparse(node)!r})")
            for part in (left, *comparators):
                _check(part, found)
        case ast.List(elts=items) | ast.Tuple(elts=items):
            for item in items:
                _check(item, found)
        case ast.Call(func=ast.Name(id="len"), args=[argument], keywords=[]):
            _check(argument, found)
        case _:
            raise WhenError(
                f"when: {ast.unparse(node)!r} is not allowed; use references, literals, comparisons, "
                "and/or/not and len()"
            )


def _ref_of(node: ast.expr) -> Ref:
    """`nodes.plan.output.items[0]` as a Ref (its root checked)."""
    text = ast.unparse(node)
    try:
        ref = parse_ref(text)
    except TemplateError:
        raise WhenError(f"when: {text!r} is not a reference (a dotted path with [number] indexes)") from None
    if ref.root not in _REF_ROOTS:
        raise WhenError(f"when: {text!r} names nothing; references start with {', '.join(_REF_ROOTS)}")
    return ref


def _evaluate(node: ast.expr, scope: Mapping[str, Any]) -> Any:
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name) if name in _LITERAL_NAMES:
            return _LITERAL_NAMES[name]
        case ast.Name() | ast.Attribute() | ast.Subscript():
            return resolve(_ref_of(node), scope)
        case ast.BoolOp(op=ast.And(), values=values):
            return all(_evaluate(value, scope) for value in values)
        case ast.BoolOp(op=ast.Or(), values=values):
            return any(_evaluate(value, scope) for value in values)
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _evaluate(operand, scope)
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -_evaluate(operand, scope)
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            current = _evaluate(left, scope)
            for op, comparator in zip(ops, comparators, strict=True):
                right = _evaluate(comparator, scope)
                if not _COMPARE[type(op)](current, right):
                    return False
                current = right
            return True
        case ast.List(elts=items) | ast.Tuple(elts=items):
            return [_evaluate(item, scope) for item in items]
        case ast.Call(args=[argument]):
            return len(_evaluate(argument, scope))
    raise WhenError(f"when: cannot evaluate {ast.unparse(node)!r}")
