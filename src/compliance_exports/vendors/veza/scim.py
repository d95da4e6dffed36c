"""SCIM filter expressions (RFC 7644 section 3.4.2.2): the client checks Veza's filters.

The client parses ``filter`` and ``mutable_filter`` before sending them, to refuse a
malformed one early; it never evaluates them (Veza does; the simulator has its own,
independent evaluator).

Documented (DOC: Veza refers to RFC 7644): attribute operators ``eq ne co sw ew gt ge
lt le pr``, logical ``and``/``or``/``not`` with precedence ``not`` > ``and`` > ``or``,
grouping parentheses, ``not ( ... )`` always parenthesised, values that are JSON
strings (double-quoted, JSON escapes), numbers, ``true``, ``false`` or ``null``;
operator and keyword names are case-insensitive.

Our CHOICES where the RFC leaves room or Veza does not say:

- attribute paths are ``name(.name)*`` (``source.name``), except the words ``and``,
  ``or`` and ``not`` (so a misplaced keyword gets a clear error); URN prefixes and
  ``emails[type eq "work"]`` value paths are not supported (a clear syntax error);
- a filter nests at most :data:`MAX_NESTING` groups deep and holds at most
  :data:`MAX_EXPRESSIONS` attribute expressions (a bounded, shallow tree);
- ordering operators need a string or number value (not ``true``/``false``/``null``);
- ``co``/``sw``/``ew`` need a string value.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TypeAlias

Value: TypeAlias = str | int | float | bool | None

COMPARISON_OPERATORS: tuple[str, ...] = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
STRING_OPERATORS: frozenset[str] = frozenset({"co", "sw", "ew"})
ORDERING_OPERATORS: frozenset[str] = frozenset({"gt", "ge", "lt", "le"})
RESERVED_WORDS: tuple[str, ...] = ("and", "or", "not")
MAX_NESTING = 32
"""CHOICE: deepest nesting of parentheses and ``not`` a filter may use."""
MAX_EXPRESSIONS = 256
"""CHOICE: most attribute expressions one filter may hold (keeps evaluation shallow)."""


# --------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Compare:
    """``attribute <operator> value``."""

    attribute: str
    operator: str
    value: Value


@dataclass(frozen=True)
class Present:
    """``attribute pr``."""

    attribute: str


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node: TypeAlias = Compare | Present | And | Or | Not


class ScimSyntaxError(ValueError):
    """A filter that does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, text: str, position: int, expected: str, found: str) -> None:
        self.text = text
        self.position = position
        self.expected = expected
        self.found = found
        super().__init__(
            f"invalid SCIM filter at position {position}: expected {expected}, found {found} "
            f"in {text!r}"
        )


