"""Hostile answers and hostile input: links, terminals, hosts, notebook sources, endless pages, exports.

Each table is a list of hostile values; each row goes through the public faces. The workspace's
answers are made hostile by a rewriting proxy on loopback in front of the sandbox (as a proxy on the
way could), or by the sandbox's own notebooks (a task's error is whatever its notebook raised).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import responses

from dbx_magic import (
    DatabricksClient,
    DatabricksError,
    RunFailed,
    RunResult,
    repair_run,
    run_job_and_wait,
    start_background,
    start_run,
)
from dbx_magic.errors import CLI, NOTEBOOK, ConfigError, InvalidInput
from dbx_magic.notebook.board import RunBoard, text_board
from dbx_magic.notebook.notices import notice_for
from dbx_magic.notebook.progress import TextProgress
from dbx_magic.notebook.session import NotebookSession
from dbx_magic.notebook.widgets import ProgressWidget
from dbx_magic.run.declared import parse_source, parse_widgets
from dbx_magic.run.engine import active_runs
from dbx_magic.sandbox import Sandbox, Task
from dbx_magic.testing import ManualClock

from .conftest import BRISK, fresh_shell

ROOT = Path(__file__).resolve().parent.parent
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # every C0/C1 control but \n and \t


class RewritingProxy:
    """A loopback HTTP proxy in front of the sandbox that puts ``link`` as every run's page URL."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.link: str | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def rewrite(self, path: str, data: bytes) -> bytes:
        if self.link is None or "/runs/" not in path:
            return data
        try:
            body = json.loads(data)
        except ValueError:
            return data
        for run in [body, *(body.get("runs") or [])]:
            if isinstance(run, dict) and "run_page_url" in run:
                run["run_page_url"] = self.link
                for task in run.get("tasks") or ():
                    task["run_page_url"] = self.link
        return json.dumps(body).encode()

    def _handler(proxy) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")
                }
                request = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=self.rfile.read(length) if length else None,
                    method=self.command,
                    headers=headers,
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, data = answer.status, answer.read()
                except urllib.error.HTTPError as error:
                    status, data = error.code, error.read()
                data = proxy.rewrite(self.path, data)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = forward

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


# -- the hostile texts a task's error can hold (each after the word "boom", which must stay visible)
TEXTS: list[tuple[str, str]] = [
    ("OSC window title (BEL)", "\x1b]0;pwned\x07"),
    ("OSC window title (ST)", "\x1b]2;pwned\x1b\\"),
    ("OSC 8 disguised hyperlink", "\x1b]8;;https://evil.example\x1b\\click here\x1b]8;;\x1b\\"),
    ("OSC never terminated", "\x1b]52;c;cGF5bG9hZA=="),
    ("RIS terminal reset", "\x1bc"),
    ("8-bit CSI clear screen", "\x9b2J"),
    ("8-bit OSC", "\x9d0;pwned\x9c"),
    ("BEL", "\x07\x07\x07"),
    ("DCS request", "\x1bP$q m\x1b\\"),
    ("APC", "\x1b_hidden\x1b\\"),
    ("PM and SOS", "\x1b^private\x1b\\\x1bXstring\x1b\\"),
    ("CSI cursor up and erase", "\x1b[2A\x1b[2K"),
    ("carriage return overwrite", "\rall good"),
    ("backspaces and DEL", "\x08\x08\x08\x7f"),
    ("C1 NEL and lone ESC", "\x85\x1b"),
    ("NUL and vertical tab", "\x00\x0b\x0c"),
]


def _says(params: dict[str, str]) -> str:
    raise ValueError("boom " + TEXTS[int(params["case"])][1])


# -- links a workspace (or a proxy) may give as a run's page
LINKS = [
    "javascript:alert(document.domain)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "\x00javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "//evil.example/run",
    "https:alert(1)",
    "file:///etc/passwd",
    "blob:https://evil.example/1",
    "https://",
    "http:///no-host",
]


