"""The sandbox's HTML: run exports (``jobs/runs/export``) and the run pages ``run_page_url`` points at.

An export is a small but whole notebook page: a table of the run's parameters and of its exit value, an
inline SVG image, and a harmless script that sets ``window.parent.__dbx_export_reached = true`` when it can,
so that a frontend can check it shows exports in an isolated frame. Run pages are plain HTML with no script.
Every value is HTML-escaped.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from html import escape

__all__ = ["escape", "export_page", "link", "page", "table"]
from typing import Any

from dbx_magic.sandbox.workspace import Attempt, Task

_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
)
_PROBE = (
    "<script>\n"
    "/* Touches the embedding page when it is allowed to: an isolated frame keeps this from working. */\n"
    "try { window.parent.__dbx_export_reached = true; } catch (e) { /* blocked: isolated */ }\n"
    "</script>"
)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(label: str) -> str:
    width = 172 + 8 * len(label)  # the label whole: about 7 px a character at 12 px, and a margin
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="60">'
        f'<rect x="0" y="0" width="{width}" height="60" rx="8" fill="#1b3139"/>'
        '<rect x="12" y="36" width="40" height="14" fill="#ff3621"/>'
        '<rect x="60" y="24" width="40" height="26" fill="#ff3621"/>'
        '<rect x="108" y="12" width="40" height="38" fill="#ff3621"/>'
        f'<text x="160" y="36" fill="#fff" font-size="12">{escape(label)}</text></svg>'
    )
    data = base64.b64encode(svg.encode()).decode()
    return f'<img alt="{escape(label)} chart" src="data:image/svg+xml;base64,{data}">'


def _output_rows(result: str | None) -> list[tuple[str, str]]:
    if result is None:
        return []
    try:
        value = json.loads(result)
    except ValueError:
        return [("exit value", result)]
    if isinstance(value, dict):
        return [(str(k), json.dumps(v) if not isinstance(v, str) else v) for k, v in value.items()]
    return [("exit value", result)]


def export_page(
    job_name: str, job_run_id: int, task: Task, attempt: Attempt, state: dict[str, Any], ended: bool
) -> str:
    """The HTML of an exported notebook task run."""
    name = task.notebook_path.rsplit("/", 1)[-1]
    outcome = attempt.outcome
    rows = _output_rows(outcome.result) if ended else []
    if ended and outcome.error:
        rows = [("error", outcome.error)]
    result = state.get("result_state") or state.get("life_cycle_state", "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(name)}</h1>",
        f"<p>Job <b>{escape(job_name)}</b>, task <b>{escape(task.key)}</b>, "
        f"attempt {attempt.number + 1} (task run {attempt.run_id} of job run {job_run_id}): "
        f"{escape(str(result))}</p>",
        "<h2>Parameters</h2>",
        _table(("name", "value"), sorted(attempt.params.items())),
        "<h2>Output</h2>",
        _table(("name", "value"), rows) if rows else "<p>No output yet.</p>",
        _image(name),
        _PROBE,
        "</body></html>",
    ]
    return "\n".join(parts)


def page(title: str, body: str) -> str:
    """A whole HTML page around ``body``."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def link(href: str, text: str) -> str:
    """An escaped link."""
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table whose cells are HTML already (escape them first)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
