"""The checks every launch input goes through, once, where the launch is made (pure: nothing is sent)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

from ..errors import InvalidInput

__all__ = [
    "IF_RUNNING",
    "MAX_ID",
    "MAX_IDEMPOTENCY_TOKEN",
    "a_kind",
    "check_if_running",
    "check_timeout",
    "check_token",
    "known_tasks",
    "positive_id",
    "task_keys",
]

MAX_ID = 2**63 - 1  # ids are int64 in the API
MAX_IDEMPOTENCY_TOKEN = 64
#: What a launch does when the job already has a run going: start another (the default), watch that
#: one instead, or cancel it and then launch.
IF_RUNNING = ("new", "wait", "cancel")


def digits(text: str) -> bool:
    """True for a non-empty run of ASCII digits (``"²".isdigit()`` and Arabic-Indic digits are not ids)."""
    return text.isascii() and text.isdigit()


def positive_id(value: Any, what: str) -> int:
    """``value`` as a positive int64 (an int, or a string of digits), or InvalidInput."""
    if isinstance(value, str) and digits(value.strip().lstrip("+-")):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"The {what} {value!r} is not a positive integer: pass one such as 1042.")
    if value > MAX_ID:
        raise InvalidInput(f"The {what} {value} is larger than any id the API has (2**63 - 1): check it.")
    return value


def check_timeout(timeout: float | None) -> float | None:
    """A timeout as a positive finite number of seconds (None means no timeout), or InvalidInput."""
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not timeout > 0
        or not math.isfinite(timeout)
    ):
        raise InvalidInput(
            f"The timeout {timeout!r} is not a positive number of seconds: pass e.g. 600, or None to wait "
            "as long as the run lasts."
        )
    return float(timeout)


def check_token(token: str | None) -> str | None:
    """An idempotency token as it will be sent (stripped), None for none; InvalidInput if unusable."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise InvalidInput(f"The idempotency token must be a string, not {a_kind(token)}.")
    text = token.strip()
    if not text:
        raise InvalidInput("The idempotency token is empty: leave it out to get a fresh one.")
    if len(text) > MAX_IDEMPOTENCY_TOKEN:
        raise InvalidInput(
            f"The idempotency token must be 1 to {MAX_IDEMPOTENCY_TOKEN} characters, not {len(text)}: "
            "use a shorter one, or none to get a fresh one."
        )
    return text


def a_kind(value: object) -> str:
    """``value``'s type with its article: "an int", "a list"."""
    kind = type(value).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def task_keys(value: str | Iterable[str] | None, what: str = "only") -> tuple[str, ...] | None:
    """Task keys given as ``"a,b"`` or a list of strings, stripped; None for none given.

    Raises:
        InvalidInput: keys were given but name nothing (``""``, ``[]``, ``","``), or one is not a string.
    """
    if value is None:
        return None
    if not isinstance(value, str | Iterable) or isinstance(value, bytes):
        raise InvalidInput(
            f"{what} takes task keys (a list of strings, or 'a,b'), not {a_kind(value)}: "
            f"e.g. {what}=['ingest'] in Python."
        )
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in items):
        bad = next(item for item in items if not isinstance(item, str))
        raise InvalidInput(f"{what} takes task keys as strings, not {a_kind(bad)}: e.g. {what} ingest.")
    keys = tuple(dict.fromkeys(k.strip() for k in items if k.strip()))
    if not keys:
        raise InvalidInput(
            f"{what} names no task: give task keys, e.g. {what} ingest,validate (or leave it out)."
        )
    return keys


def check_if_running(value: str | None, what: str = "if_running") -> str:
    """One of :data:`IF_RUNNING` (None means ``"new"``), or InvalidInput."""
    if value is None:
        return "new"
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in IF_RUNNING:
        raise InvalidInput(
            f"{what} {value!r} is not one of new, wait, cancel: new starts another run, wait watches the "
            "run already going, cancel cancels it and then launches."
        )
    return str(text)


PERFORMANCE_TARGETS = ("STANDARD", "PERFORMANCE_OPTIMIZED")
"""What ``performance_target`` takes (serverless jobs): cost first, or speed first."""


def check_performance_target(value: Any) -> str | None:
    """``STANDARD`` or ``PERFORMANCE_OPTIMIZED`` (any case; None: the job's own), or InvalidInput."""
    if value is None:
        return None
    text = value.strip().upper().replace("-", "_") if isinstance(value, str) else value
    if text not in PERFORMANCE_TARGETS:
        raise InvalidInput(
            f"performance_target {value!r} is not one the API takes: STANDARD (cost first) or "
            "PERFORMANCE_OPTIMIZED (faster start and run, serverless only)."
        )
    return str(text)


def known_tasks(names: Iterable[str], keys: Iterable[str], where: str) -> None:
    """Raise InvalidInput naming the first of ``names`` (``+`` prefix or suffix allowed) that is not
    among ``keys``, with the close ones; ``where`` says whose tasks they are (``job 42``)."""
    known = list(keys)
    for name in names:
        key = name.removeprefix("+").removesuffix("+")
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
        if close:
            hint = f"did you mean {', '.join(repr(c) for c in close)}?"
        else:
            shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
            hint = f"its tasks are {shown}." if known else "it has no tasks."
        raise InvalidInput(f"{where.capitalize()} has no task {key!r}: {hint}")
