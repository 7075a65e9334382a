"""What the sandbox's own tests share: a clock that moves when told, a small client of its REST API."""

from __future__ import annotations

from typing import Any

import requests

from dbx_magic.sandbox import Sandbox


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """A tiny authenticated client for the sandbox's REST API."""

    def __init__(self, sandbox: Sandbox, prefix: str = "/api/2.2/") -> None:
        self.sandbox = sandbox
        self.prefix = prefix
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {sandbox.token}"

    def get(self, endpoint: str, **params: Any) -> requests.Response:
        return self.session.get(self.sandbox.url + self.prefix + endpoint, params=params, timeout=5)

    def post(self, endpoint: str, body: Any) -> requests.Response:
        return self.session.post(self.sandbox.url + self.prefix + endpoint, json=body, timeout=5)

    def ok(self, method: str, endpoint: str, arg: Any = None, **params: Any) -> dict[str, Any]:
        response = self.post(endpoint, arg) if method == "POST" else self.get(endpoint, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def run_now(self, job: str | int, **body: Any) -> int:
        job_id = self.sandbox.job_id(job) if isinstance(job, str) else job
        return self.ok("POST", "jobs/run-now", {"job_id": job_id, **body})["run_id"]

    def run(self, run_id: int) -> dict[str, Any]:
        return self.ok("GET", "jobs/runs/get", run_id=run_id)

    def state(self, run_id: int) -> str:
        return self.run(run_id)["state"]["life_cycle_state"]

    def output(self, task_run_id: int) -> dict[str, Any]:
        return self.ok("GET", "jobs/runs/get-output", run_id=task_run_id)


def error(response: requests.Response) -> tuple[int, Any, str]:
    body = response.json()
    return response.status_code, body["error_code"], body["message"]
