"""What a job declares it takes, and the check of a launch's parameters against it.

A job's parameters are declared in three places: its job-level ``parameters``, its notebook tasks'
``base_parameters``, and the ``dbutils.widgets.*`` calls (or SQL ``CREATE WIDGET`` statements) in
each notebook's source, read with ``workspace/export``. :func:`declared_params` gathers them into
:class:`Declarations`; :meth:`Declarations.check` judges a launch's parameters: a name the job does not
know, or a value outside a dropdown's choices, is refused with the close names, or, when some source
could not be read (so the job may take more than is known), reported as a warning. Sources are parsed,
never executed.
"""

from __future__ import annotations

import ast
import datetime
import difflib
import functools
import html
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import DatabricksError, InvalidInput, WaitTimeout
from ..safe import terminal_text

if TYPE_CHECKING:
    from ..api.client import DatabricksClient
    from .launch import JobInfo

__all__ = ["KINDS", "Declarations", "Declared", "declared_params", "parse_source", "parse_widgets"]

KINDS = ("text", "dropdown", "combobox", "multiselect")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_FLAGS = frozenset({"true", "false"})
#: The value types a parameter's default reveals (a text widget or job parameter has no type of its
#: own): what each takes, said in the refusal.
_TYPES = {
    "date": "a date, YYYY-MM-DD",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
}
SOURCES_WAIT = 3.0
"""Seconds the reading of a job's notebook sources may take in all, on the launch's thread: past it,
a source not read yet is noted as unread and the launch goes on."""
SEND_ANYWAY = "--allow-unknown-params; allow_unknown_params=True in Python"


@dataclass(frozen=True)
class Declared:
    """One parameter a job takes.

    Attributes:
        name: The parameter's name.
        kind: ``text``, ``dropdown``, ``combobox`` or ``multiselect`` (the widget's kind; ``text``
            for a parameter no notebook declares as a widget).
        default: The value the job runs with when none is given (a job-level default wins over a
            task's ``base_parameters``, which win over the widget's own default); None when unknown.
        choices: The widget's choices (a dropdown's and a multiselect's are the only values it takes;
            a combobox's are suggestions); None for none.
        label: The widget's label, if it has one.
        where: Where it is declared, e.g. ``("job parameter", "notebook /Shared/report")``.
    """

    name: str
    kind: str = "text"
    default: str | None = None
    choices: tuple[str, ...] | None = None
    label: str | None = None
    where: tuple[str, ...] = ()

    @property
    def is_flag(self) -> bool:
        """True for a dropdown of exactly ``true`` and ``false`` (shown as a checkbox)."""
        return self.kind == "dropdown" and {c.lower() for c in self.choices or ()} == _FLAGS

    @property
    def is_date(self) -> bool:
        """True for a text parameter whose default is a date, ``YYYY-MM-DD`` (shown as a date picker)."""
        return self.kind == "text" and bool(self.default) and bool(_DATE.fullmatch(self.default or ""))

    @property
    def value_type(self) -> str | None:
        """What a text parameter's default says its values are: ``date``, ``integer``, ``number`` or
        ``boolean`` (a default of ``true``/``false``); a combobox's too, when its suggestions agree.
        None for free text and for dropdowns and multiselects (their choices say it)."""
        if self.kind not in ("text", "combobox") or not self.default:
            return None
        kind = _type_of(self.default)
        # a combobox's choices are suggestions: they tell its type only when they all agree
        if self.kind == "combobox" and any(_type_of(c) != kind for c in self.choices or ()):
            return None
        return kind

    def mistyped(self, value: str) -> str:
        """Why ``value`` is not of the type the default shows ("" when it is, when it is empty (an
        empty value is the notebook's to judge), or when it holds a dynamic value reference such as
        ``{{job.start_time.iso_date}}``, which the workspace fills in)."""
        kind = self.value_type
        if kind is None or not value or "{{" in value:
            return ""
        if kind == "date":
            if not _DATE.fullmatch(value):
                return "is not in that form"
            try:
                datetime.date.fromisoformat(value)
            except ValueError as exc:
                return f"is no such day ({exc})"
            return ""
        ok = {
            "integer": _INTEGER.fullmatch(value),
            "number": _NUMBER.fullmatch(value),
            "boolean": value in _FLAGS,
        }[kind]
        return "" if ok else "is not one"

    @property
    def fixed_choices(self) -> bool:
        """True when only the declared choices are values (a dropdown's, a multiselect's)."""
        return self.kind in ("dropdown", "multiselect") and bool(self.choices)

    def outside(self, value: str) -> list[str]:
        """The parts of ``value`` that are not among the fixed choices (a multiselect's items are
        comma-separated); empty when the value is one the widget takes."""
        if not self.fixed_choices or self.choices is None:
            return []
        items = [i.strip() for i in value.split(",")] if self.kind == "multiselect" else [value]
        return [i for i in items if i and i not in self.choices]

    def merged(self, other: Declared) -> Declared:
        """This declaration with what ``other`` adds: a widget's kind and choices, a missing default."""
        widget = other if other.kind != "text" and self.kind == "text" else self
        return replace(
            widget,
            default=self.default if self.default is not None else other.default,
            label=self.label or other.label,
            where=self.where + tuple(w for w in other.where if w not in self.where),
        )


