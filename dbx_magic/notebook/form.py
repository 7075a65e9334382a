"""The run form: pick a job, edit its parameters, Run; progress below; the result in the namespace.

The run goes on in a worker thread, so the kernel stays free: the form's own Cancel button and the
progress widget's get their clicks at once (a busy cell would get none). The form never holds a
credential: executed notebooks save every widget's state in plain text.
"""

from __future__ import annotations

import argparse
import datetime
import html
import re
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..api.client import DatabricksClient
from ..errors import MAY_HAVE_STARTED, NOTEBOOK, DatabricksError, InvalidInput, RunInterrupted, WaitTimeout
from ..run.checks import digits
from ..run.declared import Declarations, Declared
from ..run.launch import Launch, job_info
from ..run.models import RunResult
from .args import check_out_name
from .faces import show_end
from .session import NotebookSession
from .widgets import ProgressWidget

if TYPE_CHECKING:
    from ..run.engine import RunHandle

__all__ = ["ParamRow", "RunForm"]
_OUT = "The result variable"  # how messages name the form's output name


class ParamRow:
    """One parameter of the form: its name, a value input of the kind the job declares, a note
    (its default, whether the value was changed from it, or that the job does not declare the name)
    and a remove button.

    The value input follows the declaration: a checkbox for a true/false dropdown, a dropdown or a
    combobox with the declared choices, a multi-select for a multiselect widget, a date picker for a
    text parameter whose default is a date (``YYYY-MM-DD``), a text field otherwise. :meth:`text`
    reads it back as the string the job takes.
    """

    def __init__(
        self, form: RunForm, name: str = "", value: str = "", declared: Declared | None = None
    ) -> None:
        self.form = form
        self.declared = declared
        self.name = widgets.Text(value=name, placeholder="name", layout=widgets.Layout(width="30%"))
        self.name.add_class("dbx-param-name")
        # A declared name is fixed (remove the row instead), so it shows as a label, with the widget's.
        label = f" <small>{html.escape(declared.label)}</small>" if declared and declared.label else ""
        shown = widgets.HTML(
            value=f"<b>{html.escape(name)}</b>{label}",
            layout=widgets.Layout(width="30%"),
            tooltip=f"{declared.kind} declared in {'; '.join(declared.where)}" if declared else None,
        )
        shown.add_class("dbx-param-label")
        self.value = _value_input(declared, value)
        self.value.add_class("dbx-param-value")
        self.value.add_class(f"dbx-param-{_input_kind(self.value)}")
        self.note = widgets.HTML(value="", layout=widgets.Layout(width="auto", flex="1 0 auto"))
        self.note.add_class("dbx-param-note")
        self.remove = widgets.Button(
            description="", icon="trash", tooltip="remove", layout=widgets.Layout(width="40px")
        )
        self.remove.add_class("dbx-param-remove")
        self.remove.on_click(lambda _b: form.remove_row(self))
        head = shown if declared is not None else self.name
        self.box = widgets.HBox([head, self.value, self.remove, self.note])
        self.box.add_class("dbx-param-row")
        self.value.observe(lambda _c: self.mark(), names="value")
        self.name.observe(lambda _c: self.mark(), names="value")
        self.mark()

    def text(self) -> str:
        """The value as the job takes it: ``true``/``false``, ``YYYY-MM-DD``, comma-separated items."""
        widget = self.value
        if isinstance(widget, widgets.Checkbox):
            choices = self.declared.choices if self.declared and self.declared.choices else ("true", "false")
            wanted = "true" if widget.value else "false"
            return next((c for c in choices if c.lower() == wanted), wanted)
        if isinstance(widget, widgets.DatePicker):
            return widget.value.isoformat() if widget.value else ""
        if isinstance(widget, widgets.SelectMultiple):
            return ",".join(widget.value)
        return "" if widget.value is None else str(widget.value)

    @property
    def changed(self) -> bool:
        """True when the value differs from the declared default."""
        return self.declared is not None and self.text() != (self.declared.default or "")

    def mark(self) -> None:
        """Show the default and whether the value was changed from it, or that the name is unknown."""
        declared = self.declared
        self.box.remove_class("dbx-param-changed")
        if declared is not None:
            default = html.escape(declared.default or '""')
            if self.changed:
                self.box.add_class("dbx-param-changed")
                self.note.value = f'<span style="color:#ef6c00;white-space:nowrap">&#9679; changed <small>(default {default})</small></span>'
            else:
                self.note.value = '<small style="color:#757575">default</small>'
            return
        self.note.value = self._unknown_note()

    def _unknown_note(self) -> str:
        declarations = self.form.declarations
        name = self.name.value.strip()
        if declarations is None or not name or name in declarations:
            return ""
        close = declarations.close(name)
        hint = f": did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        where = "" if declarations.complete else " where its notebooks could be read"
        return f'<small style="color:#c62828">not declared by the job{html.escape(where + hint)}</small>'


