"""The notebook face: ``%%dbx_run`` and its companions. Each magic parses, calls one function, publishes.

The RunResult goes into the namespace *before* anything is raised, so a failed, timed-out or
interrupted run is never lost; a run that did not succeed then fails the cell with one short message
(no stack trace), so "Run All" stops there.
"""

from __future__ import annotations

import contextlib
import keyword
import re
import string
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .client import DatabricksClient
from .config import Config
from .errors import DatabricksError, InvalidInput, RunInterrupted
from .models import RunResult
from .params import normalise_params, parse_param_lines
from .workflow import positive_id, run_job_and_wait, start_run, wait_for_run

__all__ = ["DbxMagics", "current_client", "load", "unload"]

_PAT = re.compile(r"\bdapi[0-9a-f]{32}(-\d+)?\b", re.IGNORECASE)
_TOKEN_FLAG = re.compile(r"(^|\s)--?(token|pat|password)\b|(^|\s)(token|password)\s*=", re.IGNORECASE)
_WHERE_TOKENS_GO = (
    "a token does not belong in a notebook (the notebook saves it): set DATABRICKS_TOKEN in the "
    "kernel's environment, or put it in a ~/.databrickscfg profile and pass --profile NAME."
)


class _StrictFormatter(string.Formatter):
    """``{name}`` from the namespace, as IPython expands ``!`` commands, but an unknown name is an error."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self._ns = namespace

    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:
        if isinstance(key, str) and key in self._ns:
            return self._ns[key]
        raise UsageError(
            f"The cell refers to {{{key}}}, which is not defined in the notebook: define it first, "
            "or write {{ and }} for literal braces."
        )


def _expand(text: str, namespace: Mapping[str, Any]) -> str:
    try:
        return _StrictFormatter(namespace).format(text)
    except UsageError:
        raise
    except (ValueError, IndexError, AttributeError, KeyError) as exc:
        raise UsageError(
            f"The cell's {{...}} expansion failed ({exc}): write {{{{ and }}}} for literal braces."
        ) from None


@magics_class
class DbxMagics(Magics):
    """``%%dbx_run``, ``%dbx_wait``, ``%dbx_cancel``, ``%dbx_sandbox`` and ``%dbx_form``."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.sandbox: Any = None
        self._sandbox_client: DatabricksClient | None = None
        self._sandbox_token: str | None = None
        # One client per resolved configuration, so a sign-in (an Azure CLI call, a token) is reused.
        self._clients: dict[Config, DatabricksClient] = {}

    # -- shared steps ---------------------------------------------------------------------------
    def client(self, profile: str | None = None) -> DatabricksClient:
        """The client the magics use: the sandbox's after ``%dbx_sandbox``, else the configuration."""
        if profile is None and self._sandbox_client is not None:
            return self._sandbox_client
        config = Config.resolve(profile=profile)
        if config not in self._clients:
            self._clients[config] = DatabricksClient.from_config(config=config)
        return self._clients[config]

    @property
    def _user_ns(self) -> dict[str, Any]:
        """The notebook's namespace (the shell is always set once the magics are registered)."""
        assert self.shell is not None
        return self.shell.user_ns

    def _publish(self, name: str, value: Any) -> None:
        self._user_ns[name] = value

    def _refuse_secrets(self, *texts: str | None) -> None:
        known = self._sandbox_token
        for text in texts:
            if not text:
                continue
            if _TOKEN_FLAG.search(text) or _PAT.search(text) or (known and known in text):
                raise UsageError(f"Refused: {_WHERE_TOKENS_GO}")

    def _watch(
        self,
        out: str,
        call: Callable[[Callable[[RunResult], Any]], RunResult],
        *,
        cancel_on_interrupt: bool = False,
    ) -> RunResult:
        """Run ``call`` with a progress display, publishing what it leaves behind, whatever happens."""
        from .display import progress_display

        progress = progress_display(self.shell, cancel_on_interrupt=cancel_on_interrupt)
        try:
            with _usage_errors():  # judged from the input (a job name that matches nothing, say)
                result = call(progress)
        except RunInterrupted as exc:
            if exc.result is not None:
                self._publish(out, exc.result)
                exc.message += f" The run as last seen is in `{out}`."
            if not exc.cancelled:  # the display stops with the waiting, saying so
                getattr(progress, "close", lambda note=None: None)(note=exc.message)
            raise
        except DatabricksError as exc:
            if exc.result is not None:
                self._publish(out, exc.result)
            raise
        finally:
            getattr(progress, "close", lambda: None)()
        self._publish(out, result)
        result.raise_for_state()
        return result

    # -- %%dbx_run -------------------------------------------------------------------------------
    @magic_arguments()
    @argument("job", help="the job id, or the job's name in quotes")
    @argument("--out", default="dbx_result", help="variable to put the RunResult in (default: dbx_result)")
    @argument(
        "--params", default=None, metavar="EXPR", help="a dict from the namespace; the cell's lines win"
    )
    @argument("--profile", default=None, help="~/.databrickscfg profile to use")
    @argument("--timeout", type=float, default=None, help="seconds to wait; the run goes on after")
    @argument("--no-wait", action="store_true", help="launch and return at once with the run id")
    @argument(
        "--idempotency-token",
        default=None,
        help="at most 64 characters; the same token never starts a second run",
    )
    @argument(
        "--cancel-on-interrupt", action="store_true", help="interrupting the kernel also cancels the run"
    )
    @argument(
        "--foreach",
        default=None,
        metavar="EXPR",
        help="a list of dicts from the namespace: one run each, merged over the cell's parameters",
    )
    @argument("--max-parallel", type=int, default=None, help="with --foreach: at most N runs at once")
    @line_cell_magic
    def dbx_run(self, line: str, cell: str | None = None) -> RunResult | list[RunResult] | None:
        """Run an existing Databricks job, watch it, and put the RunResult in the namespace.

        The cell holds the parameters, one ``name = value`` per line (``#`` comments; ``{name}``
        expands from the namespace) or a JSON object. A run that does not succeed fails the cell
        after its result is published. Interrupt the kernel to stop waiting (the run goes on:
        ``%dbx_wait RUN_ID`` re-attaches, ``%dbx_cancel RUN_ID`` cancels).

        Examples::

            %%dbx_run 123 --out res
            date  = 2026-11-01
            table = {catalog}.sales

            %dbx_run "nightly report" --no-wait

            %%dbx_run train-model --foreach grid --out runs
            epochs = 5
        """
        self._refuse_secrets(line, cell)
        args = _parse(self.dbx_run, line)
        out = _check_name(args.out)
        job = _strip_quotes(args.job)
        with _usage_errors():
            params = self._params(args.params, cell)
            if not _is_id(job) and not job.strip():
                raise InvalidInput("The job is empty: give a job id or a quoted job name.")
            if _is_id(job):
                positive_id(job, "job id")
            if args.timeout is not None and args.timeout <= 0:
                raise InvalidInput(
                    f"--timeout {args.timeout:g} is not positive: give seconds, e.g. --timeout 600."
                )
            sets = self._foreach(args.foreach, params) if args.foreach else None
            if args.max_parallel is not None and not sets:
                raise InvalidInput("--max-parallel goes with --foreach: add --foreach LIST, or leave it out.")
            if args.max_parallel is not None and args.max_parallel < 1:
                raise InvalidInput(
                    f"--max-parallel {args.max_parallel} is not at least 1: e.g. --max-parallel 4."
                )
            if sets is not None and args.no_wait:
                raise InvalidInput("--foreach waits for its runs: leave out --no-wait.")
        client = self.client(args.profile)
        if sets is not None:
            return self._sweep(out, client, job, sets, args)
        if args.no_wait:
            with _usage_errors():
                launched = start_run(client, job, params, idempotency_token=args.idempotency_token)
            self._publish(out, launched)
            print(
                f"Started run {launched.run_id} of {launched.job_name or job!r}; it is in `{out}`. "
                f"`%dbx_wait {launched.run_id}` watches it, `%dbx_cancel {launched.run_id}` cancels it."
            )
            return None
        return self._watch(
            out,
            lambda progress: run_job_and_wait(
                client,
                job,
                params,
                idempotency_token=args.idempotency_token,
                timeout=args.timeout,
                on_update=progress,
                cancel_on_interrupt=args.cancel_on_interrupt,
            ),
            cancel_on_interrupt=args.cancel_on_interrupt,
        )

    def _eval(self, flag: str, expr: str, wanted: str) -> Any:
        """Evaluate a flag's expression in the notebook's namespace (it is the user's own code)."""
        try:
            return eval(expr, self._user_ns)
        except Exception as exc:
            raise InvalidInput(
                f"{flag} {expr} could not be evaluated ({type(exc).__name__}: {exc}): pass {wanted} from the notebook."
            ) from None

    def _foreach(self, expr: str, params: dict[str, str]) -> list[dict[str, str]]:
        items = self._eval("--foreach", expr, "a list of dicts")
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
        return [normalise_params({**params, **item}) for item in items]

    def _sweep(
        self, out: str, client: DatabricksClient, job: str, sets: list[dict[str, str]], args: Any
    ) -> list[RunResult]:
        from .display import sweep_display
        from .sweep import SweepFailed, run_many

        progress = sweep_display(self.shell, sets)
        try:
            with _usage_errors():
                results = run_many(
                    client,
                    job,
                    sets,
                    max_parallel=args.max_parallel,
                    idempotency_token=args.idempotency_token,
                    timeout=args.timeout,
                    on_update=progress,
                    cancel_on_interrupt=args.cancel_on_interrupt,
                )
        except (RunInterrupted, DatabricksError) as exc:
            if exc.results is not None:
                self._publish(out, exc.results)
                exc.message = f"{exc.message.rstrip('.')}. Every run as last seen is in `{out}`."
                exc.args = (exc.message,)
            raise
        self._publish(out, results)
        failed = [(i, r) for i, r in enumerate(results) if not r.ok]
        if failed:
            index, first = failed[0]
            raise SweepFailed(
                f"{len(failed)} of {len(results)} runs did not succeed; the first: {first.failure_summary()} "
                f"(parameters #{index}: {', '.join(f'{k}={v}' for k, v in sets[index].items())}). "
                f"All results are in `{out}`.",
                results,
            )
        return results

    def _params(self, expr: str | None, cell: str | None) -> dict[str, str]:
        merged: dict[str, str] = {}
        if expr:
            value = self._eval("--params", expr, "a dict")
            if not isinstance(value, Mapping):
                raise InvalidInput(
                    f"--params {expr} is a {type(value).__name__}, not a dict: pass a dict of parameters."
                )
            merged.update(normalise_params(value))
        if cell and cell.strip():
            body = cell if cell.lstrip().startswith("{") else _expand(cell, self._user_ns)
            merged.update(parse_param_lines(body))
        return normalise_params(merged)

    # -- %dbx_wait, %dbx_cancel ------------------------------------------------------------------
    @magic_arguments()
    @argument("run_id", help="the run to watch")
    @argument("--out", default="dbx_result", help="variable to put the RunResult in")
    @argument("--profile", default=None)
    @argument("--timeout", type=float, default=None)
    @argument("--cancel-on-interrupt", action="store_true")
    @line_magic
    def dbx_wait(self, line: str) -> RunResult:
        """Re-attach to a run (after --no-wait, an interrupt or a kernel restart) and wait for it."""
        self._refuse_secrets(line)
        args = _parse(self.dbx_wait, line)
        out = _check_name(args.out)
        with _usage_errors():
            run_id = positive_id(args.run_id, "run id")
        client = self.client(args.profile)
        return self._watch(
            out,
            lambda progress: wait_for_run(
                client,
                run_id,
                timeout=args.timeout,
                on_update=progress,
                cancel_on_interrupt=args.cancel_on_interrupt,
            ),
            cancel_on_interrupt=args.cancel_on_interrupt,
        )

    @magic_arguments()
    @argument("run_id", help="the run to cancel")
    @argument("--profile", default=None)
    @line_magic
    def dbx_cancel(self, line: str) -> None:
        """Cancel a run. Cancelling is asynchronous: ``%dbx_wait RUN_ID`` shows it end."""
        self._refuse_secrets(line)
        args = _parse(self.dbx_cancel, line)
        with _usage_errors():
            run_id = positive_id(args.run_id, "run id")
        self.client(args.profile).cancel_run(run_id)
        print(f"Asked the workspace to cancel run {run_id}; `%dbx_wait {run_id}` shows it end.")

    # -- %dbx_sandbox, %dbx_form ----------------------------------------------------------------
    @magic_arguments()
    @argument("--speed", type=float, default=1.0, help="make the sandbox's runs N times faster")
    @argument("--stop", action="store_true", help="stop the sandbox and go back to the configured workspace")
    @line_magic
    def dbx_sandbox(self, line: str) -> None:
        """Start the embedded sandbox workspace (a Jobs API emulator on loopback) and use it here."""
        args = _parse(self.dbx_sandbox, line)
        if not args.stop and args.speed <= 0:
            raise UsageError(f"--speed {args.speed:g} is not positive: give e.g. --speed 5.")
        self.stop()
        if args.stop:
            print("Sandbox stopped; the magics use your configured workspace again.")
            return
        from .sandbox import Sandbox

        sandbox = Sandbox(speed=args.speed)
        sandbox.start()
        self.sandbox = sandbox
        self._sandbox_client = DatabricksClient(sandbox.url, sandbox.token)
        self._sandbox_token = sandbox.token
        names = ", ".join(repr(job["settings"]["name"]) for job in self._sandbox_client.list_jobs())
        print(f"Sandbox workspace at {sandbox.url}; this kernel's magics now run its jobs: {names}.")

    @magic_arguments()
    @argument("job", nargs="?", default=None, help="job id or quoted name to pre-select")
    @argument("--out", default="dbx_result", help="variable to put the RunResult in")
    @argument("--profile", default=None)
    @line_magic
    def dbx_form(self, line: str) -> Any:
        """Show the form: pick a job, edit its parameters, Run; the result lands in the namespace."""
        self._refuse_secrets(line)
        args = _parse(self.dbx_form, line)
        out = _check_name(args.out)
        from .display import has_widget_frontend
        from .form import RunForm

        if not has_widget_frontend(self.shell):
            print(
                "The form needs a notebook frontend (JupyterLab, Jupyter Notebook, VS Code); here, use %%dbx_run."
            )
            return None

        return RunForm(
            client=self.client(args.profile), job=_strip_quotes(args.job) if args.job else None, out=out
        )

    def stop(self) -> None:
        """Stop what the magics started (the sandbox)."""
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox, self._sandbox_client, self._sandbox_token = None, None, None


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """Input mistakes surface as IPython's plain UsageError: one line, no stack trace."""
    try:
        yield
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None


