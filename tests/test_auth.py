"""Signing in beyond personal access tokens: token providers, refresh, and the methods profiles name.

Everything here stays on this machine: providers are fakes, HTTP goes to ``responses``, and the tests
that drive the real databricks-sdk fake Entra ID with ``responses`` and the Azure CLI with a script.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers

from dbx_magic import DatabricksClient
from dbx_magic.api import auth as auth_module
from dbx_magic.api.auth import AZURE_DATABRICKS_APP_ID, INSTALL_EXTRA, BearerAuth, Token, azure_msi_provider
from dbx_magic.api.client import RetryPolicy
from dbx_magic.api.config import Config
from dbx_magic.errors import ConfigError, InvalidInput, PermissionDenied
from dbx_magic.notebook.session import NotebookSession

from .conftest import API, HOST

SP_SECRET = "sp-SECRET-value-0123456789"
RESOURCE_ID = "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Databricks/workspaces/ws"
TENANT = "72f988bf-0000-0000-0000-000000000001"
RESOURCE_HEADER = "X-Databricks-Azure-Workspace-Resource-Id"
MANAGEMENT_HEADER = "X-Databricks-Azure-SP-Management-Token"

PROFILES = f"""\
[DEFAULT]
host = {HOST}
token = default-token-AAA

[sp]
host = {HOST}
azure_client_id = 11111111-2222-3333-4444-555555555555
azure_client_secret = {SP_SECRET}
azure_tenant_id = {TENANT}
azure_workspace_resource_id = {RESOURCE_ID}

[msi]
host = {HOST}
azure_use_msi = true
azure_client_id = uami-client-id

[azcli]
host = {HOST}
azure_tenant_id = {TENANT}
auth_type = azure-cli

[u2m]
host = {HOST}
auth_type = databricks-cli

[resource]
host = {HOST}
azure_workspace_resource_id = {RESOURCE_ID}

[pat-and-cli]
host = {HOST}
token = a-token-the-auth-type-overrides
auth_type = azure-cli

[client-id-only]
host = {HOST}
azure_client_id = 11111111-2222-3333-4444-555555555555

[nohost]
auth_type = azure-cli
"""

_AUTH_VARIABLES = (
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CONFIG_PROFILE",
    "DATABRICKS_AUTH_TYPE",
    "DATABRICKS_AZURE_RESOURCE_ID",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_CLIENT_SECRET",
    "ARM_CLIENT_ID",
    "ARM_CLIENT_SECRET",
    "ARM_TENANT_ID",
    "ARM_USE_MSI",
    "ARM_ENVIRONMENT",
)


@pytest.fixture(autouse=True)
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile file, and an environment that names nothing else."""
    path = tmp_path / "databrickscfg"
    path.write_text(PROFILES)
    for name in _AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(path))
    return path


class Provider:
    """A fake token provider: hands out tok-1, tok-2, ... and counts its calls."""

    def __init__(self, lifetime: float | None = None, clock: Any = None) -> None:
        self.calls = 0
        self.lifetime = lifetime
        self.clock = clock

    def __call__(self) -> str | tuple[str, float]:
        self.calls += 1
        token = f"tok-{self.calls}"
        if self.lifetime is None:
            return token
        return token, self.clock() + self.lifetime


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def bearer(token: str) -> Any:
    return matchers.header_matcher({"Authorization": f"Bearer {token}"})


