"""The notebook face: ``%%dbx_run`` and its companions. Each magic parses, calls one function, publishes.

Flags are declared with ``magic_arguments`` and their values judged by the ``type=`` callables in
:mod:`dbx_magic.notebook.args`; the cell body becomes parameters there too. The run core does the rest
(:mod:`dbx_magic.run`); :meth:`NotebookSession.settle` publishes before anything is raised, so a
failed, timed-out or interrupted run is never lost, and a run that did not succeed then fails the cell
with one short message (no stack trace), so "Run All" stops there.
"""

from __future__ import annotations

import contextlib
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import MagicHelpFormatter, argument, kwds, magic_arguments
from traitlets import Bool, Float, observe

from .args import (
    if_running,
    job_ref,
    only_tasks,
    out_name,
    parse,
    performance_target,
    positive_int,
    repair_tasks,
    run_or_name,
    run_ref,
    seconds,
    speed,
    token,
    usage_errors,
)
from .session import NotebookSession, notebook_path, reattach_enabled

__all__ = ["DbxMagics", "load", "unload"]

MAGIC_NAMES = (
    "dbx_run",
    "dbx_wait",
    "dbx_cancel",
    "dbx_runs",
    "dbx_sandbox",
    "dbx_form",
    "dbx_repair",
    "dbx_params",
    "dbx_compare",
)