def _input_kind(widget: widgets.Widget) -> str:
    return {
        widgets.Checkbox: "flag",
        widgets.DatePicker: "date",
        widgets.Dropdown: "dropdown",
        widgets.Combobox: "combobox",
        widgets.SelectMultiple: "multiselect",
    }.get(type(widget), "text")


def _value_input(declared: Declared | None, value: str) -> widgets.Widget:
    """The input for a parameter of this declaration, holding ``value``."""
    layout = widgets.Layout(width="55%")
    tip = f"default: {declared.default}" if declared is not None and declared.default is not None else ""
    choices = tuple(declared.choices or ()) if declared is not None else ()
    if declared is not None and declared.is_flag and value.lower() in ("true", "false"):
        return widgets.Checkbox(
            value=value.lower() == "true", indent=False, description="", tooltip=tip, layout=layout
        )
    if declared is not None and declared.kind == "dropdown" and choices:
        options = choices if value in choices else (*choices, value)
        return widgets.Dropdown(options=options, value=value, layout=layout, tooltip=tip)
    if declared is not None and declared.kind == "multiselect" and choices:
        items = [i.strip() for i in value.split(",") if i.strip()]
        options = (*choices, *(i for i in items if i not in choices))
        return widgets.SelectMultiple(
            options=options, value=tuple(items), rows=min(4, len(options)), layout=layout, tooltip=tip
        )
    if declared is not None and declared.kind == "combobox":
        return widgets.Combobox(
            options=choices, value=value, ensure_option=False, placeholder=tip, layout=layout
        )
    if declared is not None and declared.is_date:
        day = _date(value)
        if day is not None or not value:
            return widgets.DatePicker(value=day, layout=layout, tooltip=tip)
    return widgets.Text(value=value, placeholder=tip or "value", layout=layout)