def jwt(exp: float) -> str:
    """An unsigned JWT with an ``exp`` claim (the client reads it, the workspace would verify it)."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': int(exp), 'sub': 'someone'})}.sig"


def client_for(token: Any, **kwargs: Any) -> DatabricksClient:
    return DatabricksClient(HOST, token, sleep=lambda _: None, retry=RetryPolicy(jitter=0.0), **kwargs)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


# -- the provider: first use, expiry ----------------------------------------------------------------


def test_provider_is_called_on_first_use_not_before(rsps):
    provider = Provider()
    client = client_for(provider)
    assert provider.calls == 0
    rsps.get(f"{API}/get", match=[bearer("tok-1")], json={"job_id": 1})
    rsps.get(f"{API}/get", match=[bearer("tok-1")], json={"job_id": 1})
    client.get_job(1)
    client.get_job(1)
    assert provider.calls == 1  # a token with no known expiry is kept until it is refused


def test_provider_is_called_again_when_the_token_nears_expiry(rsps):
    clock = Clock()
    provider = Provider(lifetime=3600, clock=clock)
    client = client_for(BearerAuth(provider, clock=clock, margin=120))
    for when, token in ((0, "tok-1"), (3400, "tok-1"), (3481, "tok-2"), (3600, "tok-2")):
        clock.now = 1_000_000.0 + when
        rsps.get(f"{API}/get", match=[bearer(token)], json={"job_id": 1})
        client.get_job(1)
    assert provider.calls == 2


def test_a_jwt_string_is_renewed_before_its_exp_claim(rsps):
    clock = Clock()
    tokens = [jwt(clock.now + 600), jwt(clock.now + 4000)]
    client = client_for(BearerAuth(lambda: tokens.pop(0), clock=clock))
    rsps.get(f"{API}/get", match=[bearer(tokens[0])], json={})
    rsps.get(f"{API}/get", match=[bearer(tokens[1])], json={})
    client.get_job(1)
    clock.now += 500  # within two minutes of the first token's exp
    client.get_job(1)
    assert tokens == []


def test_an_azure_identity_access_token_pair_works_as_is(rsps):
    clock = Clock()

    class AccessToken(tuple):  # azure-core's AccessToken is a (token, expires_on) NamedTuple
        pass

    client = client_for(BearerAuth(lambda: AccessToken(("aad-token", clock.now + 3600)), clock=clock))
    rsps.get(f"{API}/get", match=[bearer("aad-token")], json={})
    client.get_job(1)


# -- refused tokens: one refresh, one retry ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, "Token is expiring within 30 seconds. (token expired)"),
        (403, "JWT has expired"),
        (403, "Invalid access token."),
        (401, "Token is expired"),
        (401, "Unauthorized"),
        (400, "io.jsonwebtoken.ExpiredJwtException: JWT expired at 2026-11-01T10:00:00Z"),
    ],
)
def test_a_refused_token_is_refreshed_once_and_the_request_retried(rsps, status, message):
    provider = Provider()
    client = client_for(provider)
    rsps.get(
        f"{API}/get", match=[bearer("tok-1")], status=status, json={"error_code": status, "message": message}
    )
    rsps.get(f"{API}/get", match=[bearer("tok-2")], json={"job_id": 7})
    assert client.get_job(7) == {"job_id": 7}
    assert provider.calls == 2 and len(rsps.calls) == 2


def test_a_persistent_403_becomes_the_usual_error_after_one_retry(rsps):
    provider = Provider()
    client = client_for(provider)
    expired = {"error_code": 403, "message": "Token is expiring within 30 seconds. (token expired)"}
    rsps.get(f"{API}/get", match=[bearer("tok-1")], status=403, json=expired)
    rsps.get(f"{API}/get", match=[bearer("tok-2")], status=403, json=expired)
    with pytest.raises(PermissionDenied, match=r"Getting job 7 failed: Token is expiring.*refused the token"):
        client.get_job(7)
    assert provider.calls == 2 and len(rsps.calls) == 2  # never a second refresh for one request


def test_each_request_may_refresh_once(rsps):
    provider = Provider()
    client = client_for(provider)
    expired = {"error_code": 403, "message": "JWT has expired"}
    for old, new in (("tok-1", "tok-2"), ("tok-2", "tok-3")):
        rsps.get(f"{API}/get", match=[bearer(old)], status=403, json=expired)
        rsps.get(f"{API}/get", match=[bearer(new)], json={})
        client.get_job(1)
    assert provider.calls == 3


def test_a_403_about_permissions_is_not_a_token_problem(rsps):
    provider = Provider()
    client = client_for(provider)
    rsps.get(f"{API}/get", status=403, json={"error_code": "PERMISSION_DENIED", "message": "not allowed"})
    with pytest.raises(PermissionDenied, match="CAN MANAGE RUN"):
        client.get_job(1)
    assert provider.calls == 1 and len(rsps.calls) == 1


def test_a_fixed_token_is_never_refreshed_nor_retried(rsps):
    client = client_for("a-fixed-token")
    rsps.get(f"{API}/get", status=403, json={"error_code": 403, "message": "Token is expired"})
    with pytest.raises(PermissionDenied):
        client.get_job(1)
    assert len(rsps.calls) == 1


# -- what a provider may return -------------------------------------------------------------------------


def test_a_token_object_carries_headers_and_the_resource_id_is_sent(rsps):
    token = Token("secret-tok", None, {MANAGEMENT_HEADER: "secret-mgmt"})
    client = client_for(lambda: token, azure_workspace_resource_id=RESOURCE_ID)
    headers = {
        "Authorization": "Bearer secret-tok",
        MANAGEMENT_HEADER: "secret-mgmt",
        RESOURCE_HEADER: RESOURCE_ID,
    }
    rsps.get(f"{API}/get", match=[matchers.header_matcher(headers)], json={})
    client.get_job(1)
    assert "secret" not in repr(token) and "secret" not in repr(client._session.auth)


def test_a_provider_that_fails_or_returns_nonsense_says_so(rsps):
    def broken() -> str:
        raise RuntimeError("the vault is sealed")

    with pytest.raises(
        ConfigError, match=r"token provider failed \(RuntimeError: the vault is sealed\)"
    ) as info:
        client_for(broken).get_job(1)
    # Its type and words are in the message; the exception itself is not chained (it may hold a secret).
    assert info.value.__cause__ is None and info.value.__context__ is None
    with pytest.raises(InvalidInput, match="return a token string, a \\(token, expires_at\\) pair"):
        client_for(lambda: 42).get_job(1)
    with pytest.raises(ConfigError, match="empty token"):
        client_for(lambda: "  ").get_job(1)
    assert len(rsps.calls) == 0


# -- profiles and environment name the method ------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "method"),
    [
        ("sp", "azure-client-secret"),
        ("msi", "azure-msi"),
        ("azcli", "azure-cli"),
        ("u2m", "databricks-cli"),
        ("resource", "azure-cli"),
        ("pat-and-cli", "azure-cli"),  # an auth_type other than pat wins over a token
        ("DEFAULT", "pat"),
    ],
)
def test_a_profile_names_the_method(profile, method, cfg):
    config = Config.resolve(profile=profile)
    assert config.auth_type == method
    assert config.profile == profile
    if method != "pat":
        assert config.token == "" and config.config_file == str(cfg)
        assert config.source == f"profile [{profile}] of {cfg}"


def test_the_profile_settings_reach_the_config():
    config = Config.resolve(profile="sp")
    assert config.azure_client_id == "11111111-2222-3333-4444-555555555555"
    assert config.azure_client_secret == SP_SECRET and config.azure_tenant_id == TENANT
    assert config.azure_workspace_resource_id == RESOURCE_ID
    assert Config.resolve(profile="msi").azure_use_msi is True


@pytest.mark.parametrize(
    ("variables", "method"),
    [
        (
            {"ARM_CLIENT_ID": "cid", "ARM_CLIENT_SECRET": SP_SECRET, "ARM_TENANT_ID": TENANT},
            "azure-client-secret",
        ),
        ({"ARM_USE_MSI": "true"}, "azure-msi"),
        ({"DATABRICKS_AUTH_TYPE": "databricks-cli"}, "databricks-cli"),
        ({"DATABRICKS_AZURE_RESOURCE_ID": RESOURCE_ID}, "azure-cli"),
        ({"DATABRICKS_AUTH_TYPE": "azure-cli", "DATABRICKS_TOKEN": "ignored"}, "azure-cli"),
    ],
)
def test_the_environment_names_the_method(variables, method, cfg):
    config = Config.resolve(env={"DATABRICKS_CONFIG_FILE": str(cfg), "DATABRICKS_HOST": HOST, **variables})
    assert (config.auth_type, config.source, config.profile) == (method, "environment", None)


def test_the_auth_type_argument_wins():
    config = Config.resolve(profile="sp", auth_type="azure-cli")
    assert config.auth_type == "azure-cli" and config.source.startswith("arguments, profile [sp]")


def test_the_pat_path_is_untouched_by_stray_azure_variables(cfg):
    # Terraform users often have ARM_* set; without an auth_type a token still means a token.
    env = {"DATABRICKS_CONFIG_FILE": str(cfg), "DATABRICKS_HOST": HOST, "ARM_TENANT_ID": TENANT}
    config = Config.resolve(env=env)  # the token comes from [DEFAULT], as before
    assert (config.auth_type, config.token, config.source) == (
        "pat",
        "default-token-AAA",
        f"environment, profile [DEFAULT] of {cfg}",
    )
    env.update(DATABRICKS_TOKEN="env-token", ARM_CLIENT_ID="cid", ARM_CLIENT_SECRET=SP_SECRET)
    config = Config.resolve(env=env)
    assert (config.auth_type, config.token, config.source) == ("pat", "env-token", "environment")


def test_a_method_without_a_host_says_what_to_set():
    with pytest.raises(ConfigError, match="No Databricks host configured for signing in with azure-cli"):
        Config.resolve(profile="nohost")


def test_a_client_id_without_a_secret_says_what_is_missing():
    with pytest.raises(ConfigError, match="azure_client_id is set without azure_client_secret") as info:
        Config.resolve(profile="client-id-only")
    assert "No Databricks token configured" in str(info.value)


def test_the_missing_token_message_points_at_the_other_methods(cfg):
    with pytest.raises(ConfigError, match=r"sign in another way with auth_type.*%dbx_sandbox"):
        Config.resolve(env={"DATABRICKS_CONFIG_FILE": str(cfg / "none")})


# -- from_config builds the method's provider (the extra's providers replaced by fakes) ---------------


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[Config]:
    """Replace the extra's providers with fakes that record the Config they were built for."""
    configs: list[Config] = []

    def fake(config: Config) -> Any:
        configs.append(config)
        return lambda: f"{config.auth_type}-token"

    monkeypatch.setattr(auth_module, "sdk_provider", fake)
    monkeypatch.setattr(auth_module, "azure_msi_provider", fake)
    return configs