# --------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<string>"(?:[^"\\\x00-\x1f]|\\.)*")
    | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![A-Za-z0-9_.\-]))
    | (?P<word>[A-Za-z][A-Za-z0-9_\-]*(?:\.[A-Za-z][A-Za-z0-9_\-]*)*(?![A-Za-z0-9_.\-]))
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # lparen rparen string number word end
    text: str
    position: int

    def describe(self) -> str:
        return "end of filter" if self.kind == "end" else repr(self.text)

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ScimSyntaxError(
                text,
                position,
                "an attribute name, operator, value or parenthesis",
                _describe_junk(text, position),
            )
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _describe_junk(text: str, position: int) -> str:
    if text[position] == '"':
        return "an unterminated or malformed string"
    if text[position] == "[":
        return "'[' (value paths such as emails[type eq \"work\"] are not supported)"
    return repr(text[position : position + 10])


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0
        self.expressions = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, expected: str) -> ScimSyntaxError:
        token = self.current
        return ScimSyntaxError(self.text, token.position, expected, token.describe())

    def expect(self, kind: str, expected: str) -> _Token:
        if self.current.kind != kind:
            raise self.fail(expected)
        return self.advance()

    def parse(self) -> Node:
        node = self.parse_or()
        if self.current.kind != "end":
            raise self.fail("'and', 'or' or end of filter")
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.current.is_word("or"):
            self.advance()
            node = Or(node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_unary()
        while self.current.is_word("and"):
            self.advance()
            node = And(node, self.parse_unary())
        return node

    def parse_unary(self) -> Node:
        token = self.current
        if token.is_word("not") and self.tokens[self.index + 1].kind == "lparen":
            self.advance()
            return Not(self.parse_group())
        if token.kind == "lparen":
            return self.parse_group()
        return self.parse_attribute_expression()

    def parse_group(self) -> Node:
        if self.depth >= MAX_NESTING:
            raise self.fail(f"at most {MAX_NESTING} levels of nested parentheses")
        self.expect("lparen", "'('")
        self.depth += 1
        node = self.parse_or()
        self.depth -= 1
        self.expect("rparen", "')'")
        return node

    def parse_attribute_expression(self) -> Node:
        if self.current.is_word("not"):
            self.advance()
            raise self.fail("'(' after 'not'")
        if self.current.kind != "word" or self.current.is_word(*RESERVED_WORDS):
            raise self.fail("an attribute name, 'not (' or '('")
        self.expressions += 1
        if self.expressions > MAX_EXPRESSIONS:
            raise self.fail(f"at most {MAX_EXPRESSIONS} attribute expressions")
        attribute = self.advance().text
        if self.current.is_word("pr"):
            self.advance()
            return Present(attribute)
        if not self.current.is_word(*COMPARISON_OPERATORS):
            raise self.fail(f"an operator ({', '.join(COMPARISON_OPERATORS)}, pr)")
        operator = self.advance().text.lower()
        value_token = self.current
        value = self.parse_value()
        _check_operand(self.text, value_token, operator, value)
        return Compare(attribute, operator, value)

    def parse_value(self) -> Value:
        token = self.current
        if token.kind == "string":
            self.advance()
            try:
                decoded: str = json.loads(token.text)
            except json.JSONDecodeError as exc:
                raise ScimSyntaxError(
                    self.text, token.position + exc.pos, "a valid string escape", repr(token.text)
                ) from None
            return decoded
        if token.kind == "number":
            number = _parse_number(token.text)
            if not math.isfinite(number):
                raise self.fail("a number that fits a double")
            self.advance()
            return number
        if token.is_word("true", "false", "null"):
            self.advance()
            return {"true": True, "false": False, "null": None}[token.text.lower()]
        raise self.fail("a value (a double-quoted string, a number, true, false or null)")


def _parse_number(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


def _check_operand(text: str, token: _Token, operator: str, value: Value) -> None:
    if operator in STRING_OPERATORS and not isinstance(value, str):
        raise ScimSyntaxError(text, token.position, f"a string after {operator!r}", token.text)
    if operator in ORDERING_OPERATORS and (value is None or isinstance(value, bool)):
        raise ScimSyntaxError(
            text, token.position, f"a string or number after {operator!r}", token.text
        )


def parse_filter(text: str) -> Node:
    """Parse a SCIM filter; raise :class:`ScimSyntaxError` naming position and expectation."""
    if not isinstance(text, str):
        raise TypeError(f"a SCIM filter is a string, not {type(text).__name__}")
    return _Parser(text).parse()


# --------------------------------------------------------------------------- inspect


def attributes(node: Node) -> set[str]:
    """Every attribute path the filter mentions, as written."""
    if isinstance(node, Compare | Present):
        return {node.attribute}
    if isinstance(node, Not):
        return attributes(node.operand)
    return attributes(node.left) | attributes(node.right)


def comparisons(node: Node) -> list[Compare | Present]:
    """The leaf expressions of a filter, left to right."""
    if isinstance(node, Compare | Present):
        return [node]
    if isinstance(node, Not):
        return comparisons(node.operand)
    return comparisons(node.left) + comparisons(node.right)
