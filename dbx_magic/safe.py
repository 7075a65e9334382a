"""Text and links from the workspace, made safe for the faces that show them.

Everything a workspace (or a proxy on the way) answers is someone else's text: a task's error can
hold terminal control sequences, a run's page URL can be a ``javascript:`` link. Two functions stand
between those answers and every face: :func:`terminal_text` for whatever prints to a terminal, and
:func:`web_link` for whatever becomes a clickable link.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["terminal_text", "web_link"]

_ST = r"(?:\x07|\x1b\\|\x9c)"  # what ends a string sequence: BEL or ST (7- and 8-bit)
_SEQUENCES = re.compile(
    # OSC, DCS, SOS, PM, APC (7- and 8-bit introducers): their payload up to ST/BEL, or to the line's end
    r"(?:\x1b[]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*" + _ST + "?"
    # CSI (7- and 8-bit): parameters, intermediates, a final byte (or the end: a cut sequence)
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    # every other escape: intermediates and a final byte (RIS is ESC c), or a lone ESC
    r"|\x1b[ -/]*[0-~]?"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    return "" if char == "\r" else f"\\x{ord(char):02x}"


def terminal_text(text: str) -> str:
    """``text`` safe to print to a terminal: every escape sequence (CSI, OSC, DCS, SOS, PM, APC, RIS
    and the rest, 7- and 8-bit) removed, every other C0 or C1 control but newline and tab shown as
    ``\\xNN`` (a carriage return is dropped: it could overwrite what the line said)."""
    if text.isprintable() or not text:
        return text
    return _CONTROLS.sub(_visible, _SEQUENCES.sub("", text))


def web_link(url: object) -> str | None:
    """``url`` when it is an ``http:`` or ``https:`` URL with a host, else None (show it as text, or
    rebuild it): the only links any face renders as clickable."""
    if not isinstance(url, str) or not url or not url.isprintable() or url != url.strip():
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc and parts.hostname else None