@pytest.mark.parametrize(
    ("profile", "method", "resource_id"),
    [
        ("sp", "azure-client-secret", RESOURCE_ID),
        ("msi", "azure-msi", None),
        ("azcli", "azure-cli", None),
        ("u2m", "databricks-cli", None),
        ("resource", "azure-cli", RESOURCE_ID),
    ],
)
def test_from_config_signs_in_with_the_method_the_profile_names(built, rsps, profile, method, resource_id):
    client = DatabricksClient.from_config(profile=profile)
    assert [c.auth_type for c in built] == [method]
    headers = {"Authorization": f"Bearer {method}-token"}
    if resource_id:
        headers[RESOURCE_HEADER] = resource_id
    rsps.get(f"{API}/get", match=[matchers.header_matcher(headers)], json={})
    client.get_job(1)
    if not resource_id:
        assert RESOURCE_HEADER not in rsps.calls[0].request.headers


def test_from_config_keeps_a_pat_a_pat(built, rsps):
    client = DatabricksClient.from_config()
    assert built == []
    rsps.get(f"{API}/get", match=[bearer("default-token-AAA")], json={})
    client.get_job(1)


def test_the_magics_sign_in_once_per_configuration(built):
    magics = NotebookSession({})
    first = magics.client("azcli")
    assert magics.client("azcli") is first and len(built) == 1
    assert magics.client("u2m") is not first and len(built) == 2


