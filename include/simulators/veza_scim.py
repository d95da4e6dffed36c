"""SCIM filters (RFC 7644 section 3.4.2.2) for the Veza simulator, parsed by scim2-filter-parser.

Veza documents (DOC) that ``filter`` and ``mutable_filter`` are SCIM filters with the
operators ``eq ne co sw ew gt ge lt le pr``, ``and or not``, parentheses and
double-quoted strings. The text is tokenised and parsed by the independent
``scim2-filter-parser`` library; this module turns the library's tree into a small
tree of its own and evaluates that against a review row (a mapping with flat dot keys
such as ``"source.name"``, as in Veza's columns).

Taken from RFC 7644, where the library's tree needs help:

- precedence ``not`` > ``and`` > ``or``: the library's grammar gives ``and`` and
  ``or`` one precedence level (``a or b and c`` parses as ``(a or b) and c``), so
  every unparenthesised chain is read back in source order and regrouped;
- the literals ``true``, ``false``, ``null`` and numbers are typed from the library's
  tokens (its tree keeps only the text, so ``"true"`` and ``true`` would look alike);
- ordering operators (``gt ge lt le``) with ``true``/``false``/``null`` are refused.

Where the library is stricter than the RFC, the simulator is too (a filter it cannot
parse is refused): numbers are single digits, strings have no escapes, and ``true``,
``false`` and ``null`` are lower case.

Our CHOICES (the RFC leaves them to the attribute's definition or Veza does not say):

- attribute names match columns case-insensitively; value paths (``a[b eq 1]``) and
  schema URIs are refused (Veza's columns are flat);
- ``co sw ew`` need a string value;
- a string value compares with the cell's CSV text (booleans ``true``/``false``),
  ignoring case unless ``case_exact``; a number compares with numeric cells only
  (Veza's columns have none, so it never matches), ``true``/``false`` with boolean
  cells only; ordering a boolean column is refused (RFC 7644: "Boolean ... attributes
  SHALL cause a failed response"). The filterable fields hold no timestamps, so there
  is no chronological comparison;
- ``pr`` is false and ``eq null`` true for a missing, null or empty cell; ``ne`` is
  exactly ``not eq``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from scim2_filter_parser import ast as scim_ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser, SCIMParserError

from include.simulators.data import render_value

Value: TypeAlias = str | int | bool | None
Row: TypeAlias = Mapping[str, Any]
Predicate: TypeAlias = Callable[[Row], bool]

STRING_OPERATORS = frozenset({"co", "sw", "ew"})
ORDERING_OPERATORS = frozenset({"gt", "ge", "lt", "le"})
_LITERALS: Mapping[str, Value] = {"TRUE": True, "FALSE": False, "NULL": None}
_VALUE_TOKENS = frozenset({"TRUE", "FALSE", "NULL", "NUMBER", "COMP_VALUE"})


class FilterError(ValueError):
    """A filter the simulator refuses (a 400 INVALID_ARGUMENT naming the field)."""


# --------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Compare:
    """``attribute <operator> value`` (``operator`` is ``pr`` with no value)."""

    attribute: str
    operator: str
    value: Value = None


@dataclass(frozen=True)
class Logic:
    """``left and right`` or ``left or right``."""

    operator: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node: TypeAlias = Compare | Logic | Not


# --------------------------------------------------------------------------- parsing


def parse(text: str) -> Node:
    """Parse ``text`` with scim2-filter-parser; raise FilterError saying why it is refused."""
    try:
        tokens = list(SCIMLexer().tokenize(text))
    except ValueError as exc:  # the lexer's "Illegal character" error
        raise FilterError(f"invalid SCIM filter {text!r}: {exc}") from None
    if any(token.type in {"LBRACKET", "SCHEMA_URI"} for token in tokens):
        raise FilterError(f"invalid SCIM filter {text!r}: value paths and schema URIs are refused")
    try:
        tree = SCIMParser().parse(iter(tokens))
    except SCIMParserError as exc:
        reason = str(exc).replace("Parsing error at: None", "unexpected end of filter")
        raise FilterError(f"invalid SCIM filter {text!r}: {reason}") from None
    if tree is None:
        raise FilterError(f"invalid SCIM filter {text!r}: it is empty")
    values = iter([_typed(token) for token in tokens if token.type in _VALUE_TOKENS])
    return _convert(tree, values)


def _typed(token: Any) -> Value:
    if token.type in _LITERALS:
        return _LITERALS[token.type]
    if token.type == "NUMBER":
        return int(token.value)
    return str(token.value)


def _convert(node: Any, values: Iterator[Value]) -> Node:
    """The library's ``Filter`` as our tree, chains regrouped by RFC precedence."""
    inner = node.expr
    if isinstance(inner, scim_ast.Filter):  # "( filter )" or "not ( filter )"
        operand = _convert(inner, values)
        return Not(operand) if node.negated else operand
    if isinstance(inner, scim_ast.LogExpr):
        operands: list[Node] = []
        operators: list[str] = []
        _chain(node, values, operands, operators)
        return _regroup(operands, operators)
    return _leaf(inner, values)


