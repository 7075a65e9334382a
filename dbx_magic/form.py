"""The run form: pick a job, edit its parameters, Run; progress below; the result in the namespace.

The run goes on in a worker thread, so the kernel stays free: the form's own Cancel button and the
progress widget's get their clicks at once (a busy cell would get none). The form never holds a
credential: executed notebooks save every widget's state in plain text.
"""

from __future__ import annotations

import html
import keyword
import threading
from typing import Any

import ipywidgets as widgets

from .client import DatabricksClient
from .errors import DatabricksError, InvalidInput, WaitTimeout
from .models import RunResult
from .params import normalise_params
from .widgets import ProgressWidget
from .workflow import JobInfo, resolve_job, run_job_and_wait

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
        client: The workspace client (default: the one the magics use, e.g. the sandbox's after
            ``%dbx_sandbox``, else the configuration).
        job: A job id or name to pre-select.
        out: The variable the RunResult goes into.
        namespace: Where the result is published (default: the running notebook's namespace).

    ``form.run()`` does what the Run button does; ``form.wait(timeout=None)`` returns the RunResult.
    """

    def __init__(
        self,
        client: DatabricksClient | None = None,
        job: int | str | None = None,
        out: str = "dbx_result",
        *,
        namespace: dict[str, Any] | None = None,
    ) -> None:
        if client is None:
            from .magics import current_client

            client = current_client()
        self.client = client
        self._namespace = namespace
        self.result: RunResult | None = None
        self.error: BaseException | None = None
        self.run_id: int | None = None
        self._done = threading.Event()
        self._done.set()
        self._wake = threading.Event()
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
                self.out,
                widgets.HBox([self.run_button, self.cancel_button]),
                self.status,
                self.progress_box,
            ]
        )
        self.widget.add_class("dbx-form")

        try:
            names = sorted({str((j.get("settings") or {}).get("name")) for j in client.list_jobs()})
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
            InvalidInput: a row with a value but no name, or a name given twice.
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
        return normalise_params(params)

    def _on_job(self, change: dict[str, Any]) -> None:
        text = str(change.get("new") or "").strip()
        if not text or not (text.isdigit() or text in self.job.options):
            return
        try:
            job_id = resolve_job(self.client, text)
            info = JobInfo(job_id, self.client.get_job(job_id))
        except DatabricksError as exc:
            self._say(str(exc), "danger")
            return
        self.set_params(info.defaults)
        kind = "job parameters" if info.uses_job_parameters else "notebook parameters"
        self._say(
            f"Job {job_id} ({info.name or 'unnamed'}): {len(info.defaults)} {kind}, pre-filled with their defaults.",
            "info",
        )

    # -- running --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def run(self) -> None:
        """Launch the selected job with the form's parameters, as the Run button does.

        Returns at once; the run is watched in a worker thread. Mistakes show in the form (and in
        ``form.error``) before anything is sent.
        """
        if self.running:
            self._say(f"Run {self.run_id or ''} is still going: wait for it or cancel it first.", "warning")
            return
        try:
            job = self.job.value.strip()
            if not job:
                raise InvalidInput("No job is selected: pick one from the list or type its id or name.")
            params = self.get_params()
            out = self.out.value.strip()
            if not out.isidentifier() or keyword.iskeyword(out):
                raise InvalidInput(
                    f"The result variable {out!r} is not a valid Python name: use e.g. result."
                )
            token = self.token.value.strip() or None
        except InvalidInput as exc:
            self.error = exc
            self._say(str(exc), "danger")
            return
        self.error, self.result, self.run_id = None, None, None
        self.progress = ProgressWidget(cancel=self.cancel)
        self.progress_box.children = (self.progress.widget,)
        self._done.clear()
        self.run_button.disabled = True
        self._say(f"Launching {job}…", "info")
        self._thread = threading.Thread(
            target=self._work, args=(job, params, token, out, self.progress), name="dbx-form-run", daemon=True
        )
        self._thread.start()

    def _work(
        self, job: str, params: dict[str, str], token: str | None, out: str, progress: ProgressWidget
    ) -> None:
        def on_update(result: RunResult) -> None:
            if self.run_id is None:
                self.run_id = result.run_id
                self.cancel_button.disabled = False
            progress(result)

        try:
            result = run_job_and_wait(
                self.client, job, params, idempotency_token=token, on_update=on_update, sleep=self._sleep
            )
            self._finish(result, out)
        except DatabricksError as exc:
            self.error = exc
            if exc.result is not None:
                self._finish(exc.result, out, quiet=True)
            self._say(str(exc), "danger")
        except Exception as exc:  # shown in the form, never lost in a thread
            self.error = exc
            self._say(f"Unexpected error ({type(exc).__name__}: {exc}); please report it.", "danger")
        finally:
            progress.close()
            self.run_button.disabled = False
            self.cancel_button.disabled = True
            self._done.set()

    def _finish(self, result: RunResult, out: str, quiet: bool = False) -> None:
        self.result = result
        self._ns()[out] = result
        if quiet:
            return
        if result.ok:
            self._say(f"Run {result.run_id} {result.result_state}; the result is in `{out}`.", "success")
        else:
            self._say(f"The result is in `{out}`. {result.failure_summary()}", "danger")

    def cancel(self) -> None:
        """Cancel the run the form launched (asynchronous: the progress shows it end)."""
        if self.run_id is None or not self.running:
            self._say("There is no run going to cancel.", "warning")
            return
        try:
            self.client.cancel_run(self.run_id)
        except DatabricksError as exc:
            self._say(f"Cancelling run {self.run_id} failed: {exc}", "danger")
            return
        self.cancel_button.disabled = True
        self._say(f"Asked the workspace to cancel run {self.run_id}…", "warning")
        self._wake.set()  # poll now: the poller may be in a long sleep while the end looked far

    def _sleep(self, seconds: float) -> None:
        """The poller's sleep, cut short when Cancel is clicked."""
        if self._wake.wait(seconds):
            self._wake.clear()

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
    def _ns(self) -> dict[str, Any]:
        if self._namespace is not None:
            return self._namespace
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            self._namespace = {}
            return self._namespace
        return shell.user_ns

    def _say(self, text: str, level: str) -> None:
        colours = {"info": "#1565c0", "success": "#2e7d32", "danger": "#c62828", "warning": "#ef6c00"}
        self.status.value = (
            f'<div class="dbx-form-{level}" style="color:{colours[level]}">{html.escape(text)}</div>'
        )