# -- without the extra --------------------------------------------------------------------------------


def test_without_databricks_sdk_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "databricks.sdk", None)
    monkeypatch.setitem(sys.modules, "databricks.sdk.config", None)
    with pytest.raises(ConfigError) as info:
        DatabricksClient.from_config(profile="azcli")
    message = str(info.value)
    assert "with azure-cli (set in profile [azcli]" in message and "needs databricks-sdk" in message
    assert INSTALL_EXTRA in message and 'pip install "dbx-magic[azure]"' in message


def test_without_azure_identity_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    with pytest.raises(
        ConfigError, match=r"azure-msi .*needs azure-identity.*pip install \"dbx-magic\[azure\]\""
    ):
        DatabricksClient.from_config(profile="msi")


# -- managed identity through azure-identity (a fake credential in its place) ----------------------------


class FakeCredential:
    """Stands in for azure-identity's ManagedIdentityCredential: get_token(scope) -> (token, expires_on)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.scopes: list[str] = []
        self.error = error

    def get_token(self, *scopes: str) -> tuple[str, int]:
        self.scopes.extend(scopes)
        if self.error:
            raise self.error
        if scopes[0].startswith("https://management"):
            return "mgmt-token", 2_000_000_000
        return "msi-token", 1_900_000_000


def test_managed_identity_sends_its_token_and_the_azure_headers(rsps):
    config = Config(
        HOST, "", auth_type="azure-msi", azure_use_msi=True, azure_workspace_resource_id=RESOURCE_ID
    )
    credential = FakeCredential()
    provider = azure_msi_provider(config, credential=credential)
    client = client_for(provider, azure_workspace_resource_id=RESOURCE_ID)
    headers = {
        "Authorization": "Bearer msi-token",
        MANAGEMENT_HEADER: "mgmt-token",
        RESOURCE_HEADER: RESOURCE_ID,
    }
    rsps.get(f"{API}/get", match=[matchers.header_matcher(headers)], json={})
    client.get_job(1)
    assert credential.scopes == [
        f"{AZURE_DATABRICKS_APP_ID}/.default",
        "https://management.core.windows.net/.default",
    ]
    assert provider().expires_at == 1_900_000_000


def test_managed_identity_failure_names_the_method_and_the_fix(rsps):
    config = Config.resolve(profile="msi")
    error = RuntimeError(
        "ManagedIdentityCredential authentication unavailable, no response from the IMDS endpoint."
    )
    client = client_for(azure_msi_provider(config, credential=FakeCredential(error)))
    with pytest.raises(ConfigError) as info:
        client.get_job(1)
    message = str(info.value)
    assert message.startswith(f"Signing in to {HOST} with azure-msi (set in profile [msi]")
    assert "no response from the IMDS endpoint" in message and "set azure_client_id" in message


# -- the real databricks-sdk, with Entra ID and the Azure CLI faked on this machine -----------------------


def _aad_token(request: Any) -> tuple[int, dict[str, str], str]:
    resource = dict(p.split("=", 1) for p in request.body.split("&")).get("resource", "")
    name = "mgmt" if "management" in resource else "aad"
    body = {"access_token": f"{name}-{jwt(2_000_000_000)}", "token_type": "Bearer", "expires_in": 3599}
    return 200, {}, json.dumps(body)


@pytest.fixture
def sdk_rsps() -> Iterator[responses.RequestsMock]:
    pytest.importorskip("databricks.sdk")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        # databricks-sdk asks the host for its metadata while it builds its Config; a 404 is fine.
        mock.get(f"{HOST}/.well-known/databricks-config", status=404, json={"error_code": "NOT_FOUND"})
        yield mock


TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/token"


def test_sdk_service_principal_end_to_end(sdk_rsps, caplog):
    caplog.set_level(logging.DEBUG)
    sdk_rsps.add_callback(responses.POST, TOKEN_URL, callback=_aad_token)
    client = DatabricksClient.from_config(profile="sp")
    sdk_rsps.get(f"{API}/get", json={"job_id": 1})
    client.get_job(1)
    sent = sdk_rsps.calls[-1].request.headers
    assert sent["Authorization"].startswith("Bearer aad-")
    assert sent[MANAGEMENT_HEADER].startswith("mgmt-") and sent[RESOURCE_HEADER] == RESOURCE_ID
    for text in (repr(client), repr(client._session.auth), repr(Config.resolve(profile="sp")), caplog.text):
        assert SP_SECRET not in text
    for record in caplog.records:
        assert SP_SECRET not in record.getMessage() and "aad-" not in record.getMessage()


def test_sdk_wrong_tenant_names_the_method_and_the_fix(sdk_rsps, caplog):
    caplog.set_level(logging.DEBUG)
    refusal = {
        "error": "invalid_request",
        "error_description": f"AADSTS90002: Tenant '{TENANT}' not found. Check to make sure you have the "
        "correct tenant ID and are signing into the correct cloud.\r\nTrace ID: 1",
    }
    sdk_rsps.post(TOKEN_URL, status=400, json=refusal)
    client = DatabricksClient.from_config(profile="sp")
    with pytest.raises(ConfigError) as info:
        client.get_job(1)
    message = str(info.value)
    assert message.startswith(f"Signing in to {HOST} with azure-client-secret (set in profile [sp] of ")
    assert "AADSTS90002" in message and "set azure_tenant_id (ARM_TENANT_ID)" in message
    assert SP_SECRET not in message and SP_SECRET not in caplog.text
    assert not any(c.request.url.startswith(API) for c in sdk_rsps.calls)  # nothing reached the workspace


def _fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, logged_in: bool) -> None:
    """An ``az`` on PATH that answers as the Azure CLI does, logged in or not."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    token = json.dumps(
        {"accessToken": jwt(2_000_000_000), "tokenType": "Bearer", "expiresOn": "2033-05-18 03:33:20.000000"}
    )
    script = textwrap.dedent(
        f"""\
        #!{sys.executable}
        import sys
        args = sys.argv[1:]
        if args[:2] == ["account", "show"]:
            print('{{"user": {{"name": "someone@example.com", "type": "user"}}}}')
        elif not {logged_in!r}:
            sys.stderr.write("ERROR: Please run 'az login' to setup account.\\n")
            sys.exit(1)
        else:
            print({token!r})
        """
    )
    az = bin_dir / "az"
    az.write_text(script)
    az.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")


