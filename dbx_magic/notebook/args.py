"""The magics' flags and cell bodies, judged as they are parsed: argparse ``type=`` callables that turn
a mistake into one sentence (IPython shows it as a plain ``UsageError``), and the cell body's parameters.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import keyword
import math
import re
import string
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import parse_argstring

from ..errors import InvalidInput
from ..run.checks import (
    check_if_running,
    check_performance_target,
    check_token,
    digits,
    positive_id,
    task_keys,
)
from ..run.params import normalise_params, parse_param_lines

__all__ = [
    "cell_params",
    "check_out_name",
    "if_running",
    "job_ref",
    "only_tasks",
    "out_name",
    "parse",
    "positive_int",
    "repair_tasks",
    "run_or_name",
    "run_ref",
    "seconds",
    "speed",
    "token",
    "usage_errors",
]

# Names the session itself relies on: publishing over them would break the notebook.
_RESERVED = frozenset({"get_ipython", "exit", "quit", "In", "Out", "display", "_", "__", "___"})


def _judged(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a check that raises InvalidInput: argparse then shows its sentence."""

    def convert(text: str) -> Any:
        try:
            return check(text)
        except InvalidInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = check.__name__
    return convert


def strip_quotes(text: str) -> str:
    """A quoted value without its quotes (IPython's argument splitter keeps them)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].strip()
    return text


@_judged
def job_ref(text: str) -> str:
    """A job id (checked) or a job name (unquoted)."""
    job = strip_quotes(text)
    if not job:
        raise InvalidInput("The job is empty: give a job id or a quoted job name.")
    if digits(job.lstrip("+-")):
        if job != text.strip():  # quoted: "123" is the job named 123, as a quoted name always is
            return f"name:{job}"
        return str(positive_id(job, "job id"))
    return job


@_judged
def run_ref(text: str) -> int:
    """A run id."""
    return positive_id(strip_quotes(text), "run id")


@_judged
def run_or_name(text: str) -> int | str:
    """A run id, or the name of a notebook variable holding a run (judged when it is looked up)."""
    ref = strip_quotes(text)
    if digits(ref.lstrip("+-")):
        return positive_id(ref, "run id")
    if not ref.isidentifier():
        raise InvalidInput(
            f"{ref!r} is neither a run id nor a variable name: give a run id, or the --out name of the run."
        )
    return ref


def _task_list(flag: str) -> Callable[[str], tuple[str, ...]]:
    @_judged
    def task_list(text: str) -> tuple[str, ...]:
        """Task keys separated by commas (``ingest,validate``); an empty list is refused."""
        keys = task_keys(strip_quotes(text), flag)
        assert keys is not None
        return keys

    return task_list


only_tasks = _task_list("--only")
repair_tasks = _task_list("--tasks")


@_judged
def performance_target(text: str) -> str | None:
    """``STANDARD`` or ``PERFORMANCE_OPTIMIZED`` (any case)."""
    return check_performance_target(strip_quotes(text))


@_judged
def if_running(text: str) -> str:
    """``new``, ``wait`` or ``cancel``."""
    return check_if_running(strip_quotes(text), "--if-running")


@_judged
def out_name(text: str) -> str:
    """A variable name to publish under (``--out``), quotes around it allowed."""
    return check_out_name(strip_quotes(text))


def check_out_name(name: str, what: str = "--out") -> str:
    """``name`` when it is a Python name that IPython and the notebook do not rely on; else
    InvalidInput, the sentence starting with ``what`` (the flag, or the form's field)."""
    example = "--out result" if what.startswith("--") else "result"
    if not name.isidentifier() or keyword.iskeyword(name):
        raise InvalidInput(f"{what} {name!r} is not a valid Python variable name: use e.g. {example}.")
    if name in _RESERVED or hasattr(builtins, name):
        raise InvalidInput(
            f"{what} {name} would replace {name!r}, which Python or IPython relies on: pick another name."
        )
    return name


def _positive_number(text: str, flag: str, example: str) -> float:
    try:
        value = float(strip_quotes(text))
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise InvalidInput(f"{flag} {text} is not positive: give a number such as {flag} {example}.")
    return value


@_judged
def seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    return _positive_number(text, "--timeout", "600")


@_judged
def speed(text: str) -> float:
    """A positive, finite speed factor."""
    return _positive_number(text, "--speed", "5")


@_judged
def positive_int(text: str) -> int:
    """A whole number, at least 1."""
    value = strip_quotes(text)
    if not digits(value) or int(value) < 1:
        raise InvalidInput(
            f"--max-parallel {text} is not a whole number of at least 1: e.g. --max-parallel 4."
        )
    return int(value)


@_judged
def token(text: str) -> str:
    """An idempotency token (quotes stripped; empty and over-long ones refused)."""
    checked = check_token(strip_quotes(text))
    assert checked is not None
    return checked


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """Input mistakes surface as IPython's plain UsageError: one line, no stack trace."""
    try:
        yield
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None


def parse(magic: Callable[..., Any], line: str) -> Any:
    """Parse a magic's flags; a mistake says which magic's help lists them."""
    try:
        return parse_argstring(magic, line)
    except UsageError as exc:
        name = getattr(magic, "__name__", "dbx_run")
        judged = re.fullmatch(r"argument [^:]+: (.*\.)", str(exc))
        if judged:  # a type= check's own sentence, which says what to do
            raise UsageError(judged.group(1)) from None
        text = str(exc).rstrip(".")
        hint = (
            "quote a job name with spaces, pass a variable's name to --params; "
            if "unrecognized" in text
            else ""
        )
        raise UsageError(f"{text}: {hint}`%{name}?` lists the flags.") from None


class _StrictFormatter(string.Formatter):
    """``{name}`` from the namespace, as IPython expands ``!`` commands, but an unknown name is an error."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self._ns = namespace

    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:
        if isinstance(key, str) and key in self._ns:
            return self._ns[key]
        raise InvalidInput(
            f"The cell refers to {{{key}}}, which is not defined in the notebook: define it first, "
            "or write {{ and }} for literal braces."
        )


def _expand(text: str, namespace: Mapping[str, Any]) -> str:
    """Expand ``{name}`` in every line but comments (a ``#`` line is left as written)."""
    formatter = _StrictFormatter(namespace)
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith("#"):
            lines.append(line)
            continue
        try:
            lines.append(formatter.format(line))
        except InvalidInput:
            raise
        except Exception as exc:  # the user's own objects: any error of theirs is one sentence
            raise InvalidInput(
                f"Line {number} of the cell could not be expanded ({type(exc).__name__}: {exc}): "
                "write {{ and }} for literal braces, or give the value plainly."
            ) from None
    return "\n".join(lines)


def evaluate(flag: str, expr: str, namespace: dict[str, Any], wanted: str) -> Any:
    """Evaluate a flag's expression in the notebook's namespace (it is the user's own code)."""
    try:
        return eval(expr, namespace)
    except Exception as exc:
        raise InvalidInput(
            f"{flag} {expr} could not be evaluated ({type(exc).__name__}: {exc}): pass {wanted} from the notebook."
        ) from None


def cell_params(expr: str | None, cell: str | None, namespace: dict[str, Any]) -> dict[str, str]:
    """The parameters of a ``%%dbx_run``: ``--params EXPR`` merged under the cell body's lines."""
    merged: dict[str, str] = {}
    if expr:
        value = evaluate("--params", expr, namespace, "a dict")
        if not isinstance(value, Mapping):
            raise InvalidInput(
                f"--params {expr} is a {type(value).__name__}, not a dict: pass a dict of parameters."
            )
        merged.update(normalise_params(value))
    if cell and cell.strip():
        body = cell if cell.lstrip().startswith("{") else _expand(cell, namespace)
        merged.update(parse_param_lines(body))
    return normalise_params(merged)


def foreach_sets(expr: str, params: dict[str, str], namespace: dict[str, Any]) -> list[dict[str, Any]]:
    """The parameter sets of ``--foreach EXPR``, each merged over the cell's parameters."""
    items = evaluate("--foreach", expr, namespace, "a list of dicts")
    if (
        isinstance(items, Mapping | str)
        or not isinstance(items, list | tuple)
        or not all(isinstance(i, Mapping) for i in items)
    ):
        raise InvalidInput(
            f"--foreach {expr} is not a list of dicts: pass e.g. [{{'date': '2026-11-01'}}, {{'date': '2026-11-02'}}]."
        )
    if not items:
        raise InvalidInput(f"--foreach {expr} is empty: give at least one dict of parameters.")
    return [{**params, **item} for item in items]
