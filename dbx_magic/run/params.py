"""Job parameters: checked and turned into the ``{str: str}`` maps the API takes.

Everything here is judged locally, so a mistake is reported before anything is sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInput
from .checks import a_kind

__all__ = ["MAX_PARAMS_BYTES", "normalise_params", "parse_param_lines"]

MAX_PARAMS_BYTES = 10_000


def _to_str(key: str, value: Any, what: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"The {what} value for {key!r} is {value}: pass a finite number or a string.")
        return repr(value)
    if value is None:
        raise InvalidInput(
            f'The {what} value for {key!r} is None: pass a string (an empty one, "", if you mean none).'
        )
    raise InvalidInput(
        f"The {what} value for {key!r} is {a_kind(value)}, and parameters are strings: "
        f"pass json.dumps(value) if the job parses JSON."
    )


def _items(params: Mapping[str, Any], what: str) -> list[tuple[Any, Any]]:
    """The mapping's items, read once; a mapping that cannot give them is refused in one sentence."""
    try:
        return list(params.items())
    except Exception as exc:  # a user's mapping may raise anything
        raise InvalidInput(
            f"The {what}s could not be read: their items() raised {type(exc).__name__}; pass a plain dict "
            'such as {"date": "2026-11-01"}.'
        ) from None


def _name(key: Any, what: str) -> str:
    """A parameter's name stripped of spaces, or InvalidInput for one that is no name."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput(
            f"The {what} name {key!r} is not a non-empty string: name each parameter with text."
        )
    if not key.isprintable() and any(ch not in " \t" and not ch.isprintable() for ch in key):
        raise InvalidInput(
            f"The {what} name {key!r} holds a control character: name each parameter with printable text."
        )
    return key.strip()


def normalise_params(params: Mapping[str, Any] | None, what: str = "parameter") -> dict[str, str]:
    """Check a parameter mapping and return it as ``{str: str}``.

    Numbers become strings, booleans ``"true"``/``"false"``; anything else that is not a string is
    refused with a message saying what to pass instead.

    Raises:
        InvalidInput: not a mapping, a key that is not a non-empty string, a value that cannot be a
            string, or more than the API's 10,000 bytes of JSON.
    """
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidInput(
            f"The {what}s must be a mapping of names to values, not {a_kind(params)}: "
            'pass a dict such as {"date": "2026-11-01"}.'
        )
    out: dict[str, str] = {}
    for key, value in _items(params, what):
        name = _name(key, what)
        if name in out:
            given = next(k for k in params if isinstance(k, str) and k.strip() == name and k != key)
            raise InvalidInput(
                f"The {what} names {given!r} and {key!r} are the same name once spaces are trimmed: keep one."
            )
        out[name] = _to_str(key, value, what)
        if "\0" in out[name]:
            raise InvalidInput(
                f"The {what} value for {name!r} holds a NUL character (\\x00), which no job can take: remove it."
            )
    size = len(json.dumps(out, ensure_ascii=False).encode("utf-8"))
    if size > MAX_PARAMS_BYTES:
        raise InvalidInput(
            f"The {what}s take {size:,} bytes as JSON, over the API's limit of {MAX_PARAMS_BYTES:,}: "
            "pass large values by reference (a table or file path) instead."
        )
    return out


def parse_param_lines(text: str) -> dict[str, str]:
    """Parse a cell body: one ``name = value`` per line, ``#`` comments, blank lines; or a JSON object.

    Values are taken verbatim (surrounding spaces stripped); a value may itself contain ``=`` or
    ``#``: only a line that *starts* with ``#`` is a comment.

    Raises:
        InvalidInput: a line without ``=``, an empty name, or a name given twice.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"The cell body starts with '{{' but is not valid JSON ({exc.msg} at line {exc.lineno}): "
                "fix the JSON, or write one `name = value` per line."
            ) from None
        if not isinstance(data, dict):
            raise InvalidInput('The cell body\'s JSON is not an object: write {"name": "value", ...}.')
        return normalise_params(data)
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep:
            raise InvalidInput(
                f"Line {number} of the cell, {line!r}, has no '=': write one `name = value` per line."
            )
        if not name:
            raise InvalidInput(
                f"Line {number} of the cell, {line!r}, has no name before '=': write `name = value`."
            )
        if name in out:
            raise InvalidInput(f"The parameter {name!r} is given twice (line {number}): keep one.")
        out[name] = value.strip()
    return out
