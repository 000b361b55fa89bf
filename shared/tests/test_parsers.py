"""Request bodies: JSON nested deeper than any API answer needs is refused before it is parsed."""

from __future__ import annotations

import io

import pytest
from rest_framework.exceptions import ParseError

from shared.parsers import MAX_JSON_DEPTH, JSONParser, nesting_exceeds


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_within_the_bound_is_accepted_and_beyond_it_refused():
    assert not nesting_exceeds(_nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH)
    assert nesting_exceeds(_nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)
    assert nesting_exceeds('{"a": ' * 1000 + "1" + "}" * 1000, MAX_JSON_DEPTH)


def test_brackets_inside_strings_do_not_count():
    text = '{"note": "' + "[{" * 1000 + '", "escaped": "\\"[[[[", "lines": [{"variant_id": 1}]}'
    assert not nesting_exceeds(text, 3)
    assert nesting_exceeds('{"a": [[[["x"]]]]}', 3)


def test_parser_refuses_deep_nesting_as_a_parse_error_and_parses_the_rest():
    parser = JSONParser()
    with pytest.raises(ParseError, match="nested"):
        parser.parse(io.BytesIO(_nested(1000).encode()))
    assert parser.parse(io.BytesIO(b'{"lines": [{"variant_id": 1, "quantity": 2}]}')) == {
        "lines": [{"variant_id": 1, "quantity": 2}]
    }
    with pytest.raises(ParseError):
        parser.parse(io.BytesIO(b'{"lines": [NaN]}'))
    with pytest.raises(ParseError):
        parser.parse(io.BytesIO(b"\xff\xfe not utf-8"))
