from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_exports.vendors.veza.scim import (
    COMPARISON_OPERATORS,
    MAX_EXPRESSIONS,
    MAX_NESTING,
    ORDERING_OPERATORS,
    STRING_OPERATORS,
    And,
    Compare,
    Node,
    Not,
    Or,
    Present,
    ScimSyntaxError,
    Value,
    attributes,
    comparisons,
    parse_filter,
)

# --------------------------------------------------------------------------- render
# (the client only parses filters; writing them back is what these tests need)


def render(node: Node) -> str:
    """Test helper: the canonical text of a filter, ``parse_filter(render(n)) == n``."""
    if isinstance(node, Present):
        return f"{node.attribute} pr"
    if isinstance(node, Compare):
        return f"{node.attribute} {node.operator} {render_value(node.value)}"
    if isinstance(node, Not):
        return f"not ({render(node.operand)})"
    if isinstance(node, And):
        return f"{_render_side(node.left, (Or,))} and {_render_side(node.right, (Or, And))}"
    return f"{render(node.left)} or {_render_side(node.right, (Or,))}"


def _render_side(node: Node, needs_parens: tuple[type, ...]) -> str:
    text = render(node)
    return f"({text})" if isinstance(node, needs_parens) else text


def render_value(value: Value) -> str:
    """A value as SCIM filter text (JSON literal)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be written in a SCIM filter")
    return json.dumps(value, ensure_ascii=False)


a_pr, b_pr, c_pr, d_pr = Present("a"), Present("b"), Present("c"), Present("d")


class TestParse:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ('source.name eq "Ann"', Compare("source.name", "eq", "Ann")),
            ("a pr", a_pr),
            ("a gt 5", Compare("a", "gt", 5)),
            ("a ge -2.5", Compare("a", "ge", -2.5)),
            ("a lt 1e3", Compare("a", "lt", 1000.0)),
            ("a eq true", Compare("a", "eq", True)),
            ("a ne false", Compare("a", "ne", False)),
            ("a eq null", Compare("a", "eq", None)),
            ("A EQ 1 AND b Pr", And(Compare("A", "eq", 1), b_pr)),
            ("a pr or b pr and c pr", Or(a_pr, And(b_pr, c_pr))),
            ("a pr and b pr or c pr", Or(And(a_pr, b_pr), c_pr)),
            ("(a pr or b pr) and c pr", And(Or(a_pr, b_pr), c_pr)),
            ("not (a pr) and b pr", And(Not(a_pr), b_pr)),
            ("not (a pr and b pr)", Not(And(a_pr, b_pr))),
            ("NOT(a pr)", Not(a_pr)),
            ("a pr and b pr and c pr", And(And(a_pr, b_pr), c_pr)),
            ("a pr or b pr or c pr", Or(Or(a_pr, b_pr), c_pr)),
            ("a pr or not (b pr) and (c pr or d pr)", Or(a_pr, And(Not(b_pr), Or(c_pr, d_pr)))),
            ("((a pr))", a_pr),
            ('a eq "x"and b pr', And(Compare("a", "eq", "x"), b_pr)),
            (
                'destination.datasource_id sw "aws-"',
                Compare("destination.datasource_id", "sw", "aws-"),
            ),
        ],
    )
    def test_parses(self, text: str, expected: Node) -> None:
        assert parse_filter(text) == expected

    @pytest.mark.parametrize(
        ("literal", "value"),
        [
            (r'"say \"hi\""', 'say "hi"'),
            (r'"back\\slash"', "back\\slash"),
            (r'"caf\u00e9 \/ tab\t"', "café / tab\t"),
            ('"unicode ünïcødé"', "unicode ünïcødé"),
            ('""', ""),
        ],
    )
    def test_string_escapes(self, literal: str, value: str) -> None:
        assert parse_filter(f"a eq {literal}") == Compare("a", "eq", value)

    @pytest.mark.parametrize(
        ("text", "position", "expected", "found"),
        [
            ("", 0, "an attribute name, 'not (' or '('", "end of filter"),
            ("source.name eq", 14, "a value (a double-quoted string, a number", "end of filter"),
            ("a eqq 1", 2, "an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)", "'eqq'"),
            ("(a pr", 5, "')'", "end of filter"),
            ('a eq "x" b pr', 9, "'and', 'or' or end of filter", "'b'"),
            ("a pr and", 8, "an attribute name, 'not (' or '('", "end of filter"),
            ("a pr or or b pr", 8, "an attribute name, 'not (' or '('", "'or'"),
            ("a gt true", 5, "a string or number after 'gt'", "true"),
            ("a le null", 5, "a string or number after 'le'", "null"),
            ("a co 5", 5, "a string after 'co'", "5"),
            ("a sw true", 5, "a string after 'sw'", "true"),
            ("a eq 'x'", 5, "an attribute name, operator, value or parenthesis", "\"'x'\""),
            (
                'a eq "open',
                5,
                "an attribute name, operator, value or parenthesis",
                "an unterminated",
            ),
            (r'a eq "bad \x escape"', 10, "a valid string escape", "'\"bad "),
            (
                'emails[type eq "work"]',
                6,
                "an attribute name, operator, value or parenthesis",
                "'[' (value paths such as",
            ),
            ("a eq 01", 5, "an attribute name, operator, value or parenthesis", "'01'"),
            ("a eq x", 5, "a value (a double-quoted string", "'x'"),
            ("a gt 1e400", 5, "a number that fits a double", "'1e400'"),
            ("a pr)", 4, "'and', 'or' or end of filter", "')'"),
            ("not a pr", 4, "'(' after 'not'", "'a'"),
            ("a pr and not", 12, "'(' after 'not'", "end of filter"),
            ("and pr", 0, "an attribute name, 'not (' or '('", "'and'"),
            ("1a eq 1", 0, "an attribute name, operator, value or parenthesis", "'1a eq 1'"),
        ],
    )
    def test_syntax_errors_name_position_and_expectation(
        self, text: str, position: int, expected: str, found: str
    ) -> None:
        with pytest.raises(ScimSyntaxError) as info:
            parse_filter(text)
        error = info.value
        assert error.position == position
        assert error.expected.startswith(expected)
        assert error.found.startswith(found)
        assert str(error).startswith(f"invalid SCIM filter at position {position}: expected ")
        assert repr(text) in str(error)

    def test_nesting_limit(self) -> None:
        deepest = "(" * MAX_NESTING + "a pr" + ")" * MAX_NESTING
        assert parse_filter(deepest) == a_pr
        too_deep = f"not ({deepest})"
        with pytest.raises(ScimSyntaxError) as info:
            parse_filter(too_deep)
        assert info.value.expected == f"at most {MAX_NESTING} levels of nested parentheses"

    def test_expression_limit(self) -> None:
        parse_filter(" and ".join(["a pr"] * MAX_EXPRESSIONS))
        with pytest.raises(ScimSyntaxError) as info:
            parse_filter(" or ".join(["a pr"] * (MAX_EXPRESSIONS + 1)))
        assert info.value.expected == f"at most {MAX_EXPRESSIONS} attribute expressions"
        assert info.value.position == len("a pr or ") * MAX_EXPRESSIONS

    def test_not_a_string(self) -> None:
        with pytest.raises(TypeError, match="a SCIM filter is a string, not int"):
            parse_filter(5)  # type: ignore[arg-type]


class TestRender:
    @pytest.mark.parametrize(
        ("node", "text"),
        [
            (Or(a_pr, And(b_pr, c_pr)), "a pr or b pr and c pr"),
            (And(Or(a_pr, b_pr), c_pr), "(a pr or b pr) and c pr"),
            (And(a_pr, And(b_pr, c_pr)), "a pr and (b pr and c pr)"),
            (Or(a_pr, Or(b_pr, c_pr)), "a pr or (b pr or c pr)"),
            (Not(Or(a_pr, b_pr)), "not (a pr or b pr)"),
            (Compare("a", "eq", 'q"uote'), r'a eq "q\"uote"'),
            (Compare("a", "eq", None), "a eq null"),
        ],
    )
    def test_minimal_parentheses(self, node: Node, text: str) -> None:
        assert render(node) == text

    @pytest.mark.parametrize("value", [float("nan"), float("inf")])
    def test_non_finite_numbers_cannot_be_written(self, value: float) -> None:
        with pytest.raises(ValueError, match="cannot be written"):
            render_value(value)


def test_attributes_and_comparisons() -> None:
    node = parse_filter('source.name eq "x" or not (destination.type pr and source.name sw "y")')
    assert attributes(node) == {"source.name", "destination.type"}
    assert comparisons(node) == [
        Compare("source.name", "eq", "x"),
        Present("destination.type"),
        Compare("source.name", "sw", "y"),
    ]


# --------------------------------------------------------------------------- properties

NAMES = st.sampled_from(["a", "b", "c", "x_1", "pr", "eq", "true", "null", "n-1", "A2"])
ATTRIBUTES = st.builds(lambda parts: ".".join(parts), st.lists(NAMES, min_size=1, max_size=3))
NUMBERS = st.one_of(
    st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False)
)


@st.composite
def leaves(draw: st.DrawFn) -> Node:
    attribute = draw(ATTRIBUTES)
    operator = draw(st.sampled_from([*COMPARISON_OPERATORS, "pr"]))
    if operator == "pr":
        return Present(attribute)
    if operator in STRING_OPERATORS:
        value: Value = draw(st.text(max_size=8))
    elif operator in ORDERING_OPERATORS:
        value = draw(st.one_of(st.text(max_size=8), NUMBERS))
    else:
        value = draw(st.one_of(st.text(max_size=8), NUMBERS, st.booleans(), st.none()))
    return Compare(attribute, operator, value)


def trees(leaf: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.builds(And, children, children),
            st.builds(Or, children, children),
            st.builds(Not, children),
        ),
        max_leaves=8,
    )


def same_tree(left: Node, right: Node) -> bool:
    """Equality that also tells True from 1 and 1 from 1.0."""
    if type(left) is not type(right):
        return False
    if isinstance(left, Compare) and isinstance(right, Compare):
        return left == right and type(left.value) is type(right.value)
    if isinstance(left, Present):
        return left == right
    if isinstance(left, Not) and isinstance(right, Not):
        return same_tree(left.operand, right.operand)
    assert isinstance(left, And | Or)
    assert isinstance(right, And | Or)
    return same_tree(left.left, right.left) and same_tree(left.right, right.right)


@settings(max_examples=200, deadline=None)
@given(trees(leaves()))
def test_render_then_parse_gives_the_same_tree(node: Node) -> None:
    text = render(node)
    assert same_tree(parse_filter(text), node), text


# A small, unambiguous domain (ints and letter-only strings) for the keyword-case property.
SMALL_ATTRS = st.sampled_from(["a", "b", "c"])
SMALL_TEXT = st.sampled_from(["x", "X", "xy", "yx", "y", ""])
SMALL_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), SMALL_TEXT)


@st.composite
def small_leaves(draw: st.DrawFn) -> Node:
    attribute = draw(SMALL_ATTRS)
    operator = draw(st.sampled_from([*COMPARISON_OPERATORS, "pr"]))
    if operator == "pr":
        return Present(attribute)
    if operator in STRING_OPERATORS:
        return Compare(attribute, operator, draw(SMALL_TEXT))
    if operator in ORDERING_OPERATORS:
        return Compare(attribute, operator, draw(st.one_of(st.integers(-3, 3), SMALL_TEXT)))
    return Compare(attribute, operator, draw(SMALL_VALUES))


KEYWORDS = [*COMPARISON_OPERATORS, "pr", "and", "or", "not", "true", "false", "null"]


def shout_keywords(text: str) -> str:
    """Upper-case every keyword (safe here: small leaves hold no spaces in strings)."""
    words = text.replace("(", "( ").replace(")", " )").split(" ")
    return " ".join(w.upper() if w in KEYWORDS else w for w in words)


@settings(max_examples=100, deadline=None)
@given(trees(small_leaves()))
def test_keyword_case_and_spacing_do_not_matter(node: Node) -> None:
    text = render(node)
    assert same_tree(parse_filter(shout_keywords(text)), node)
    assert same_tree(parse_filter(text.replace(" ", " \t\n ")), node)
