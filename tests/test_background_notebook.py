"""Background runs in a real kernel: a notebook executed by nbclient against the sandbox at speed 1."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import nbformat
import pytest

from .conftest import execute_notebook, ipc_kernel

SETUP = (
    "%dbx_sandbox --speed 1\n"
    "from dbx_magic.sandbox import Task\n"
    "sb = get_ipython().magics_manager.registry['DbxMagics'].sandbox\n"
    "sb.add_job('ten-seconds', tasks=[Task('main', '/Shared/echo', base_parameters={'date': ''}, duration=10, notebook=lambda p: 'done ' + p.get('date', ''))])\n"
    "sb.add_job('fails-soon', tasks=[Task('main', '/Shared/boom', duration=2, notebook=lambda p: 1 / 0)])"
)
CELLS: list[tuple[str, list[str]]] = [
    ("%load_ext dbx_magic", []),
    (SETUP, []),
    ("%%dbx_run ten-seconds --background --out bg\ndate = 2026-11-01", []),  # 2: returns at once
    ("print('meanwhile:', type(bg).__name__, bg.done, 6 * 7)", []),  # 3: runs while the run goes on
    ("%dbx_run fails-soon --background --out bad", []),  # 4
    ("%dbx_wait bad", ["raises-exception"]),  # 5: fails its cell
    (  # 6: no further call: wait for the name to change, on a condition, bounded
        "import time\nfrom dbx_magic import RunResult\ndeadline = time.monotonic() + 60\n"
        "while not isinstance(bg, RunResult) and time.monotonic() < deadline:\n    time.sleep(0.1)\n"
        "print('final:', type(bg).__name__, bg.result_state, bg.output)",
        [],
    ),
    ("%dbx_runs", []),  # 7
    (
        "notices = get_ipython().magics_manager.registry['DbxMagics'].session.notices\n"
        "print('notices:', [(n.level, n.run_id) for n in notices.sent])",
        [],
    ),
]


def _seconds(cell: Any) -> float:
    timing = cell.metadata["execution"]
    start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def _text(cell: Any) -> str:
    return "".join(o.get("text", "") + "".join(o.get("traceback", [])) for o in cell.outputs)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("background-nb")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src, metadata={"tags": tags}) for src, tags in CELLS]
    execute_notebook(nb, tmp, store_widget_state=True)
    nbformat.write(nb, tmp / "background.ipynb")
    return nb


def test_a_background_cell_returns_at_once_and_the_next_cells_run(executed):
    launch, meanwhile = executed.cells[2], executed.cells[3]
    # the run takes ten seconds; five is a generous margin for a loaded machine
    assert _seconds(launch) < 5.0, _seconds(launch)
    assert "was launched in the background" in _text(launch)
    assert "meanwhile: RunHandle False 42" in _text(meanwhile)
    widgets = [o for o in launch.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "the cell shows the live progress widget"


def test_the_name_holds_the_final_result_without_any_further_call(executed):
    assert "final: RunResult SUCCESS done 2026-11-01" in _text(executed.cells[6])


def test_wait_on_a_failed_background_run_fails_its_cell(executed):
    cell = executed.cells[5]
    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
    assert [e["ename"] for e in errors] == ["RunFailed"]
    text = _text(cell)
    assert "ended FAILED" in text and "ZeroDivisionError" in text and "Traceback" not in text


def test_the_board_lists_the_runs(executed):
    state = json.dumps(executed.metadata["widgets"])
    for index in (2, 4):
        run_id = next(w for w in _text(executed.cells[index]).split() if w.isdigit())
        assert f"dbx-board-run-{run_id}" in state, run_id
    assert "ten-seconds" in state and "fails-soon" in state


def test_each_end_was_announced_once(executed):
    text = _text(executed.cells[8])
    assert text.count("('danger'") == 1 and text.count("('success'") == 1, text


def test_a_kernel_shut_down_names_the_runs_that_go_on_in_its_output(tmp_path):
    manager = ipc_kernel(tmp_path)
    manager.start_kernel()
    kernel = manager.client()
    kernel.start_channels()
    kernel.wait_for_ready(timeout=60)
    try:
        quiet = {"timeout": 60, "output_hook": lambda _msg: None}
        kernel.execute_interactive("%load_ext dbx_magic\n%dbx_sandbox --speed 2", **quiet)
        kernel.execute_interactive(
            "get_ipython().magics_manager.registry['DbxMagics'].sandbox.add_job('slow-job', duration=600)\n"
            "%dbx_run slow-job --background --out s",
            **quiet,
        )
        kernel.shutdown()
        said: list[str] = []
        wait = 30.0  # for the kernel's last words; then a short while for any repeat of them
        while True:
            try:
                message = kernel.get_iopub_msg(timeout=wait)
            except Exception:
                break
            if message["msg_type"] == "stream":
                said.append(message["content"]["text"])
                wait = 1.0 if "stopped watching" in "".join(said) else wait
        text = "".join(said)
        assert "stopped watching 1 run that goes on in the workspace" in text and "(slow-job" in text, said
        assert text.count("stopped watching") == 1, said
    finally:
        kernel.stop_channels()
        manager.shutdown_kernel(now=True)
