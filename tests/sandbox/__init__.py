"""The sandbox's own tests, against its REST API and through databricks-sdk."""

import pytest

pytest.register_assert_rewrite("tests.sandbox.api")  # Api.ok's assert shows what it compared