def _date(text: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


class RunForm:
    """A form that launches a job and shows its progress without freezing the kernel.

    Args:
        client: The workspace client (default: the session's, else one from the configuration:
            ``%dbx_form`` gives the form the magics' session, so after ``%dbx_sandbox`` it runs the
            sandbox's jobs).
        job: A job id or name to pre-select.
        out: The variable the RunResult goes into.
        namespace: Where the result is published (default: the session's, else the running
            notebook's namespace).
        session: The notebook session the form shares with the magics (its clients, its secrets).

    ``form.run()`` does what the Run button does; ``form.wait(timeout=None)`` returns the RunResult.
    A run that did not succeed offers Repair on its progress widget: ``form.repair()`` reruns its
    failed tasks and the tasks after them, with the form's parameters, and publishes the repaired run.
    """

    def __init__(
        self,
        client: DatabricksClient | None = None,
        job: int | str | None = None,
        out: str = "dbx_result",
        *,
        namespace: dict[str, Any] | None = None,
        session: NotebookSession | None = None,
    ) -> None:
        if session is None:
            session = NotebookSession(namespace if namespace is not None else _notebook_namespace())
        elif namespace is not None:
            session = NotebookSession(namespace, clock=session.clock, policy=session.policy)
        self.session = session
        self._client = client  # None: the session's current one (after %dbx_sandbox, the new sandbox's)
        self.result: RunResult | None = None
        self.error: BaseException | None = None
        self.handle: RunHandle | None = None
        """The run the form launched last (a repair is a new round of it)."""
        self._starting: threading.Thread | None = None  # sends the launch or the repair, then ends
        self._listening: Callable[[RunResult], None] | None = None
        self.rows: list[ParamRow] = []
        self.declarations: Declarations | None = None
        self.progress: ProgressWidget | None = None

        style = {"description_width": "130px"}
        self.job = widgets.Combobox(
            placeholder="a job name or id",
            description="Job",
            ensure_option=False,
            continuous_update=False,  # judged when typed in (Enter or leaving the field), not per key
            style=style,
        )
        self.job.add_class("dbx-form-job")
        self.params = widgets.VBox([])
        self.params.add_class("dbx-form-params")
        self.add_button = widgets.Button(description="Add parameter", icon="plus")
        self.add_button.add_class("dbx-form-add")
        self.add_button.on_click(lambda _b: self.add_row())
        self.allow_unknown = widgets.Checkbox(
            value=False,
            indent=False,
            description="Allow unknown parameters (send names the job does not declare)",
            layout=widgets.Layout(width="auto"),
        )
        self.allow_unknown.add_class("dbx-form-allow-unknown")
        self.token = widgets.Text(
            description="Idempotency token",
            placeholder="optional: one is made for you",
            style=style,
            layout=widgets.Layout(width="480px"),  # the placeholder whole
        )
        self.token.add_class("dbx-form-token")
        self.if_running = widgets.Dropdown(
            options=[
                ("start another run", "new"),
                ("watch the run going", "wait"),
                ("cancel it, then run", "cancel"),
            ],
            value="new",
            description="If running",
            style=style,
        )
        self.if_running.add_class("dbx-form-if-running")
        self.performance = widgets.Dropdown(
            options=[
                ("the job's own", ""),
                ("standard", "STANDARD"),
                ("performance optimized", "PERFORMANCE_OPTIMIZED"),
            ],
            value="",
            description="Performance",
            tooltip="serverless jobs: cost first (standard) or speed first",
            style=style,
        )
        self.performance.add_class("dbx-form-performance")
        self.out = widgets.Text(value=out, description="Result variable", style=style)
        self.out.add_class("dbx-form-out")
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.run_button.add_class("dbx-form-run")
        self.run_button.on_click(lambda _b: self.run())
        # Not red: the progress widget below has the red "Cancel run"; one danger button is enough.
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", disabled=True)
        self.cancel_button.add_class("dbx-form-cancel")
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.status = widgets.HTML(value="")
        self.status.add_class("dbx-form-status")
        self.progress_box = widgets.VBox([])
        self.progress_box.add_class("dbx-form-progress")
        self.widget = widgets.VBox(
            [
                self.job,
                widgets.HTML("<b>Parameters</b>"),
                self.params,
                widgets.HBox([self.add_button, self.allow_unknown]),
                self.token,
                self.if_running,
                self.performance,
                self.out,
                widgets.HBox([self.run_button, self.cancel_button]),
                self.status,
                self.progress_box,
            ]
        )
        self.widget.add_class("dbx-form")

        try:
            names = sorted({str((j.get("settings") or {}).get("name")) for j in self.client.list_jobs()})
            self.job.options = tuple(names)
        except DatabricksError as exc:
            self._say(f"Could not list the workspace's jobs: {exc}", "danger")
        self.job.observe(self._on_job, names="value")
        if job is not None:
            self.job.value = str(job)

    @property
    def client(self) -> DatabricksClient:
        """The client the form runs with: the one it was given, else the session's current one, so a
        form shown before ``%dbx_sandbox`` was run again follows the new sandbox."""
        return self._client if self._client is not None else self.session.client()

    # -- display --------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        """Shown as a live output whose text says what the form did last; when the kernel stops, that
        sentence and how to show the form again (no dead button is left)."""
        from .live import show_widget

        show_widget(
            self.session.lives,
            self.widget,
            self.plain,
            "This form was live while its kernel ran: run `%dbx_form` again in a new kernel.",
        )

    def plain(self) -> str:
        """The form's state as a sentence (its ``text/plain``): the job, the name, its last run."""
        from .widgets import html_to_text

        said = html_to_text(self.status.value)
        last = self.progress.plain() if self.progress is not None else ""
        text = f"dbx-magic run form: job {self.job.value or '(none)'} into `{self.out.value}`"
        return "\n".join(x for x in (text, said, last) if x)

    def __repr__(self) -> str:
        return f"RunForm(job={self.job.value!r}, out={self.out.value!r})"

    # -- parameters -----------------------------------------------------------------------------
    def add_row(self, name: str = "", value: str = "") -> ParamRow:
        """Add a parameter row (what "Add parameter" does) and return it; a name the job declares
        gets the input of its kind."""
        declarations = self.declarations
        declared = declarations.params.get(name) if declarations is not None and name else None
        row = ParamRow(self, name, value, declared)
        self.rows.append(row)
        self.params.children = tuple(r.box for r in self.rows)
        return row

    def remove_row(self, row: ParamRow) -> None:
        """Remove a parameter row (what its remove button does)."""
        self.rows = [r for r in self.rows if r is not row]
        self.params.children = tuple(r.box for r in self.rows)

    def set_params(self, params: dict[str, Any]) -> None:
        """Replace the parameter rows with these names and values."""
        self.rows = []
        for name, value in params.items():
            self.add_row(str(name), str(value))
        if not self.rows:
            self.params.children = ()

    def get_params(self) -> dict[str, str]:
        """The parameters as typed (rows with an empty name and value are ignored).

        Raises:
            InvalidInput: a row with a value but no name, a name given twice, or a token in a value.
        """
        params: dict[str, str] = {}
        for number, row in enumerate(self.rows, start=1):
            name, value = row.name.value.strip(), row.text()
            if not name:
                if value.strip():
                    raise InvalidInput(
                        f"Parameter row {number} has a value but no name: name it or remove the row."
                    )
                continue
            if name in params:
                raise InvalidInput(f"The parameter {name!r} is given twice: keep one row.")
            params[name] = value
        self.session.secrets.update(self.client.secrets())  # a client given to the form, too
        for row in self.rows:
            try:
                self.session.refuse_secrets(row.text(), flags=False)
            except InvalidInput as exc:
                if isinstance(row.value.value, str):
                    row.value.value = ""  # out of the widget state the notebook saves, too
                raise InvalidInput(
                    f"{exc.message.rstrip('.')} (the value of {row.name.value.strip() or 'a row'!r} was cleared)."
                ) from None
        return params

    def _on_job(self, change: dict[str, Any]) -> None:
        text = str(change.get("new") or "").strip()
        if not text:
            return
        try:
            info = job_info(self.client, self._job_ref(text))
        except DatabricksError as exc:
            # an unknown job keeps nothing of the last one: its parameters would be sent to no job
            self.declarations = None
            self.set_params({})
            self._say(str(exc), "danger")
            return
        self.declarations = info.declared(self.client)
        self.set_params(_prefill(info, self.declarations))
        kind = "job parameters" if info.uses_job_parameters else "notebook parameters"
        self._say(
            f"Job {info.job_id} ({info.name or 'unnamed'}): {len(self.rows)} {kind}, pre-filled with their defaults.",
            "info",
        )

    def _job_ref(self, text: str) -> str:
        """What the job field names: a name picked from the list is a name, even one of digits."""
        text = text.strip()
        return f"name:{text}" if text in self.job.options and digits(text.lstrip("+-")) else text

    # -- running --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a launch or repair is being sent, or the form's run has not ended."""
        starting = self._starting is not None and self._starting.is_alive()
        return starting or (self.handle is not None and not self.handle.settled)

    @property
    def run_id(self) -> int | None:
        """The id of the run the form launched last (None before its launch returned)."""
        return None if self.handle is None else self.handle.run_id

    def run(self) -> None:
        """Launch the selected job with the form's parameters, as the Run button does.

        Returns at once: the launch is sent from a short-lived thread, and the run is then polled by
        the session's watcher (the form listens to it). Mistakes show in the form (and in
        ``form.error``) before anything is sent.
        """
        if self.running:
            self._say(f"Run {self.run_id or ''} is still going: wait for it or cancel it first.", "warning")
            return
        try:
            params = self.get_params()
            out = check_out_name(self.out.value.strip(), _OUT)
            spec = Launch.check(
                self._job_ref(self.job.value),
                params,
                idempotency_token=self.token.value.strip() or None,
                if_running=self.if_running.value,
                allow_unknown_params=self.allow_unknown.value,
                performance_target=self.performance.value or None,
            )
        except (InvalidInput, argparse.ArgumentTypeError) as exc:
            self.error = exc
            self._say(str(exc), "danger")
            return
        self._announce_here()
        self.handle = None
        self._begin(lambda: self._launch(spec, out), out, f"Launching {spec.job}…")

    def repair(self, tasks: str | Iterable[str] | None = None) -> None:
        """Repair the form's last run, as its Repair button does: rerun its failed tasks and the tasks
        after them (or ``tasks``) with the form's parameters; a new round of the same run."""
        from ..run.repair import Repair

        if self.running:
            self._say(f"Run {self.run_id or ''} is still going: wait for it or cancel it first.", "warning")
            return
        try:
            if self.handle is None or self.result is None:
                raise InvalidInput("There is no run to repair yet: click Run first.")
            out = check_out_name(self.out.value.strip(), _OUT)
            spec = Repair.check(
                self.result,
                tasks,
                notebook_params=self.get_params(),
                performance_target=self.performance.value or None,
            )
        except (InvalidInput, argparse.ArgumentTypeError) as exc:
            self.error = exc
            self._say(str(exc), "danger")
            return
        self._announce_here()
        handle = self.handle
        self._begin(lambda: handle.watcher.repair(handle, spec), out, f"Repairing run {spec.run_id}…")

    def _begin(self, start: Callable[[], RunHandle], out: str, text: str) -> None:
        """Show a fresh progress widget and send the launch (or repair) from a short-lived thread; the
        form then listens to the run's handle."""
        self.error, self.result = None, None
        if self.handle is not None and self._listening is not None:
            self.handle.remove_listener(self._listening)
        self.progress = ProgressWidget(cancel=self.cancel, repair=self.repair)
        self.progress_box.children = (self.progress.widget,)
        self.run_button.disabled = True
        self._say(text, "info")
        self._starting = threading.Thread(
            target=self._start, args=(start, out, self.progress), name="dbx-form-start", daemon=True
        )
        self._starting.start()

    def _announce_here(self) -> None:
        """Make the session's notice channel now, on the kernel's thread (in a notebook only: the
        form's own status says the end elsewhere)."""
        from IPython import get_ipython

        from .background import notices
        from .display import has_widget_frontend

        shell = get_ipython()
        if has_widget_frontend(shell):
            notices(self.session, shell)

    def _launch(self, spec: Launch, out: str) -> RunHandle:
        """Launch into the session's watcher (the run is on ``%dbx_runs``, its end published under
        ``out`` and announced)."""
        from .background import launch_in_session

        return launch_in_session(
            self.session, self.client, spec, None, out, source="form", on_notice=self._notice
        )

    def _start(self, start: Callable[[], RunHandle], out: str, progress: ProgressWidget) -> None:
        try:
            handle = self.session.settle(out, start)  # the name holds the handle until its end
        except (DatabricksError, RunInterrupted) as exc:
            self._failed(exc, progress)
            return
        except Exception as exc:  # shown in the form, never lost in a thread
            self.error = exc
            self._say(f"Unexpected error ({type(exc).__name__}: {exc}); please report it.", "danger")
            self._idle(progress)
            return
        from .background import own

        own(self.session, handle, out)
        self.handle = handle
        self.cancel_button.disabled = False
        self._listening = self._showing(progress, handle, out)
        handle.add_listener(self._listening)
        self._listening(handle.result)  # what is known already (a run that ended at once, say)

    def _showing(self, progress: ProgressWidget, handle: RunHandle, out: str) -> Callable[[RunResult], None]:
        """The form's listener: the progress widget, the status line as the state is now, and the end."""

        def update(result: RunResult) -> None:
            progress(result)
            if result.finished:
                self._ended(result, out, progress)
            elif handle.error is not None and handle.settled and self.error is not handle.error:
                self._failed(handle.error, progress)
            elif result.life_cycle_state:
                self._say(f"Run {result.run_id} is {result.life_cycle_state}…", "info")

        return update

    def _ended(self, result: RunResult, out: str, progress: ProgressWidget) -> None:
        if self.result is result:
            return  # said once
        self.result = result
        self.session.publish(out, result)
        if result.ok:
            self._say(f"Run {result.run_id} {result.result_state}; the result is in `{out}`.", "success")
        else:
            self._say(f"The result is in `{out}`. {result.failure_summary()}", "danger")
        self._idle(progress)

    def _failed(self, exc: DatabricksError | RunInterrupted, progress: ProgressWidget) -> None:
        show_end(progress, exc)
        self.error = exc
        self.result = exc.result
        if exc.follow_up == MAY_HAVE_STARTED and exc.idempotency_token:
            self.token.value = exc.idempotency_token  # Run again finds that run, starts no second one
        self._say(exc.render(NOTEBOOK), "danger")
        self._idle(progress)

    def _idle(self, progress: ProgressWidget) -> None:
        progress.close()
        self.run_button.disabled = False
        self.cancel_button.disabled = True

    def cancel(self) -> None:
        """Cancel the run the form launched (asynchronous: the progress shows it end)."""
        handle = self.handle
        if handle is None or not self.running:
            self._say("There is no run going to cancel.", "warning")
            return
        try:
            handle.cancel()
        except DatabricksError as exc:
            self._say(f"Cancelling run {handle.run_id} failed: {exc}", "danger")
            return
        self.cancel_button.disabled = True
        self._say(f"Asked the workspace to cancel run {handle.run_id}…", "warning")

    def wait(self, timeout: float | None = None) -> RunResult:
        """Wait for the form's run to finish and return its RunResult.

        Raises:
            WaitTimeout: still going after ``timeout`` seconds (the run goes on).
            InvalidInput: nothing was run.
            DatabricksError: the launch failed (the message says why).
        """
        starting = self._starting
        if starting is not None:
            starting.join(timeout)  # the launch is being sent (seconds at most)
            if starting.is_alive():
                raise WaitTimeout(
                    f"The form's launch is still being sent after {timeout:g} s: call form.wait() again.",
                )
        if self.handle is None:
            if self.error is not None:
                raise self.error
            raise InvalidInput("Nothing was run yet: click Run (or call form.run()) first.")
        try:
            result = self.handle.wait(timeout, raise_on_failure=False)
        except WaitTimeout:
            raise
        except DatabricksError as exc:  # the watching stopped: the form says why, the run as last seen stays
            if self.progress is not None and self.error is not exc:
                self._failed(exc, self.progress)
            if exc.result is None:
                raise
            return exc.result
        if self._listening is not None:
            self._listening(result)  # the end as the form says it, even if the listener has not run yet
        return result

    # -- helpers --------------------------------------------------------------------------------
    def _notice(self, text: str) -> None:
        self._say(text, "info")

    def _say(self, text: str, level: str) -> None:
        """Show one status line: `code` as code, links as links; dark text with a coloured mark, so a
        long message stays readable."""
        colours = {"info": "#1565c0", "success": "#2e7d32", "danger": "#c62828", "warning": "#ef6c00"}
        body = html.escape(text)
        body = re.sub(r"`([^`]+)`", r"<code>\1</code>", body)
        body = re.sub(
            r"(https?://[^\s<]+[^\s<.,;:)])",
            r'<a href="\1" target="_blank" rel="noopener" style="color:#1565c0;text-decoration:underline">\1</a>',
            body,
        )
        self.status.value = (
            f'<div class="dbx-form-{level}" style="border-left:4px solid {colours[level]};'
            f'padding-left:8px;color:inherit">{body}</div>'
        )


def _prefill(info: Any, declarations: Declarations) -> dict[str, str]:
    """The rows a job's form starts with: what ``%dbx_params`` lists and the launch check accepts (the
    job's declarations, one source), with their defaults; a notebook task's base parameters win."""
    if info.uses_job_parameters:
        return {**declarations.defaults, **info.job_parameters}
    return {**declarations.defaults, **info.notebook_parameters}


def _notebook_namespace() -> dict[str, Any]:
    """The running notebook's namespace, or a fresh dict outside IPython."""
    from IPython import get_ipython

    shell = get_ipython()
    return {} if shell is None else shell.user_ns