@dataclass(frozen=True)
class Declarations:
    """Everything a job declares it takes, and what could not be read.

    Attributes:
        job_id: The job.
        job_name: Its name.
        params: The declared parameters by name, in declaration order.
        unreadable: One phrase per place that could not be read (a notebook's source, say); while
            there is one, the job may take names not listed here.
        fixed: Names the job's notebooks declare that a run cannot set: a job with job-level
            parameters takes those alone, and fills its notebooks' widgets itself.
    """

    job_id: int
    job_name: str | None
    params: dict[str, Declared] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    job_level: bool = False
    """The job takes job-level parameters, and those alone (whatever its notebooks declare)."""

    @property
    def complete(self) -> bool:
        """True when every source was read (or the job takes its job-level parameters alone): a name
        not in ``params`` is one the job does not take."""
        return not self.unreadable or self.job_level

    @property
    def defaults(self) -> dict[str, str]:
        """The declared parameters with their defaults ("" where unknown)."""
        return {name: d.default or "" for name, d in self.params.items()}

    def __getitem__(self, name: str) -> Declared:
        return self.params[name]

    def __contains__(self, name: object) -> bool:
        return name in self.params

    def __iter__(self) -> Iterator[Declared]:
        return iter(self.params.values())

    def __len__(self) -> int:
        return len(self.params)

    def close(self, name: str) -> list[str]:
        """The declared names closest to ``name`` (at most three)."""
        lowered = {n.lower(): n for n in self.params}
        exact = lowered.get(name.lower())
        if exact is not None:
            return [exact]
        return [lowered[n] for n in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)]

    # -- the check ------------------------------------------------------------------------------
    def check(self, params: Mapping[str, str], *, allow_unknown: bool = False) -> tuple[str, ...]:
        """Judge a launch's parameters against the declarations.

        Returns:
            Warnings to carry on the run: names or values the readable sources do not declare,
            while some source could not be read (the launch goes on).

        Raises:
            InvalidInput: a name the job does not declare, or a value outside a dropdown's or a
                multiselect's choices, when every source was read (unless ``allow_unknown``).
        """
        if allow_unknown or not params:
            return ()
        problems = [p for p in (self._unknown(params), self._outside(params), self._mistyped(params)) if p]
        if not problems:
            return ()
        if self.complete:
            raise InvalidInput(
                f"{problems[0]}: fix it, or allow unknown parameters to send it as given ({SEND_ANYWAY})."
            )
        reason = self.unreadable[0]
        return tuple(f"{p}; it is sent as given, since {reason}." for p in problems)

    def _job(self) -> str:
        return f"Job {self.job_name!r}" if self.job_name else f"Job {self.job_id}"

    def _unknown(self, params: Mapping[str, str]) -> str:
        unknown = [n for n in params if n not in self.params]
        if not unknown:
            return ""
        where = "" if self.complete else " in the sources that could be read"
        named = " and ".join(self._hinted(n) for n in unknown[:3])
        plural = "s" if len(unknown) > 1 else ""
        text = f"{self._job()} declares no parameter{plural} {named}{where}"
        if all(self.close(n) for n in unknown[:3]):
            return text
        if not self.params:
            return f"{text} (it declares none)"
        shown = ", ".join(repr(n) for n in list(self.params)[:8])
        return f"{text} (it takes {shown}{', ...' if len(self.params) > 8 else ''})"

    def _hinted(self, name: str) -> str:
        close = self.close(name)
        return f"{name!r} (did you mean {' or '.join(repr(c) for c in close)}?)" if close else repr(name)

    def _outside(self, params: Mapping[str, str]) -> str:
        for name, value in params.items():
            declared = self.params.get(name)
            bad = declared.outside(value) if declared is not None else []
            if declared is None or not bad or declared.choices is None:
                continue
            choices = ", ".join(repr(c) for c in declared.choices[:10])
            close = difflib.get_close_matches(bad[0], list(declared.choices), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            job = f"job {self.job_name!r}" if self.job_name else f"job {self.job_id}"
            return f"The {declared.kind} {name!r} of {job} takes {choices}, not {bad[0]!r}{hint}"
        return ""

    def _mistyped(self, params: Mapping[str, str]) -> str:
        for name, value in params.items():
            declared = self.params.get(name)
            why = declared.mistyped(value) if declared is not None else ""
            if declared is None or not why or declared.value_type is None:
                continue
            job = f"job {self.job_name!r}" if self.job_name else f"job {self.job_id}"
            takes = _TYPES[declared.value_type]
            hint = f" (did you mean {value.lower()!r}?)" if value.lower() in _FLAGS else ""
            return (
                f"Parameter {name!r} of {job} takes {takes}, as its default {declared.default!r} does; "
                f"{value!r} {why}{hint}"
            )
        return ""

    # -- display --------------------------------------------------------------------------------
    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """One row a parameter: name, kind, default, choices, where declared."""
        return [
            (
                d.name,
                d.kind + (" (flag)" if d.is_flag else f" ({d.value_type})" if d.value_type else ""),
                "" if d.default is None else d.default,
                ", ".join(d.choices or ()),
                "; ".join(d.where),
            )
            for d in self
        ]

    def summary_text(self) -> str:
        """A plain-text table of the parameters, and what could not be read."""
        head = f"{self._job()} takes {len(self)} parameter{'s' if len(self) != 1 else ''}"
        lines = [head + (":" if self.params else ".")]
        rows = [("name", "kind", "default", "choices", "declared in"), *self.rows()]
        widths = [min(60, max(len(r[i]) for r in rows)) for i in range(4)]
        for row in rows:
            cells = [_cut(c, w).ljust(w) for c, w in zip(row[:4], widths, strict=True)]
            lines.append("  " + "  ".join(cells) + "  " + row[4])
        lines.extend(f"  note: {u[0].upper() + u[1:]}; it may take more." for u in self.unreadable)
        if self.fixed:
            lines.append(f"  note: {self._fixed_note()}")
        return terminal_text("\n".join(lines))

    def _fixed_note(self) -> str:
        names = ", ".join(self.fixed)
        return (
            f"its notebooks also declare {names}: the job sets {'it' if len(self.fixed) == 1 else 'them'} "
            "(it takes job parameters, which alone a run can set)."
        )

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text("Declarations(...)" if cycle else self.summary_text())

    def _repr_html_(self) -> str:
        esc = html.escape
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in self.rows())
        notes = "".join(
            f"<div>&#9888; {esc(u[0].upper() + u[1:])}; it may take more.</div>" for u in self.unreadable
        )
        if self.fixed:
            notes += f"<div>{esc(self._fixed_note()[0].upper() + self._fixed_note()[1:])}</div>"
        return (
            f'<div class="dbx-params"><b>{esc(self._job())}</b> takes {len(self)} parameters'
            "<table><tr><th>name</th><th>kind</th><th>default</th><th>choices</th><th>declared in</th></tr>"
            f"{body}</table>{notes}</div>"
        )