def _parse(magic: Callable[..., Any], line: str) -> Any:
    """Parse a magic's flags; a mistake says which magic's help lists them."""
    try:
        return parse_argstring(magic, line)
    except UsageError as exc:
        name = getattr(magic, "__name__", "dbx_run")
        hint = (
            "quote a job name with spaces, pass a variable's name to --params; "
            if "unrecognized" in str(exc)
            else ""
        )
        raise UsageError(f"{str(exc).rstrip('.')}: {hint}`%{name}?` lists the flags.") from None


def _strip_quotes(text: str) -> str:
    """A quoted job name without its quotes (IPython's argument splitter keeps them)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].strip()
    return text


def _is_id(job: str) -> bool:
    return job.strip().lstrip("+-").isdigit()


def _check_name(name: str) -> str:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(f"--out {name!r} is not a valid Python variable name: use e.g. --out result.")
    return name


def current_client(profile: str | None = None) -> DatabricksClient:
    """The client the running notebook's magics use (the sandbox after ``%dbx_sandbox``), else the configuration."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        get_ipython = None  # type: ignore[assignment]
    shell = get_ipython() if get_ipython else None
    magics = shell.magics_manager.registry.get("DbxMagics") if shell is not None else None
    if isinstance(magics, DbxMagics):
        return magics.client(profile)
    return DatabricksClient.from_config(profile=profile)


def load(ipython: Any) -> None:
    """Register the magics with a shell."""
    ipython.register_magics(DbxMagics)


def unload(ipython: Any) -> None:
    """Remove the magics from a shell, stopping the sandbox they started."""
    manager = ipython.magics_manager
    magics = manager.registry.pop("DbxMagics", None)
    if isinstance(magics, DbxMagics):
        magics.stop()
    for kind in ("line", "cell"):
        for name in ("dbx_run", "dbx_wait", "dbx_cancel", "dbx_sandbox", "dbx_form"):
            manager.magics[kind].pop(name, None)
