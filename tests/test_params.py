"""Parameters: cell lines and mappings turned into what the API takes, mistakes caught locally."""

from __future__ import annotations

import math

import pytest

from dbx_magic.errors import InvalidInput
from dbx_magic.run.params import normalise_params, parse_param_lines


def test_lines_comments_and_values_with_equals_and_hashes():
    body = """
    # the day to report
    date  = 2026-11-01
    filter = a=b # not a comment
    empty =
    """
    assert parse_param_lines(body) == {"date": "2026-11-01", "filter": "a=b # not a comment", "empty": ""}


def test_json_object_body():
    assert parse_param_lines('{"a": 1, "b": true, "c": "x"}') == {"a": "1", "b": "true", "c": "x"}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("date 2026-11-01", r"Line 1 of the cell, 'date 2026-11-01', has no '='"),
        ("a = 1\n = 2", "Line 2 .* has no name"),
        ("a = 1\na = 2", "'a' is given twice"),
        ('{"a": 1', "not valid JSON"),
        ("[1, 2]", "has no '='"),
        ('{"a": {"b": 1}}', "is a dict"),
    ],
)
def test_bad_lines(body, match):
    with pytest.raises(InvalidInput, match=match):
        parse_param_lines(body)


def test_values_become_strings():
    assert normalise_params({"n": 3, "x": 0.5, "flag": False, "s": "v"}) == {
        "n": "3",
        "x": "0.5",
        "flag": "false",
        "s": "v",
    }


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"a": None}, "is None"),
        ({"a": [1]}, "is a list.*json.dumps"),
        ({"a": math.nan}, "finite"),
        ({1: "x"}, "not a non-empty string"),
        ({"": "x"}, "not a non-empty string"),
        ("a=1", "must be a mapping"),
        ({"big": "x" * 10_001}, "over the API's limit of 10,000"),
    ],
)
def test_bad_values(params, match):
    with pytest.raises(InvalidInput, match=match):
        normalise_params(params)


def test_limit_counts_utf8_bytes():
    normalise_params({"k": "é" * 4990})  # 9,980 bytes of value + the JSON around it fits
    with pytest.raises(InvalidInput):
        normalise_params({"k": "é" * 5000})