def _chain(node: Any, values: Iterator[Value], operands: list[Node], operators: list[str]) -> None:
    """Collect an unparenthesised ``and``/``or`` chain in source order."""
    inner = node.expr
    if isinstance(inner, scim_ast.LogExpr) and not node.negated:
        _chain(inner.expr1, values, operands, operators)
        operators.append(inner.op.lower())
        _chain(inner.expr2, values, operands, operators)
        return
    operands.append(_convert(node, values))


def _regroup(operands: list[Node], operators: list[str]) -> Node:
    """``a or b and c`` -> ``a or (b and c)``; both operators associate to the left."""
    groups: list[Node] = [operands[0]]
    for operator, operand in zip(operators, operands[1:], strict=True):
        if operator == "and":
            groups[-1] = Logic("and", groups[-1], operand)
        else:
            groups.append(operand)
    result = groups[0]
    for group in groups[1:]:
        result = Logic("or", result, group)
    return result


def _leaf(expr: Any, values: Iterator[Value]) -> Compare:
    path = expr.attr_path
    name = str(path.attr_name)
    if path.sub_attr is not None:
        name = f"{name}.{path.sub_attr.value}"
    operator = str(expr.value).lower()
    if operator == "pr":
        return Compare(name, "pr")
    value = next(values)
    _check_operand(name, operator, value)
    return Compare(name, operator, value)


def _check_operand(name: str, operator: str, value: Value) -> None:
    if operator in ORDERING_OPERATORS and (value is None or isinstance(value, bool)):
        raise FilterError(f"{name} {operator}: ordering needs a string or a number (RFC 7644)")
    if operator in STRING_OPERATORS and not isinstance(value, str):
        raise FilterError(f"{name} {operator}: needs a double-quoted string")


# --------------------------------------------------------------------------- columns


def attributes(node: Node) -> list[str]:
    """Every attribute the filter names, left to right."""
    if isinstance(node, Compare):
        return [node.attribute]
    if isinstance(node, Not):
        return attributes(node.operand)
    return attributes(node.left) + attributes(node.right)


def leaves(node: Node) -> list[Compare]:
    """Every attribute expression, left to right."""
    if isinstance(node, Compare):
        return [node]
    if isinstance(node, Not):
        return leaves(node.operand)
    return leaves(node.left) + leaves(node.right)


def resolve(node: Node, kinds: Mapping[str, str], *, strict: bool) -> Node:
    """Rename attributes to their column's spelling; check values against column kinds.

    ``kinds`` maps column name -> kind (``string``, ``boolean``, ...).
    With ``strict`` an attribute that is not a column is refused.
    """
    if isinstance(node, Not):
        return Not(resolve(node.operand, kinds, strict=strict))
    if isinstance(node, Logic):
        left = resolve(node.left, kinds, strict=strict)
        return Logic(node.operator, left, resolve(node.right, kinds, strict=strict))
    columns = {name.lower(): name for name in kinds}
    column = columns.get(node.attribute.lower())
    if column is None:
        if strict:
            raise FilterError(f"unknown attribute {node.attribute!r}")
        return node
    _check_kind(node, kinds[column])
    return replace(node, attribute=column)


def _check_kind(node: Compare, kind: str) -> None:
    if kind == "boolean" and node.operator in ORDERING_OPERATORS:
        raise FilterError(f"{node.attribute} {node.operator}: a boolean has no order (RFC 7644)")


# --------------------------------------------------------------------------- evaluation


def compile_filter(node: Node, *, case_exact: bool = False) -> Predicate:
    """A predicate on rows (mappings with the columns' flat dot keys)."""
    if isinstance(node, Not):
        operand = compile_filter(node.operand, case_exact=case_exact)
        return lambda row: not operand(row)
    if isinstance(node, Logic):
        left = compile_filter(node.left, case_exact=case_exact)
        right = compile_filter(node.right, case_exact=case_exact)
        if node.operator == "and":
            return lambda row: left(row) and right(row)
        return lambda row: left(row) or right(row)
    return _compile_leaf(node, case_exact)


def _compile_leaf(node: Compare, case_exact: bool) -> Predicate:
    name, operator, expected = node.attribute, node.operator, node.value
    if operator == "pr":
        return lambda row: _present(row.get(name))
    if operator == "ne":
        equal = _compile_leaf(replace(node, operator="eq"), case_exact)
        return lambda row: not equal(row)
    if expected is None:  # eq null
        return lambda row: not _present(row.get(name))
    compare = _OPERATIONS[operator]
    if isinstance(expected, bool):
        return lambda row: type(row.get(name)) is bool and compare(row.get(name), expected)
    if isinstance(expected, int):
        return lambda row: _is_number(row.get(name)) and compare(row.get(name), expected)
    fold: Callable[[str], str] = (lambda text: text) if case_exact else str.casefold
    wanted = fold(expected)
    return lambda row: _present(row.get(name)) and compare(fold(render_value(row[name])), wanted)


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_OPERATIONS: Mapping[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "co": lambda a, b: b in a,
    "sw": lambda a, b: a.startswith(b),
    "ew": lambda a, b: a.endswith(b),
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
