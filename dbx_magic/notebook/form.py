"""The run form: pick a job, edit its parameters, Run; progress below; the result in the namespace.

The run goes on in a worker thread, so the kernel stays free: the form's own Cancel button and the
progress widget's get their clicks at once (a busy cell would get none). The form never holds a
credential: executed notebooks save every widget's state in plain text.
"""

from __future__ import annotations

import argparse
import html
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as widgets

from ..api.client import DatabricksClient
from ..errors import MAY_HAVE_STARTED, NOTEBOOK, DatabricksError, InvalidInput, RunInterrupted, WaitTimeout
from ..run.launch import Launch, job_info
from ..run.models import RunResult
from ..run.watch import WatchedRun, run_launch
from .args import out_name
from .faces import show_end
from .session import NotebookSession
from .widgets import ProgressWidget

__all__ = ["ParamRow", "RunForm"]


class ParamRow:
    """One parameter of the form: a name field, a value field and a remove button."""

    def __init__(self, form: RunForm, name: str = "", value: str = "") -> None:
        self.name = widgets.Text(value=name, placeholder="name", layout=widgets.Layout(width="30%"))
        self.name.add_class("dbx-param-name")
        self.value = widgets.Text(value=value, placeholder="value", layout=widgets.Layout(width="55%"))
        self.value.add_class("dbx-param-value")
        self.remove = widgets.Button(
            description="", icon="trash", tooltip="remove", layout=widgets.Layout(width="40px")
        )
        self.remove.add_class("dbx-param-remove")
        self.remove.on_click(lambda _b: form.remove_row(self))
        self.box = widgets.HBox([self.name, self.value, self.remove])
        self.box.add_class("dbx-param-row")


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
            session = NotebookSession(namespace, clock=session.clock)
        self.session = session
        self.client = client or session.client()
        self.result: RunResult | None = None
        self.error: BaseException | None = None
        self.watched: WatchedRun | None = None
        self._done = threading.Event()
        self._done.set()
        self._thread: threading.Thread | None = None
        self.rows: list[ParamRow] = []
        self.progress: ProgressWidget | None = None

        style = {"description_width": "130px"}
        self.job = widgets.Combobox(
            placeholder="a job name or id", description="Job", ensure_option=False, style=style
        )
        self.job.add_class("dbx-form-job")
        self.params = widgets.VBox([])
        self.params.add_class("dbx-form-params")
        self.add_button = widgets.Button(description="Add parameter", icon="plus")
        self.add_button.add_class("dbx-form-add")
        self.add_button.on_click(lambda _b: self.add_row())
        self.token = widgets.Text(
            description="Idempotency token", placeholder="optional: one is made for you", style=style
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
        self.out = widgets.Text(value=out, description="Result variable", style=style)
        self.out.add_class("dbx-form-out")
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.run_button.add_class("dbx-form-run")
        self.run_button.on_click(lambda _b: self.run())
        self.cancel_button = widgets.Button(
            description="Cancel", button_style="danger", icon="stop", disabled=True
        )
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
                self.add_button,
                self.token,
                self.if_running,
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

    # -- display --------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"RunForm(job={self.job.value!r}, out={self.out.value!r})"

    # -- parameters -----------------------------------------------------------------------------
    def add_row(self, name: str = "", value: str = "") -> ParamRow:
        """Add a parameter row (what "Add parameter" does) and return it."""
        row = ParamRow(self, name, value)
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
            name, value = row.name.value.strip(), row.value.value
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
                self.session.refuse_secrets(row.value.value, flags=False)
            except InvalidInput as exc:
                row.value.value = ""  # out of the widget state the notebook saves, too
                raise InvalidInput(
                    f"{exc.message.rstrip('.')} (the value of {row.name.value.strip() or 'a row'!r} was cleared)."
                ) from None
        return params

    def _on_job(self, change: dict[str, Any]) -> None:
        text = str(change.get("new") or "").strip()
        if not text or not (text.isdigit() or text in self.job.options or text.lower().startswith("name:")):
            return
        try:
            info = job_info(self.client, self._job_ref(text))
        except DatabricksError as exc:
            self._say(str(exc), "danger")
            return
        self.set_params(info.defaults)
        kind = "job parameters" if info.uses_job_parameters else "notebook parameters"
        self._say(
            f"Job {info.job_id} ({info.name or 'unnamed'}): {len(info.defaults)} {kind}, pre-filled with their defaults.",
            "info",
        )

    def _job_ref(self, text: str) -> str:
        """What the job field names: a name picked from the list is a name, even one of digits."""
        text = text.strip()
        return f"name:{text}" if text in self.job.options and text.lstrip("+-").isdigit() else text

    # -- running --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not self._done.is_set()

    @property
    def run_id(self) -> int | None:
        """The id of the run the form launched last (None before its launch returned)."""
        return None if self.watched is None else self.watched.run_id

    def run(self) -> None:
        """Launch the selected job with the form's parameters, as the Run button does.

        Returns at once; the run is watched in a worker thread. Mistakes show in the form (and in
        ``form.error``) before anything is sent.
        """
        if self.running:
            self._say(f"Run {self.run_id or ''} is still going: wait for it or cancel it first.", "warning")
            return
        try:
            params = self.get_params()
            out = out_name(self.out.value)
            spec = Launch.check(
                self._job_ref(self.job.value),
                params,
                idempotency_token=self.token.value.strip() or None,
                if_running=self.if_running.value,
            )
        except (InvalidInput, argparse.ArgumentTypeError) as exc:
            self.error = exc
            self._say(str(exc), "danger")
            return
        self._begin(
            lambda progress: run_launch(
                self.client, spec, on_update=progress, on_watch=self._attach, on_notice=self._notice
            ),
            out,
            f"Launching {spec.job}…",
        )

    def repair(self, tasks: str | Iterable[str] | None = None) -> None:
        """Repair the form's last run, as its Repair button does: rerun its failed tasks and the tasks
        after them (or ``tasks``) with the form's parameters; watched like a run, in a worker thread."""
        from ..run.repair import Repair, run_repair

        if self.running:
            self._say(f"Run {self.run_id or ''} is still going: wait for it or cancel it first.", "warning")
            return
        try:
            if self.result is None:
                raise InvalidInput("There is no run to repair yet: click Run first.")
            out = out_name(self.out.value)
            spec = Repair.check(self.result, tasks, notebook_params=self.get_params())
        except (InvalidInput, argparse.ArgumentTypeError) as exc:
            self.error = exc
            self._say(str(exc), "danger")
            return
        self._begin(
            lambda progress: run_repair(self.client, spec, on_update=progress, on_watch=self._attach),
            out,
            f"Repairing run {spec.run_id}…",
        )

    def _begin(self, call: Callable[[ProgressWidget], RunResult], out: str, text: str) -> None:
        self.error, self.result, self.watched = None, None, None
        self.progress = ProgressWidget(cancel=self.cancel, repair=self.repair)
        self.progress_box.children = (self.progress.widget,)
        self._done.clear()
        self.run_button.disabled = True
        self._say(text, "info")
        self._thread = threading.Thread(
            target=self._work, args=(call, out, self.progress), name="dbx-form-run", daemon=True
        )
        self._thread.start()

    def _attach(self, watched: WatchedRun) -> None:
        self.watched = watched
        self.cancel_button.disabled = False

    def _work(self, call: Callable[[ProgressWidget], RunResult], out: str, progress: ProgressWidget) -> None:
        try:
            result = self.session.settle(out, lambda: call(progress))
            self.result = result
            if result.ok:
                self._say(f"Run {result.run_id} {result.result_state}; the result is in `{out}`.", "success")
            else:
                self._say(f"The result is in `{out}`. {result.failure_summary()}", "danger")
        except (DatabricksError, RunInterrupted) as exc:
            show_end(progress, exc)
            self.error = exc
            self.result = exc.result
            if exc.follow_up == MAY_HAVE_STARTED and exc.idempotency_token:
                self.token.value = exc.idempotency_token  # Run again finds that run, starts no second one
            self._say(exc.render(NOTEBOOK), "danger")
        except Exception as exc:  # shown in the form, never lost in a thread
            self.error = exc
            self._say(f"Unexpected error ({type(exc).__name__}: {exc}); please report it.", "danger")
        finally:
            progress.close()
            self.run_button.disabled = False
            self.cancel_button.disabled = True
            self._done.set()

    def cancel(self) -> None:
        """Cancel the run the form launched (asynchronous: the progress shows it end)."""
        watched = self.watched
        if watched is None or not self.running:
            self._say("There is no run going to cancel.", "warning")
            return
        try:
            watched.cancel()  # also wakes the poller, which may be in a long sleep
        except DatabricksError as exc:
            self._say(f"Cancelling run {watched.run_id} failed: {exc}", "danger")
            return
        self.cancel_button.disabled = True
        self._say(f"Asked the workspace to cancel run {watched.run_id}…", "warning")

    def wait(self, timeout: float | None = None) -> RunResult:
        """Wait for the form's run to finish and return its RunResult.

        Raises:
            WaitTimeout: still going after ``timeout`` seconds (the run goes on).
            InvalidInput: nothing was run.
            DatabricksError: the launch failed (the message says why).
        """
        if not self._done.wait(timeout):
            raise WaitTimeout(
                f"The form's run {self.run_id or ''} is still going after {timeout:g} s: call form.wait() "
                "again, or cancel it.",
                run_id=self.run_id,
            )
        if self.result is not None:
            return self.result
        if self.error is not None:
            raise self.error
        raise InvalidInput("Nothing was run yet: click Run (or call form.run()) first.")

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


def _notebook_namespace() -> dict[str, Any]:
    """The running notebook's namespace, or a fresh dict outside IPython."""
    from IPython import get_ipython

    shell = get_ipython()
    return {} if shell is None else shell.user_ns
