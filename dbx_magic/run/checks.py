"""The checks every launch input goes through, once, where the launch is made (pure: nothing is sent)."""

from __future__ import annotations

import math
from typing import Any

from ..errors import InvalidInput

__all__ = ["MAX_ID", "MAX_IDEMPOTENCY_TOKEN", "check_timeout", "check_token", "positive_id"]

MAX_ID = 2**63 - 1  # ids are int64 in the API
MAX_IDEMPOTENCY_TOKEN = 64


def positive_id(value: Any, what: str) -> int:
    """``value`` as a positive int64 (an int, or a string of digits), or InvalidInput."""
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
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
        raise InvalidInput(f"The idempotency token must be a string, not a {type(token).__name__}.")
    text = token.strip()
    if not text:
        raise InvalidInput("The idempotency token is empty: leave it out to get a fresh one.")
    if len(text) > MAX_IDEMPOTENCY_TOKEN:
        raise InvalidInput(
            f"The idempotency token must be 1 to {MAX_IDEMPOTENCY_TOKEN} characters, not {len(text)}: "
            "use a shorter one, or none to get a fresh one."
        )
    return text