class _Help(MagicHelpFormatter):
    """The help ``%%dbx_run?`` shows, for people: "Usage: %%dbx_run JOB ...", without the
    reStructuredText code-block marks IPython's formatter puts around the usage line."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: Any = None) -> None:
        super().add_usage(usage, actions, groups, "Usage: " if usage else "Usage: %")


def _help(usage: str | None = None) -> kwds:
    """The parser settings of one magic (a new dict each: IPython writes into it)."""
    return kwds(formatter_class=_Help, **({"usage": usage} if usage else {}))


RUN_USAGE = (
    "%%%%dbx_run JOB [--out NAME] [--params NAME] [--background | --no-wait | --foreach NAME] "
    "[more flags below]\n"
    "       then one parameter a line in the cell: date = 2026-11-01 (%%dbx_run JOB on one line: none)"
)


@magics_class
class DbxMagics(Magics):
    """``%%dbx_run``, ``%dbx_wait``, ``%dbx_cancel``, ``%dbx_runs``, ``%%dbx_repair``, ``%dbx_sandbox``,
    ``%dbx_form``, ``%dbx_params``, ``%dbx_compare``.

    Args:
        shell: The IPython shell.
        session: What the magics share with the forms they show (default: a new one on the
            shell's namespace).
    """

    notice_seconds = Float(
        20.0,
        help="Seconds a success notice stays on the page when a background run ends (0: until dismissed; "
        "a failure always stays). Set it with %config DbxMagics.notice_seconds = 60.",
    ).tag(config=True)
    reattach = Bool(
        True,
        help="At %load_ext, watch again the runs of this notebook that were going when its kernel stopped.",
    ).tag(config=True)

    def __init__(self, shell: Any, session: NotebookSession | None = None) -> None:
        super().__init__(shell)
        self._kernel_shutdown: Any = None
        self.session = session or NotebookSession(
            shell.user_ns if shell is not None else None, notebook=notebook_path(shell)
        )
        self._notice_seconds({"new": self.notice_seconds})

    @observe("notice_seconds")
    def _notice_seconds(self, change: Any) -> None:
        seconds = change["new"] or None
        self.session.notice_seconds = seconds
        if self.session.notices is not None:
            self.session.notices.fade = seconds

    @property
    def sandbox(self) -> Any:
        """The sandbox this kernel started, if any."""
        return self.session.sandbox

    @magic_arguments(name="%dbx_run")
    @_help(RUN_USAGE)
    @argument("job", type=job_ref, metavar="JOB", help="the job id, or the job's name in quotes")
    @argument(
        "--out",
        type=out_name,
        default="dbx_result",
        metavar="NAME",
        help="variable for the RunResult (default: dbx_result)",
    )
    @argument(
        "--params",
        default=None,
        metavar="NAME",
        help="a dict variable (or an expression without spaces); the cell's lines win over it",
    )
    @argument("--profile", default=None, metavar="NAME", help="~/.databrickscfg profile to use")
    @argument(
        "--timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="seconds to wait; the run goes on after",
    )
    @argument("--no-wait", action="store_true", help="launch and return at once with the run id")
    @argument(
        "--background",
        action="store_true",
        help="return at once and keep watching: --out holds a live handle, then the RunResult",
    )
    @argument(
        "--idempotency-token",
        type=token,
        default=None,
        metavar="TOKEN",
        help="at most 64 characters; the same token never starts a second run",
    )
    @argument(
        "--cancel-on-interrupt", action="store_true", help="interrupting the kernel also cancels the run"
    )
    @argument(
        "--foreach",
        default=None,
        metavar="NAME",
        help="a variable holding a list of dicts: one run each, merged over the cell's parameters",
    )
    @argument(
        "--max-parallel",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --foreach: at most N runs at once",
    )
    @argument(
        "--only",
        type=only_tasks,
        default=None,
        metavar="TASKS",
        help="run just these tasks: a,b (+a adds what a needs, a+ what follows a)",
    )
    @argument(
        "--performance-target",
        type=performance_target,
        default=None,
        metavar="STANDARD|PERFORMANCE_OPTIMIZED",
        help="serverless jobs: cost first (STANDARD) or speed first",
    )
    @argument(
        "--if-running",
        type=if_running,
        default="new",
        metavar="new|wait|cancel",
        help="when the job has a run going: start another (default), watch that one, or cancel it first",
    )
    @argument(
        "--allow-unknown-params",
        action="store_true",
        help="send parameters the job does not declare (and values outside a dropdown's choices) as given",
    )
    @line_cell_magic
    def dbx_run(self, line: str, cell: str | None = None) -> Any:
        """Run an existing Databricks job, watch it, and put the RunResult in the namespace.

        Use it as a cell magic, %%dbx_run JOB [flags], with one parameter per line in the cell
        (name = value; lines starting with # are comments; {name} expands from the namespace), or
        a JSON object; or as a line magic, %dbx_run JOB [flags], for a job with no parameters.

        The result is published before anything is raised; a run that does not succeed then fails
        the cell with one short message. Interrupt the kernel to stop waiting: the run goes on,
        %dbx_wait RUN_ID re-attaches, %dbx_cancel RUN_ID cancels it.

        Examples:

            %%dbx_run 123 --out res
            date  = 2026-11-01
            table = {catalog}.sales.transactions

            %dbx_run "nightly report" --no-wait

            %%dbx_run train-model --background --out model     # returns at once
            epochs = 5

            %%dbx_run train-model --foreach grid --out runs
            epochs = 5

            %dbx_run etl-with-checks --only ingest,validate --if-running wait
        """
        from .faces import run_cell

        with usage_errors():
            self.session.refuse_secrets(line, cell)
        args = parse(self.dbx_run, line)
        return run_cell(self.session, self.shell, args, cell)

    @magic_arguments()
    @_help()
    @argument(
        "target",
        type=run_or_name,
        metavar="NAME|RUN_ID",
        help="the name holding a run (from --background or --no-wait), or a run id",
    )
    @argument(
        "--out",
        type=out_name,
        default=None,
        help="variable for the RunResult (default: NAME itself, else the run's own name, else dbx_result)",
    )
    @argument("--profile", default=None)
    @argument("--timeout", type=seconds, default=None)
    @argument("--cancel-on-interrupt", action="store_true")
    @line_magic
    def dbx_wait(self, line: str) -> Any:
        """Wait for a run to end: ``%dbx_wait NAME`` (the ``--out`` name of a ``--background`` or
        ``--no-wait`` run) or ``%dbx_wait RUN_ID`` (after an interrupt or a kernel restart, too).

        The result goes under the same name; a run that did not succeed fails the cell. A timeout
        or an interrupt stops the waiting only: the run stays watched in the background."""
        from .faces import wait_cell

        with usage_errors():
            self.session.refuse_secrets(line)
        return wait_cell(self.session, self.shell, parse(self.dbx_wait, line))

    @magic_arguments()
    @_help()
    @argument(
        "--active",
        action="store_true",
        help="also list the active runs of the session's jobs that this kernel does not watch",
    )
    @argument(
        "--job",
        type=job_ref,
        action="append",
        default=None,
        help="a job whose active runs to list too (id or quoted name; repeat for more)",
    )
    @argument("--history", action="store_true", help="this notebook's past runs, from the run journal")
    @argument("--all", action="store_true", help="with --history: every notebook's runs")
    @argument(
        "--since", default=None, metavar="AGE", help="with --history: runs of the last AGE (7d, 12h, 30m)"
    )
    @argument("--forget", action="store_true", help="with --history: delete those entries from the journal")
    @argument("--resend", default=None, metavar="TOKEN", help="send again a launch whose answer never came")
    @argument("--profile", default=None)
    @line_magic
    def dbx_runs(self, line: str) -> Any:
        """The board of this session's runs (from magics, forms, sweeps and Python): job, run link,
        state, elapsed, ETA, result, with Cancel, Watch and Repair; ``--active`` adds the other active
        runs of the jobs the session touched (after a kernel restart, say). A text table in a terminal.
        ``--history`` lists this notebook's past runs from the run journal (``--all`` every notebook's,
        ``--job``, ``--since 7d``; ``--forget`` deletes them); ``--resend TOKEN`` sends again a launch
        whose answer never came, with its token."""
        from .background import runs_cell
        from .restart import history_cell, resend_cell

        with usage_errors():
            self.session.refuse_secrets(line)
        args = parse(self.dbx_runs, line)
        if args.resend:
            return resend_cell(self.session, self.shell, args.resend, args.profile)
        if args.history:
            return history_cell(self.session, args)
        if args.all or args.since or args.forget:
            raise UsageError("--all, --since and --forget go with --history: `%dbx_runs --history --all`.")
        return runs_cell(self.session, self.shell, args)

    @magic_arguments()
    @_help()
    @argument("run", type=run_or_name, help="the run id, or the variable holding the run (its --out name)")
    @argument("--tasks", type=repair_tasks, default=None, metavar="TASKS", help="rerun these tasks: a,b")
    @argument("--rerun-dependents", action="store_true", help="with --tasks: also rerun what follows them")
    @argument(
        "--out",
        type=out_name,
        default=None,
        help="variable for the result (default: the name given, or dbx_result)",
    )
    @argument("--profile", default=None)
    @argument("--timeout", type=seconds, default=None, help="seconds to wait; the run goes on after")
    @argument("--idempotency-token", type=token, default=None, help="the same token never repairs twice")
    @argument(
        "--performance-target",
        type=performance_target,
        default=None,
        metavar="STANDARD|PERFORMANCE_OPTIMIZED",
        help="serverless jobs: cost first (STANDARD) or speed first",
    )
    @argument("--cancel-on-interrupt", action="store_true")
    @line_cell_magic
    def dbx_repair(self, line: str, cell: str | None = None) -> Any:
        """Repair a run that did not succeed: rerun its failed tasks and the tasks after them, watch it,
        and publish the repaired run under the same name.

        The cell holds changed parameters, as ``%%dbx_run``'s does. ``--tasks a,b`` reruns those tasks
        instead (``--rerun-dependents`` adds the tasks after them).

        Examples:

            %%dbx_repair res
            strict = false

            %dbx_repair 1042 --tasks validate --rerun-dependents --out fixed
        """
        from .faces import repair_cell

        with usage_errors():
            self.session.refuse_secrets(line, cell)
        return repair_cell(self.session, self.shell, parse(self.dbx_repair, line), cell)

    @magic_arguments()
    @_help()
    @argument("run_id", type=run_ref, help="the run to cancel")
    @argument("--profile", default=None)
    @line_magic
    def dbx_cancel(self, line: str) -> None:
        """Cancel a run still going (a run that ended is left as it is, and said to have ended).
        Cancelling is asynchronous: ``%dbx_wait RUN_ID`` shows it end."""
        from ..errors import NOTEBOOK
        from ..run.cancel import cancel

        with usage_errors():
            self.session.refuse_secrets(line)
        args = parse(self.dbx_cancel, line)
        print(cancel(self.session.client(args.profile), args.run_id).line(NOTEBOOK))

    @magic_arguments()
    @_help()
    @argument("--speed", type=speed, default=1.0, help="make the sandbox's runs N times faster")
    @argument("--fresh", action="store_true", help="replace the sandbox with a new one (its runs go)")
    @argument("--stop", action="store_true", help="stop the sandbox and go back to the configured workspace")
    @line_magic
    def dbx_sandbox(self, line: str) -> None:
        """Start the embedded sandbox workspace (a Jobs API emulator on loopback) and use it here; again,
        change its speed and keep its runs."""
        args = parse(self.dbx_sandbox, line)
        if args.stop:
            self.session.stop_sandbox()
            print("Sandbox stopped; the magics use your configured workspace again.")
            return
        old = self.session.sandbox
        sandbox = self.session.start_sandbox(args.speed, fresh=args.fresh)
        if sandbox is old:
            print(
                f"Sandbox workspace at {sandbox.url} kept with its runs; new runs go at speed {args.speed:g}."
            )
            return
        names = ", ".join(repr(name) for name in sandbox.jobs)
        print(f"Sandbox workspace at {sandbox.url}; this kernel's magics now run its jobs: {names}.")

    @magic_arguments()
    @_help()
    @argument("job", type=job_ref, nargs="?", default=None, help="job id or quoted name to pre-select")
    @argument("--out", type=out_name, default="dbx_result", help="variable for the RunResult")
    @argument("--profile", default=None)
    @line_magic
    def dbx_form(self, line: str) -> Any:
        """Show the form: pick a job, edit its parameters, Run; the result lands in the namespace."""
        from .display import has_widget_frontend
        from .form import RunForm

        with usage_errors():
            self.session.refuse_secrets(line)
        args = parse(self.dbx_form, line)
        if not has_widget_frontend(self.shell):
            print(
                "The form needs a notebook frontend (JupyterLab, Jupyter Notebook, VS Code); here, use %%dbx_run."
            )
            return None
        return RunForm(
            client=self.session.client(args.profile) if args.profile else None,
            job=args.job,
            out=args.out,
            session=self.session,
        )

    @magic_arguments()
    @_help()
    @argument("job", type=job_ref, help="the job id, or the job's name in quotes")
    @argument("--profile", default=None, help="~/.databrickscfg profile to use")
    @line_magic
    def dbx_params(self, line: str) -> Any:
        """Show what a job takes: each parameter's name, kind, default and choices, from its settings
        and its notebooks' widget declarations (``%%dbx_run`` checks parameters against these)."""
        from .faces import params_cell

        with usage_errors():
            self.session.refuse_secrets(line)
        return params_cell(self.session, parse(self.dbx_params, line))

    @magic_arguments()
    @argument("a", type=run_or_name, help="the run in question: a run id, or the variable holding it")
    @argument(
        "b",
        type=run_or_name,
        nargs="?",
        default=None,
        help="the run to compare with (default: the last success)",
    )
    @argument("--out", type=out_name, default="dbx_comparison", help="variable for the comparison")
    @argument("--profile", default=None, help="~/.databrickscfg profile to use")
    @line_magic
    def dbx_compare(self, line: str) -> Any:
        """Compare two runs of a job side by side: the parameters that differ (sent and resolved), each
        task's state, attempts and duration, the first output or error that differs, queue and set-up
        time. Without B, A is compared with the job's last successful run before it. The comparison
        goes under ``--out`` (``dbx_comparison``): ``.rerun("a"|"b")`` and ``.repair()`` are the next steps.

        Examples::

            %dbx_compare res            # res failed: what differs from the last success?
            %dbx_compare 1204 1180
        """
        from .compare import compare_cell

        with usage_errors():
            self.session.refuse_secrets(line)
        return compare_cell(self.session, parse(self.dbx_compare, line))

    def stop(self) -> None:
        """Stop what the magics started (the background watching, the sandbox)."""
        self.session.shutdown()
        self.session.stop_sandbox()
        kernel = getattr(self.shell, "kernel", None)
        if kernel is not None and self._kernel_shutdown is not None:
            kernel.do_shutdown = self._kernel_shutdown
            self._kernel_shutdown = None

    def follow_kernel_shutdown(self) -> None:
        """When the kernel is asked to shut down (or restart), the session shuts down first, while its
        messages still reach the page: every display still live becomes its "watching stopped" record
        (an exit hook would run after the kernel stopped talking)."""
        kernel = getattr(self.shell, "kernel", None)
        original = getattr(kernel, "do_shutdown", None)
        if kernel is None or original is None or self._kernel_shutdown is not None:
            return
        session = self.session

        def do_shutdown(restart: bool) -> Any:
            session.shutdown()
            return original(restart)

        self._kernel_shutdown = original
        kernel.do_shutdown = do_shutdown


def load(ipython: Any) -> None:
    """Register the magics with a shell, with a session of their own; after each cell, run handles
    the notebook holds (``start_background`` from Python) join the session's board and notices.
    ``%config DbxMagics`` shows their settings. The runs of this notebook that were going when its
    kernel stopped are watched again (said in one line)."""
    magics = DbxMagics(ipython)
    ipython.register_magics(magics)
    ipython.configurables.append(magics)
    ipython.events.register("post_run_cell", magics.session.after_cell)
    magics.follow_kernel_shutdown()
    if reattach_enabled(magics.reattach) and magics.session.notebook:  # a kernel that knows its notebook
        from .restart import reattach

        line = reattach(magics.session)
        if line:
            print(magics.session.mask(line))


def unload(ipython: Any) -> None:
    """Remove the magics from a shell, stopping the sandbox they started."""
    manager = ipython.magics_manager
    magics = manager.registry.pop("DbxMagics", None)
    if isinstance(magics, DbxMagics):
        magics.stop()
        if magics in ipython.configurables:
            ipython.configurables.remove(magics)
        with contextlib.suppress(ValueError):  # registered by another load
            ipython.events.unregister("post_run_cell", magics.session.after_cell)
    for kind in ("line", "cell"):
        for name in MAGIC_NAMES:
            manager.magics[kind].pop(name, None)