def test_sdk_azure_cli_end_to_end(sdk_rsps, tmp_path, monkeypatch):
    _fake_az(tmp_path, monkeypatch, logged_in=True)
    client = DatabricksClient.from_config(profile="azcli")
    sdk_rsps.get(f"{API}/get", json={"job_id": 1})
    client.get_job(1)
    assert sdk_rsps.calls[-1].request.headers["Authorization"] == f"Bearer {jwt(2_000_000_000)}"


def test_sdk_azure_cli_not_logged_in_says_run_az_login(sdk_rsps, tmp_path, monkeypatch):
    _fake_az(tmp_path, monkeypatch, logged_in=False)
    with pytest.raises(ConfigError) as info:
        DatabricksClient.from_config(profile="azcli")
    message = str(info.value)
    assert message.startswith(f"Signing in to {HOST} with azure-cli (set in profile [azcli]")
    assert "run `az login`" in message and "--tenant" in message


# -- staying light -----------------------------------------------------------------------------------------


def test_import_and_load_ext_do_not_import_the_extra():
    code = textwrap.dedent(
        """
        import sys
        import dbx_magic
        from IPython.core.interactiveshell import InteractiveShell
        InteractiveShell.instance().run_line_magic("load_ext", "dbx_magic")
        from dbx_magic.api.config import Config
        Config.resolve(host="https://adb-1.1.azuredatabricks.net", token="t", env={})
        heavy = [m for m in ("databricks.sdk", "azure.identity") if m in sys.modules]
        print(heavy)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
