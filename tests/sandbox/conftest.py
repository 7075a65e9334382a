"""The sandbox's tests: a fresh sandbox on a clock of their own (it moves only when a test says so)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dbx_magic.sandbox import Sandbox

from .api import Api, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sb(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(clock=clock) as sandbox:
        yield sandbox


@pytest.fixture
def api(sb: Sandbox) -> Iterator[Api]:
    client = Api(sb)
    yield client
    client.session.close()