@dataclass
class World:
    sandbox: Sandbox
    proxy: RewritingProxy
    session: NotebookSession
    env: dict[str, str]
    tmp: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("hostile")
    mp = pytest.MonkeyPatch()
    with Sandbox(speed=50) as sandbox:
        sandbox.add_job(
            "says-hostile", tasks=[Task("main", "/Shared/says", {"case": "0"}, duration=1, notebook=_says)]
        )
        proxy = RewritingProxy(sandbox.url)
        env = {
            "DATABRICKS_HOST": proxy.url,
            "DATABRICKS_TOKEN": sandbox.token,
            "DATABRICKS_CONFIG_FILE": str(tmp / "absent.cfg"),
        }
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("DATABRICKS_CONFIG_PROFILE", raising=False)
        session = NotebookSession({}, policy=BRISK)
        try:
            yield World(sandbox, proxy, session, env, tmp)
        finally:
            session.shutdown()
            proxy.close()
            mp.undo()


def widget_texts(widget: Any) -> str:
    """Every string value in a widget tree (its state as the page gets it)."""
    texts = [widget.value] if isinstance(getattr(widget, "value", None), str) else []
    texts += [widget_texts(child) for child in getattr(widget, "children", ())]
    return "\n".join(texts)


def hrefs(text: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', text)


# -- 1. links ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("link", LINKS)
def test_a_hostile_run_link_is_never_a_link_on_any_face(world: World, link: str) -> None:
    world.proxy.link = link
    try:
        handle = start_background(world.session.client(), "daily-sales-report", watcher=world.session.watcher)
        result = handle.wait()
    finally:
        world.proxy.link = None
    rebuilt = f"{world.proxy.url}/#job/{result.job_id}/run/{result.run_id}"
    assert result.run_page_url == rebuilt and all(
        t.run_page_url == f"{world.proxy.url}/#job/{result.job_id}/run/{t.run_id}" for t in result.tasks
    )
    progress = ProgressWidget(tick=None)
    progress(result)
    board = RunBoard(world.session, tick=3600)
    board.refresh()
    board.close()
    faces = {
        "result HTML": result._repr_html_(),
        "progress widget state": widget_texts(progress.widget),
        "board widget state": widget_texts(board.widget),
        "end notice": f'href="{notice_for(handle).message()["url"] or ""}"',
    }
    for face, shown in faces.items():
        assert rebuilt in hrefs(shown), (face, hrefs(shown))  # this run's link, rebuilt from the host
        assert all(h.startswith("http://127.0.0.1:") for h in hrefs(shown)), (face, hrefs(shown))
        assert not any("javascript" in h.lower() or "evil.example" in h for h in hrefs(shown)), face
    assert link not in text_board(world.session.handles, world.session.clock.wall())


@pytest.mark.parametrize(
    "answered",
    [None, "", "javascript:alert(1)", 42, ["https://x.example"], {"href": "https://x.example"}],
    ids=["none", "empty", "javascript", "a number", "a list", "an object"],
)
def test_an_unusable_link_in_the_model_is_no_link(answered: Any) -> None:
    result = RunResult.from_api({"run_id": 7, "job_id": 3, "run_page_url": answered, "state": {}})
    assert result.run_page_url is None
    assert "href" not in result._repr_html_() and "run 7" in result._repr_html_()


# -- 2. hosts with a user name or password --------------------------------------------------------

HOSTS = [
    "https://admin:PW-planted@adb-1.2.azuredatabricks.net",
    "admin:PW-planted@adb-1.2.azuredatabricks.net",
    "https://PW-planted@adb-1.2.azuredatabricks.net",
    "https://:PW-planted@adb-1.2.azuredatabricks.net",
    "http://admin:PW-planted@127.0.0.1:8080",
    "https://admin:PW-planted@adb-1.2.azuredatabricks.net/some/path?q=1",
    "https://admin%40corp:PW-planted@adb-1.2.azuredatabricks.net",
    "https://admin:PW-planted@[::1",
]
HOST_FACES = ["argument", "environment", "profile", "command line"]


def _host_refused(face: str, host: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp / "absent.cfg"))
    monkeypatch.delenv("DATABRICKS_HOST", raising=False)
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-not-used")
    if face == "argument":
        with pytest.raises(ConfigError) as info:
            DatabricksClient(host, "dapi-not-used")
        return str(info.value)
    if face == "environment":
        monkeypatch.setenv("DATABRICKS_HOST", host)
        with pytest.raises(ConfigError) as info:
            DatabricksClient.from_config()
        return str(info.value)
    if face == "profile":
        profile = tmp / "hosts.cfg"
        profile.write_text(f"[dev]\nhost = {host}\ntoken = dapi-not-used\n", encoding="utf-8")
        monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(profile))
        with pytest.raises(ConfigError) as info:
            DatabricksClient.from_config(profile="dev")
        return str(info.value)
    env = {**os.environ, "DATABRICKS_HOST": host, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "dbx_magic", "wait", "5"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize("face", HOST_FACES)
@pytest.mark.parametrize("host", HOSTS)
def test_a_host_with_a_password_is_refused_and_never_printed(
    face: str, host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = _host_refused(face, host, tmp_path, monkeypatch)
    assert "PW-planted" not in said and "admin" not in said, said
    if "[::1" not in host:
        assert "credentials never go in the host" in said, said


# -- 3. terminal text -----------------------------------------------------------------------------


def _terminal_faces(world: World, case: int) -> tuple[RunResult, dict[str, str]]:
    handle = start_background(
        world.session.client(), "says-hostile", {"case": str(case)}, watcher=world.session.watcher
    )
    result = handle.wait(raise_on_failure=False)
    with pytest.raises(RunFailed) as info:
        result.raise_for_state()
    failed = info.value
    shown = "".join(failed._render_traceback_()).replace("\x1b[0;31m", "").replace("\x1b[0m", "")
    stream = io.StringIO()
    progress = TextProgress(stream=stream, live=False, tick=None)
    progress(result)
    progress.close()
    return result, {
        "summary_text": result.summary_text(),
        "RunFailed": str(failed),
        "RunFailed in a notebook": failed.render(NOTEBOOK),
        "RunFailed on the command line": failed.render(CLI),
        "RunFailed as IPython shows it": shown,
        "terminal notice": notice_for(handle).line,
        "terminal board": text_board(world.session.handles, world.session.clock.wall()),
        "text progress": stream.getvalue(),
    }


@pytest.mark.parametrize("case", range(len(TEXTS)), ids=[t[0] for t in TEXTS])
def test_workspace_text_is_terminal_safe_on_every_text_face(world: World, case: int) -> None:
    result, faces = _terminal_faces(world, case)
    assert UNSAFE.search(result.tasks[0].error or ""), "the workspace's own text is kept as received"
    for face, text in faces.items():
        assert not UNSAFE.search(text), (face, text)
        assert "boom" in text or face in ("terminal board", "text progress"), (face, text)


@pytest.mark.parametrize("command", ["run", "wait"])
@pytest.mark.parametrize("case", range(0, len(TEXTS), 3), ids=[TEXTS[i][0] for i in range(0, len(TEXTS), 3)])
def test_the_command_line_prints_no_control_sequence(world: World, case: int, command: str) -> None:
    if command == "run":
        argv = ["run", "says-hostile", "-p", f"case={case}"]
    else:
        failed = run_job_and_wait(world.session.client(), "says-hostile", {"case": str(case)}, policy=BRISK)
        argv = ["wait", str(failed.run_id)]
    env = {**os.environ, **world.env, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "dbx_magic", *argv], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert "boom" in done.stdout + done.stderr
    assert not UNSAFE.search(done.stdout + done.stderr), (done.stdout, done.stderr)


# -- 4. notebook sources the parser reads -----------------------------------------------------------

SOURCES = [
    ("a 200 kB 1+1+... widget default", 'dbutils.widgets.text("a", ' + "1+" * 100_000 + "1)\n"),
    ("200,000 minus signs", 'dbutils.widgets.text("a", ' + "-" * 200_000 + "1)\n"),
    ("2,000 unclosed widget calls", 'dbutils.widgets.text("x", "1"\n' * 2_000),
    ("calls nested 300 deep", "dbutils.widgets.text(" * 300 + '"a"' + ")" * 300),
    ("brackets 100,000 deep", "dbutils.widgets.text(" + "([{" * 100_000),
    ("quotes that never close", "dbutils.widgets.text(\"'" * 5_000),
    ("a NUL in a widget call", 'dbutils.widgets.text("a\x00", "1")\n'),
    ("SQL escaped quotes", "CREATE WIDGET DROPDOWN d DEFAULT 'a' CHOICES VALUES '" + "\\'" * 50_000),
    ("SQL defaults never closed", "CREATE WIDGET TEXT a DEFAULT '\\" * 5_000),
    ("a lone surrogate", 'dbutils.widgets.text("\ud800", "1")\n'),
]


@pytest.mark.parametrize(("what", "source"), SOURCES, ids=[s[0] for s in SOURCES])
def test_a_hostile_notebook_source_never_stops_a_launch(world: World, what: str, source: str) -> None:
    found, unsure = parse_widgets(source)  # never raises
    assert isinstance(found, list) and isinstance(unsure, bool)
    name = f"hostile-source-{SOURCES.index((what, source))}"
    if name not in world.sandbox.jobs:
        world.sandbox.add_job(name, tasks=[Task("main", f"/Shared/{name}", duration=1, source=source)])
    try:
        run = start_run(world.session.client(), name, {"anything": "1"})
    except InvalidInput as refused:  # a source read whole that declares no such name: one sentence
        assert not unsure and "declares no parameter 'anything'" in str(refused), str(refused)
    else:  # launched; what could not be read is a warning on the run
        assert run.run_id and unsure and any("sent as given" in w for w in run.warnings), run.warnings
    handle = start_background(world.session.client(), name, watcher=world.session.watcher)
    assert handle.run_id and handle.wait(raise_on_failure=False).finished


def test_a_source_is_parsed_once_per_revision(world: World) -> None:
    source = 'dbutils.widgets.text("date", "2026-11-01")\n' + "x = 1\n" * 20_000
    world.sandbox.add_job(
        "parsed-once", tasks=[Task("main", "/Shared/parsed-once", duration=1, source=source)]
    )
    client = world.session.client()
    start_run(client, "parsed-once", {"date": "2026-11-02"})
    before = parse_source.cache_info()
    start_run(client, "parsed-once", {"date": "2026-11-03"})
    after = parse_source.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses  # read again, not parsed again
    world.sandbox.add_notebook("/Shared/parsed-once", source + "y = 2\n")  # a new revision
    start_run(client, "parsed-once", {"date": "2026-11-04"})
    assert parse_source.cache_info().misses == after.misses + 1


# -- 5. paging ----------------------------------------------------------------------------------------

HOST = "https://adb-1.2.azuredatabricks.net"
TASK = {"task_key": "t", "run_id": 11, "state": {"life_cycle_state": "RUNNING"}}
RUN = {"run_id": 10, "job_id": 3, "state": {"life_cycle_state": "RUNNING"}}
PAGINGS = [
    # (what, the page tokens each answer gives, in order; None ends)
    ("the same token again and again", ["a", "a", "a", "a"]),
    ("a cycle of two tokens", ["a", "b", "a", "b", "a"]),
    ("a cycle back to the first page", ["a", "b", "c", "a"]),
    ("a new token each time, the same entries", ["a", "b", "c", "d", "e", "f"]),
    ("a token that is a number, repeated", [7, 7, 7]),
]


def _paged(endpoint: str, tokens: list[Any], entry: Any, key: str) -> responses.RequestsMock:
    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    answers = [
        {**({"job_id": 3, "settings": {"name": "j"}} if "jobs/get" in endpoint else RUN), key: [entry]}
    ]
    answers += [{key: [entry]} for _ in tokens[1:]]
    for answer, token in zip(answers, tokens, strict=True):
        mock.get(f"{HOST}/api/2.2/{endpoint}", json={**answer, "next_page_token": token})
    mock.get(f"{HOST}/api/2.2/{endpoint}", json={key: [entry]})
    return mock


@pytest.mark.parametrize(("what", "tokens"), PAGINGS, ids=[p[0] for p in PAGINGS])
@pytest.mark.parametrize("endpoint", ["jobs/runs/get", "jobs/get", "jobs/list", "jobs/runs/list"])
def test_pages_that_go_round_end_the_reading(what: str, tokens: list[Any], endpoint: str) -> None:
    client = DatabricksClient(HOST, "dapi-not-used", clock=ManualClock())
    if endpoint == "jobs/runs/get":
        with _paged(endpoint, tokens, TASK, "tasks") as mock:
            result = RunResult.from_api(client.get_run(10))
        assert [t.run_id for t in result.attempts] == [11], "an entry is merged once"
        assert any("already read" in w or "nothing new" in w for w in result.warnings), result.warnings
    elif endpoint == "jobs/get":
        with _paged(endpoint, tokens, {"task_key": "t"}, "tasks") as mock:
            job = client.get_job(3)
        assert job["tasks"] == [{"task_key": "t"}] and job.warnings
    elif endpoint == "jobs/list":
        with _paged(endpoint, tokens, {"job_id": 3, "settings": {"name": "j"}}, "jobs") as mock:
            assert client.list_jobs() == [{"job_id": 3, "settings": {"name": "j"}}]
    else:
        with _paged(endpoint, tokens, {"run_id": 10, "job_id": 3}, "runs") as mock:
            seen, _ = active_runs(client, 3)
        assert list(seen) == [10]
    assert len(mock.calls) <= 3, [c.request.url for c in mock.calls]


# -- 6. raw errors become one sentence ---------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(world: World) -> RunResult:
    return run_job_and_wait(world.session.client(), "daily-sales-report", policy=BRISK)


RAW = [
    (
        "export to a missing folder",
        lambda w, r: r.export(w.tmp / "no" / "such" / "dir" / "out.html"),
        "does not exist",
    ),
    ("export to a path with a NUL", lambda w, r: r.export(str(w.tmp / "out\x00.html")), "NUL character"),
    ("export to a folder", lambda w, r: r.export(w.tmp), "is a directory"),
    ("export to a number", lambda w, r: r.export(5), "not a path"),
    ("repair_run with tasks=5", lambda w, r: repair_run(w.session.client(), r, tasks=5), "not an int"),
    ("repair_run with tasks=b'a'", lambda w, r: repair_run(w.session.client(), r, tasks=b"a"), "not a bytes"),
]


@pytest.mark.parametrize(("what", "call", "words"), RAW, ids=[r[0] for r in RAW])
def test_a_raw_error_becomes_one_sentence(
    world: World, finished: RunResult, what: str, call: Any, words: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        call(world, finished)
    message = str(info.value)
    assert words in message and "\n" not in message and message.endswith("."), message


PROFILES = [
    ("binary bytes", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"),
    ("UTF-16 with a BOM", "[DEFAULT]\nhost = https://x\n".encode("utf-16")),
    ("Latin-1 text", "[DEFAULT]\nhost = https://caf\xe9.example\n".encode("latin-1")),
]


@pytest.mark.parametrize(("what", "content"), PROFILES, ids=[p[0] for p in PROFILES])
def test_a_profile_file_that_is_not_text_is_one_sentence(what: str, content: bytes, tmp_path: Path) -> None:
    path = tmp_path / ".databrickscfg"
    path.write_bytes(content)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update(DATABRICKS_CONFIG_FILE=str(path), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "dbx_magic", "wait", "5"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "is not text (it is not UTF-8)" in done.stderr, done.stderr


# -- 7. exports: one task as several -------------------------------------------------------------------

EXPORTS = [
    ("one task", "daily-sales-report", None, 1),
    ("three tasks", "etl-pipeline", None, 3),
    ("one task of three", "etl-pipeline", "publish", 1),
]


@pytest.mark.parametrize(("what", "job", "task", "frames"), EXPORTS, ids=[e[0] for e in EXPORTS])
def test_an_export_frames_every_page_the_same_way(
    world: World, what: str, job: str, task: str | None, frames: int
) -> None:
    result = run_job_and_wait(world.session.client(), job, policy=BRISK)
    text = result.export(world.tmp / f"{job}-{task}.html", task=task).read_text(encoding="utf-8")
    assert text.count('<iframe class="dbx-export-frame" sandbox="allow-scripts"') == frames
    outside = re.sub(r'srcdoc="[^"]*"', "", text)
    assert "<script" not in outside.lower() and "allow-same-origin" not in text


# -- the earlier cases -------------------------------------------------------------------------------


class InterruptingClock(ManualClock):
    """A fake clock whose ``at``-th read (after ``arm()``) raises KeyboardInterrupt."""

    def __init__(self) -> None:
        super().__init__()
        self.reads, self.at = 0, 0

    def arm(self, at: int) -> None:
        self.reads, self.at = 0, at

    def monotonic(self) -> float:
        self.reads += 1
        if self.reads == self.at:
            raise KeyboardInterrupt
        return super().monotonic()


def _runs_of(client: DatabricksClient, job_id: int) -> set[int]:
    return {r["run_id"] for r in client.list_runs(job_id, limit=25).get("runs") or ()}


@pytest.mark.parametrize("at", range(2, 16))
def test_an_interrupt_at_any_clock_read_names_a_run_that_exists(world: World, at: int) -> None:
    clock = InterruptingClock()
    client = DatabricksClient(world.sandbox.url, world.sandbox.token, clock=clock)
    looker = DatabricksClient(world.sandbox.url, world.sandbox.token)
    job_id = world.sandbox.add_job(f"interrupted-{at}", duration=1)
    clock.arm(at)
    with pytest.raises((DatabricksError, KeyboardInterrupt)) as info:
        run_job_and_wait(client, job_id)
    started = _runs_of(looker, job_id)
    for run_id in started:
        assert f"run {run_id}" in str(info.value).lower(), (at, str(info.value))


def test_a_quoted_number_runs_the_job_of_that_name(world: World) -> None:

    from dbx_magic.notebook.magics import DbxMagics, unload

    named = world.sandbox.add_job("123", duration=1)
    shell = fresh_shell()
    shell.register_magics(DbxMagics(shell, NotebookSession(shell.user_ns, policy=BRISK)))
    try:
        for line in ('%dbx_run "123" --out by_name', "%dbx_run '123' --out by_name"):
            res = shell.run_cell(line, store_history=False)
            assert res.success, res.error_in_exec
            assert shell.user_ns["by_name"].job_id == named
    finally:
        unload(shell)


def test_a_slow_workspace_holds_a_launch_a_moment_at_most(sandbox, sandbox_client, clock):
    # every read of the notebook's source answered 503 for a long while: retried on the fake clock
    sandbox.inject("workspace/export", "status", count=1000)
    began = clock.monotonic()
    run = start_run(sandbox_client, "daily-sales-report", {"date": "2026-11-01", "anything": "1"})
    assert run.run_id and any("was not read within 3 s" in w for w in run.warnings), run.warnings
    assert clock.monotonic() - began <= 3.5  # the sources' reading gave up at its bound; the launch went on
