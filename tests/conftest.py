"""Shared fixtures: a fake workspace for HTTP-level tests, and the sandbox for end-to-end ones."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import responses

from dbx_magic import DatabricksClient, RetryPolicy

HOST = "https://adb-1234567890123456.7.azuredatabricks.net"
# Recognisable, obviously fake: the hygiene tests look for it everywhere it must not be.
TOKEN = "dbx-test-SECRET-token-0123456789"
API = f"{HOST}/api/2.1/jobs"


class Sleeps(list):
    """A stand-in for time.sleep that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps: Sleeps) -> DatabricksClient:
    return DatabricksClient(HOST, TOKEN, sleep=sleeps, retry=RetryPolicy(jitter=0.0))


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