def _type_of(value: str) -> str | None:
    if _DATE.fullmatch(value):
        return "date"
    if _INTEGER.fullmatch(value):
        return "integer"
    if _NUMBER.fullmatch(value):
        return "number"
    return "boolean" if value.lower() in _FLAGS else None


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# -- gathering ------------------------------------------------------------------------------------


def _notebook_tasks(tasks: Iterable[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(task key, notebook_task) for every notebook task, for-each tasks' inner ones included."""
    for task in tasks:
        if not isinstance(task, dict):
            continue
        inner = (task.get("for_each_task") or {}).get("task")
        if isinstance(inner, dict) and isinstance(inner.get("notebook_task"), dict):
            yield str(task.get("task_key", "")), inner["notebook_task"]
        if isinstance(task.get("notebook_task"), dict):
            yield str(task.get("task_key", "")), task["notebook_task"]


def _undeclaring(tasks: Iterable[Any]) -> Iterator[str]:
    """A phrase for each task of a kind whose parameters jobs/get does not declare (a wheel, a SQL
    file, another job...): such a task may take names that nothing here lists."""
    for task in tasks:
        if not isinstance(task, dict) or "condition_task" in task or "notebook_task" in task:
            continue
        inner = (task.get("for_each_task") or {}).get("task")
        if isinstance(inner, dict) and "notebook_task" in inner:
            continue
        yield f"task {task.get('task_key', '?')} is not a notebook task, so what it takes is not declared"


def _add(into: dict[str, Declared], item: Declared) -> None:
    into[item.name] = into[item.name].merged(item) if item.name in into else item


def _read(client: DatabricksClient, path: str, key: str) -> tuple[list[Declared], str | None]:
    """The widgets a notebook declares, and why they are not all known (None when they are)."""
    try:
        source = client.export_notebook(path)
    except WaitTimeout:
        return [], f"the source of notebook {path} (task {key}) was not read within {SOURCES_WAIT:g} s"
    except DatabricksError as exc:
        kind = type(exc).__name__
        detail = f"{exc.status_code} {kind}" if exc.status_code else kind
        return [], f"the source of notebook {path} (task {key}) could not be read: {detail}"
    try:
        found, unsure = parse_widgets(source)
    except Exception as exc:  # whatever a source does to the parser, the launch goes on
        return [], f"the source of notebook {path} (task {key}) could not be parsed ({type(exc).__name__})"
    where = f"notebook {path}"
    problem = (
        f"notebook {path} (task {key}) names a widget by a value computed at run time" if unsure else None
    )
    return [replace(d, where=(where,)) for d in found], problem


def _from_notebooks(
    client: DatabricksClient, tasks: Any, params: dict[str, Declared], unreadable: list[str]
) -> None:
    """Add each notebook task's base parameters and its source's widgets (each path read once)."""
    read: set[str] = set()
    for key, notebook in _notebook_tasks(tasks):
        for name, value in (notebook.get("base_parameters") or {}).items():
            _add(params, Declared(str(name), default=str(value), where=(f"task {key}",)))
        path = str(notebook.get("notebook_path") or "")
        if not path or path in read:
            continue
        read.add(path)
        if str(notebook.get("source") or "WORKSPACE").upper() == "GIT":
            unreadable.append(f"the notebook {path} of task {key} is in a git repository")
            continue
        found, problem = _read(client, path, key)
        for item in found:
            _add(params, item)
        if problem:
            unreadable.append(problem)


def declared_params(client: DatabricksClient, job: int | str | JobInfo) -> Declarations:
    """Gather what a job declares: job-level parameters, ``base_parameters``, and the widgets of each
    notebook task's source (each path read once; a source that cannot be read is noted, not raised).

    ``declared_params(client, "daily-sales-report")`` is what ``%dbx_params`` shows: a table in a
    notebook, text elsewhere (``.summary_text()``); ``.params`` holds each :class:`Declared`.

    Args:
        client: The workspace client (``workspace/export`` reads the sources).
        job: A job id or name, or what ``jobs/get`` said about it (:func:`~dbx_magic.run.launch.job_info`).

    Raises:
        InvalidInput: a job name that matches no job, or several.
    """
    from .launch import JobInfo, job_info

    info = job if isinstance(job, JobInfo) else job_info(client, job)
    params: dict[str, Declared] = {}
    unreadable: list[str] = []
    settings = info.settings
    for p in settings.get("parameters") or ():
        if isinstance(p, dict) and p.get("name"):
            _add(
                params, Declared(str(p["name"]), default=str(p.get("default", "")), where=("job parameter",))
            )
    tasks = settings.get("tasks") or ()
    unreadable.extend(_undeclaring(tasks))
    with client.until(client.clock.monotonic() + SOURCES_WAIT):  # a slow workspace holds no launch long
        _from_notebooks(client, tasks, params, unreadable)
    if not isinstance(settings.get("tasks"), list):
        unreadable.append("jobs/get showed none of the job's tasks")
    if info.more_pages:
        unreadable.append("the job has more tasks than jobs/get showed on one page")
    fixed: tuple[str, ...] = ()
    if info.uses_job_parameters:  # what a run can set: the job-level parameters, and nothing else
        fixed = tuple(n for n in params if n not in info.job_parameters)
        params = {n: d for n, d in params.items() if n in info.job_parameters}
    return Declarations(info.job_id, info.name, params, tuple(unreadable), fixed, info.uses_job_parameters)


# -- parsing --------------------------------------------------------------------------------------

_CALL = re.compile(r"\bdbutils\s*\.\s*widgets\s*\.\s*(text|dropdown|combobox|multiselect|get)\s*\(")
_GET_ARGUMENT = re.compile(r"\bgetArgument\s*\(")
_MAGIC = re.compile(r"^\s*(#|--|//)\s*MAGIC ?")
_COMMENT = re.compile(r"^\s*(#|--|//)")
_SQL_WIDGET = re.compile(
    r"\bCREATE\s+WIDGET\s+(TEXT|DROPDOWN|COMBOBOX|MULTISELECT)\s+(`[^`]+`|[\w.]+)"
    r"(?:\s+DEFAULT\s+('(?:[^'\\]|\\.){0,500}'|\"(?:[^\"\\]|\\.){0,500}\"))?"
    r"(?:\s+CHOICES\s+(.*?))?(?=;|\bCREATE\s+WIDGET\b|\Z)",
    re.IGNORECASE | re.DOTALL,
)
# a quoted string, or what lies between (an escape outside a string is passed over whole, so that
# no escaped quote starts a string: each quote is tried once, and the reading stays linear)
_SQL_STRING = re.compile(r"""'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|\\.|[^'"\\]+|.""", re.DOTALL)
_ARG_NAMES = {
    "text": ("name", "defaultValue", "label"),
    "combobox": ("name", "defaultValue", "choices", "label"),
    "dropdown": ("name", "defaultValue", "choices", "label"),
    "multiselect": ("name", "defaultValue", "choices", "label"),
    "get": ("name",),
}


def _code_lines(source: str) -> str:
    """The source without comment lines; ``MAGIC`` lines (other languages' cells) kept as code."""
    lines = []
    for line in source.splitlines():
        magic = _MAGIC.match(line)
        if magic:
            lines.append(line[magic.end() :])
        elif not _COMMENT.match(line):
            lines.append(line)
    return "\n".join(lines)


_BRACKETS = re.compile(r"""[][(){}"']""")
_STRING_ENDS = {  # from just after an opening quote to just after its closing one (escapes skipped)
    '"': re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL),
    "'": re.compile(r"[^'\\]*(?:\\.[^'\\]*)*'", re.DOTALL),
    '"""': re.compile(r'[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""', re.DOTALL),
    "'''": re.compile(r"[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''", re.DOTALL),
}
MAX_ARGUMENTS = 4_000
"""Characters of a widget call's arguments read at most: a longer call is not a literal declaration."""
_BUDGET = 4  # steps (a bracket, 16 characters of a string, a character parsed) per character of source


class _Unread(Exception):
    """The source is beyond what the parser reads in its bounds."""


class _Brackets:
    """Where each opening bracket of a source closes, found in time linear in the source.

    A scan starts fresh (outside any string) just after a call's ``(``; a bracket nested in it is
    a scan of its own, remembered, so no stretch of the source is scanned again for a later call
    that starts there. A budget of steps bounds what is left (strings that change the reading).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.closes: dict[int, int | None] = {}
        self.steps = _BUDGET * len(text) + 20_000

    def close(self, start: int) -> int | None:
        """The index of the bracket closing the one just before ``start``; None when unclosed."""
        if start not in self.closes:
            self._scan(start)
        return self.closes[start]

    def spend(self, steps: int) -> None:
        """Count ``steps`` against the budget; past it, the source is not read further."""
        self.steps -= steps
        if self.steps < 0:
            raise _Unread

    def _scan(self, start: int) -> None:
        text, stack, i = self.text, [start], start
        while stack:
            self.spend(1)
            found = _BRACKETS.search(text, i)
            if found is None:
                break
            j, ch = found.start(), found.group()
            if ch in "\"'":
                quote = text[j : j + 3] if text.startswith(ch * 3, j) else ch
                end = _STRING_ENDS[quote].match(text, j + len(quote))
                self.spend(((end.end() if end else len(text)) - j) // 16)
                if end is None:
                    break
                i = end.end()
            elif ch in "([{":
                known = self.closes.get(j + 1, -1)
                if known is None:
                    break
                if known == -1:
                    stack.append(j + 1)
                    i = j + 1
                else:
                    i = known + 1
            else:
                self.closes[stack.pop()] = j
                i = j + 1
        for unclosed in stack:
            self.closes[unclosed] = None


def _literal(node: ast.expr | None) -> Any:
    """A literal's value; Scala's ``Seq(...)``/``List(...)`` and R's ``c(...)`` as lists; else None."""
    if node is None:
        return None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {
        "Seq", "List", "Array", "c", "list", "tuple",
    }:  # fmt: skip
        items = [_literal(a) for a in node.args]
        return items if all(isinstance(i, str) for i in items) else None
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        return None


def _call(kind: str, args: str) -> tuple[Declared | None, bool]:
    """One ``dbutils.widgets.<kind>(args)``: the declaration, and whether its name is unknown."""
    if len(args) > MAX_ARGUMENTS:
        return None, True
    try:
        call = ast.parse(f"f({args})", mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: a NUL in the source
        return None, True
    assert isinstance(call, ast.Call)
    names = _ARG_NAMES[kind]
    given: dict[str, ast.expr] = dict(zip(names, call.args, strict=False))
    given.update({k.arg: k.value for k in call.keywords if k.arg})
    name = _literal(given.get("name"))
    if not isinstance(name, str) or not name:
        return None, True
    if kind == "get":
        return Declared(name), False
    default = _literal(given.get("defaultValue") or given.get("default_value"))
    choices = _literal(given.get("choices"))
    label = _literal(given.get("label"))
    return (
        Declared(
            name,
            kind,
            default=str(default) if isinstance(default, str | int | float) else None,
            choices=tuple(str(c) for c in choices) if isinstance(choices, list | tuple) else None,
            label=label if isinstance(label, str) else None,
        ),
        False,
    )


def _sql_widgets(code: str) -> Iterator[Declared]:
    for match in _SQL_WIDGET.finditer(code):
        kind, name, default, choices = match.groups()
        strings = [
            m.group(1) or m.group(2) or ""
            for m in _SQL_STRING.finditer(choices or "")
            if m.group(1) is not None or m.group(2) is not None
        ]
        yield Declared(
            name.strip("`"),
            kind.lower(),
            default=default[1:-1] if default else None,
            # Choices from a query of a table are only known at run time.
            choices=tuple(strings) if strings and re.search(r"\bVALUES\b", choices or "", re.I) else None,
        )


def parse_widgets(source: str) -> tuple[list[Declared], bool]:
    """The widgets a notebook source declares (Python, Scala, R and SQL forms), read, never run.

    ``dbutils.widgets.get("name")`` and ``getArgument("name")`` count as declaring a text parameter
    (a notebook that reads a name takes it). The reading takes time linear in the source's size and
    never raises; a source is parsed once (the same text again is answered from a cache).

    Returns:
        The declarations in source order (one per name, widget kinds winning over reads), and True
        when some call names its widget with a value computed at run time, or some part of the
        source was beyond what the parser reads (the job may then take more than is found).
    """
    found, unsure = parse_source(source)
    return list(found), unsure


@functools.lru_cache(maxsize=64)
def parse_source(source: str) -> tuple[tuple[Declared, ...], bool]:
    """:func:`parse_widgets`' answer as tuples, cached: a source is parsed once per revision (its
    text), however many launches read it (``parse_source.cache_info()`` counts)."""
    code = _code_lines(source)
    found: dict[str, Declared] = {}
    unsure = False
    calls = [(m.group(1), m.end()) for m in _CALL.finditer(code)]
    calls += [("get", m.end()) for m in _GET_ARGUMENT.finditer(code)]
    brackets = _Brackets(code)
    try:
        for kind, start in sorted(calls, key=lambda c: c[1]):
            close = brackets.close(start)
            brackets.spend(min(close - start, MAX_ARGUMENTS) if close is not None else 0)
            item, unknown = _call(kind, code[start:close]) if close is not None else (None, True)
            unsure = unsure or (unknown and kind != "get")
            if item is not None:
                _add(found, item)
    except _Unread:
        unsure = True
    for item in _sql_widgets(code):
        _add(found, item)
    return tuple(found.values()), unsure
