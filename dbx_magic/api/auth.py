"""Signing in: a bearer token, fixed or from a provider, refreshed near expiry and once after a refusal.

Wherever dbx-magic takes a token it also takes a **token provider**: a callable with no arguments that
returns a fresh token, as one of

- a ``str``: the token. When it is a JWT (Azure AD and Databricks OAuth tokens are), its ``exp`` claim
  is its expiry; otherwise it is used until the workspace refuses it;
- a ``(token, expires_at)`` pair, ``expires_at`` in epoch seconds (``time.time()``). azure-identity's
  ``AccessToken`` is such a pair, so ``lambda: credential.get_token(scope)`` is a provider;
- a :class:`Token`, which can also carry extra headers to send with the token.

:class:`BearerAuth` (the ``requests`` auth every client request goes through) calls the provider on
first use, again when the token is within ``margin`` seconds of its expiry, and again when the client
asks it to :meth:`~BearerAuth.refresh` (the client does that at most once per request, after a 401/403
that says the token expired, then retries once). A fixed token is never refreshed.

Sign-in methods other than a personal access token (``auth_type`` in a profile or
``DATABRICKS_AUTH_TYPE``, Azure service principals, the Azure CLI, ``databricks auth login``, ...) are
turned into providers by :func:`token_source`: through databricks-sdk's own credential chain
(:func:`sdk_provider`), or, for Azure managed identity, which databricks-sdk for Python does not
implement, through azure-identity (:func:`azure_msi_provider`). Both come with the optional extra
``pip install "dbx-magic[azure]"`` and are imported only when such a method is configured. Both
functions are public so that a test, or a caller, can put a provider of its own in their place.

No token or secret appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from ..errors import ConfigError, InvalidInput
from .config import check_token_text

if TYPE_CHECKING:
    from .config import Config

__all__ = [
    "AZURE_DATABRICKS_APP_ID",
    "INSTALL_EXTRA",
    "BearerAuth",
    "Token",
    "TokenProvider",
    "azure_msi_provider",
    "sdk_provider",
    "token_rejected",
    "token_source",
]

log = logging.getLogger(__name__)

#: The Azure Databricks application in Entra ID; its tokens are the ones a workspace accepts.
AZURE_DATABRICKS_APP_ID = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
AZURE_MANAGEMENT_SCOPE = "https://management.core.windows.net/.default"
RESOURCE_ID_HEADER = "X-Databricks-Azure-Workspace-Resource-Id"
MANAGEMENT_TOKEN_HEADER = "X-Databricks-Azure-SP-Management-Token"
#: What to install for the sign-in methods beyond personal access tokens.
INSTALL_EXTRA = 'pip install "dbx-magic[azure]"'


@dataclass(frozen=True)
class Token:
    """A bearer token, when it expires, and any headers that go with it.

    Attributes:
        access_token: The token; never shown by ``repr``.
        expires_at: When it stops working, in epoch seconds; None when unknown.
        headers: More headers to send with it (say ``X-Databricks-Azure-SP-Management-Token``); their
            values are never shown by ``repr``.
    """

    access_token: str = field(repr=False)
    expires_at: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"Token(***, expires_at={self.expires_at!r}, headers={sorted(self.headers)!r})"


TokenProvider = Callable[[], str | tuple[str, float] | Token]
"""A callable returning a fresh token: a string, a ``(token, expires_at)`` pair, or a :class:`Token`."""


class BearerAuth(requests.auth.AuthBase):
    """Sets ``Authorization: Bearer <token>`` on each request, from a fixed token or a provider.

    Args:
        token: A token string, or a :data:`TokenProvider`.
        workspace_resource_id: An Azure workspace resource id, sent as
            ``X-Databricks-Azure-Workspace-Resource-Id`` when given.
        clock: The wall clock in epoch seconds, which ``expires_at`` is compared with.
        margin: A token this many seconds from its expiry is replaced before it is sent (Azure
            Databricks already refuses a token that expires within 30 seconds).

    Raises:
        InvalidInput: the token is empty.
    """

    def __init__(
        self,
        token: str | TokenProvider,
        *,
        workspace_resource_id: str | None = None,
        clock: Callable[[], float] = time.time,
        margin: float = 120.0,
    ) -> None:
        self._provider: TokenProvider | None = None
        self._token: Token | None = None
        self._seen: list[str] = []  # every secret handed out, newest last (to mask in answers)
        if callable(token):
            self._provider = token
        else:
            if token is not None and not isinstance(token, str):
                raise InvalidInput(
                    f"The token is a {type(token).__name__}: pass the token as a string, or a token provider."
                )
            text = check_token_text(token or "", "the token argument", InvalidInput)
            if not text:
                raise InvalidInput(
                    "The token is empty: set DATABRICKS_TOKEN or a token in your ~/.databrickscfg profile."
                )
            self._token = Token(text)
            self._seen.append(text)
        self._resource_id = (workspace_resource_id or "").strip() or None
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()

    @property
    def refreshable(self) -> bool:
        """Whether a new token can be had (True for a provider, False for a fixed token)."""
        return self._provider is not None

    def token(self) -> Token:
        """The token to send now: the cached one, or a new one from the provider when needed."""
        with self._lock:
            current = self._token
            if self._provider is not None and (current is None or self._expiring(current)):
                current = self._token = self._fetch(self._provider)
                fresh = [current.access_token, *current.headers.values()]
                self._seen = [s for s in self._seen if s not in fresh][-8:] + fresh
            assert current is not None
            return current

    def secrets(self) -> tuple[str, ...]:
        """Every token and token header value this auth has sent, so answers echoing one can be masked."""
        with self._lock:
            return tuple(self._seen)

    def refresh(self) -> bool:
        """Forget the token, so the next request asks the provider for a new one.

        Returns:
            False for a fixed token (there is no other to ask for), True otherwise.
        """
        if self._provider is None:
            return False
        with self._lock:
            self._token = None
        return True

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.token()
        request.headers.update(token.headers)
        if self._resource_id:
            request.headers[RESOURCE_ID_HEADER] = self._resource_id
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        return request

    def __repr__(self) -> str:
        if self._provider is None:
            return "BearerAuth(***)"
        return f"BearerAuth(provider={getattr(self._provider, '__name__', type(self._provider).__name__)})"

    def _expiring(self, token: Token) -> bool:
        return token.expires_at is not None and self._clock() >= token.expires_at - self._margin

    def _fetch(self, provider: TokenProvider) -> Token:
        failure: ConfigError | None = None
        try:
            token = as_token(provider())
        except (ConfigError, InvalidInput):
            raise
        except Exception as exc:  # raised below, outside this block: nothing of the provider's is chained
            reason = " ".join(str(exc).split())[:300]
            for secret in self._seen:
                reason = reason.replace(secret, "***")
            failure = ConfigError(
                f"The token provider failed ({type(exc).__name__}: {reason}); fix the provider "
                "or the sign-in it uses, then try again."
            )
        if failure is not None:
            raise failure
        if token.expires_at is None:
            log.debug("got a new token (no expiry known)")
        else:
            log.debug("got a new token (expires in %.0f s)", token.expires_at - self._clock())
        return token


def as_token(value: Any) -> Token:
    """A provider's answer as a :class:`Token`.

    Raises:
        InvalidInput: the answer is not a string, a ``(token, expires_at)`` pair or a Token.
        ConfigError: the token is empty.
    """
    if isinstance(value, Token):
        token = value
    elif isinstance(value, str):
        token = Token(value.strip(), _jwt_expiry(value.strip()))
    elif isinstance(value, tuple) and len(value) == 2:
        raw, expires = value
        token = Token(str(raw or "").strip(), None if expires is None else float(expires))
    else:
        raise InvalidInput(
            f"A token provider returned a {type(value).__name__}: return a token string, a "
            "(token, expires_at) pair or a dbx_magic.auth.Token."
        )
    if not token.access_token:
        raise ConfigError("The token provider returned an empty token: check the sign-in it uses.")
    token = Token(check_token_text(token.access_token, "the token provider"), token.expires_at, token.headers)
    for name, header in token.headers.items():
        check_token_text(str(header), f"the token provider's {name} header")
    return token


# Azure Databricks has answered an expired token with a 403 "Token is expiring within 30 seconds.
# (token expired)", a 403 "JWT has expired", a 400 carrying "ExpiredJwtException" and lately a 401
# "Token is expired"; an expired personal access token gets a 403 "Invalid access token."
_TOKEN_REFUSED = re.compile(r"expir|\bjwt\b|invalid (access )?token|token is invalid", re.IGNORECASE)
_JWT_EXPIRED = re.compile(r"ExpiredJwt|jwt.*expired", re.IGNORECASE)


def token_rejected(status: int, message: str) -> bool:
    """Whether an error answer says the token itself was refused, so that a new one may help.

    Any 401 does (the credentials were not accepted); a 403 does when its message speaks of an
    expired or invalid token (otherwise it is about permissions); a 400 only when it names an expired
    JWT.
    """
    if status == 401:
        return True
    if status == 403:
        return bool(_TOKEN_REFUSED.search(message))
    return status == 400 and bool(_JWT_EXPIRED.search(message))


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (read, not verified: the workspace verifies it), else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:  # binascii.Error and JSONDecodeError are ValueErrors
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return float(exp)
    return None


# -- providers for the sign-in methods beyond personal access tokens ---------------------------------


def token_source(config: Config) -> str | TokenProvider:
    """What a client signs in with for a resolved :class:`~dbx_magic.config.Config`.

    The token itself for a personal access token; for Azure managed identity
    (``auth_type = azure-msi``) :func:`azure_msi_provider`; for every other method
    :func:`sdk_provider`. Looked up when called, so either can be replaced (in a test, say).
    """
    if config.auth_type == "pat":
        return config.token
    if config.auth_type == "azure-msi":
        return azure_msi_provider(config)
    return sdk_provider(config)


def sdk_provider(config: Config) -> TokenProvider:
    """A provider backed by databricks-sdk's credential chain, for ``config.auth_type``.

    databricks-sdk is imported here, not before. Its ``Config`` gets the host, the method and the
    Azure settings resolved by dbx-magic, and the same profile of the same file, so everything else
    the method needs (``azure_environment``, ``client_id``, ``databricks_cli_path``, ...) is read just
    as the Databricks CLI and SDK read it. The SDK caches and renews its tokens; the headers it adds
    for Azure service principals (the workspace resource id and the management token) are sent too.

    Raises:
        ConfigError: databricks-sdk is not installed, or the method cannot sign in; the message names
            the method, where it was configured and what to fix, and holds no secret.
    """
    try:
        from databricks.sdk import config as sdk_config
    except ImportError:
        raise _missing_extra(config, "databricks-sdk") from None

    settings: dict[str, Any] = {
        "host": config.host,
        "auth_type": config.auth_type,
        "azure_workspace_resource_id": config.azure_workspace_resource_id,
        "azure_client_id": config.azure_client_id,
        "azure_client_secret": config.azure_client_secret,
        "azure_tenant_id": config.azure_tenant_id,
        # Bounds the SDK's host-metadata probe, which otherwise retries an unreachable host for 300 s.
        "retry_timeout_seconds": 30,
    }
    if config.profile:
        settings.update(profile=config.profile, config_file=config.config_file)
    try:
        sdk = sdk_config.Config(**{k: v for k, v in settings.items() if v is not None})
    except Exception as exc:
        raise _sign_in_failed(config, exc) from None
    log.debug("signing in to %s with %s through databricks-sdk", config.host, config.auth_type)

    def databricks_sdk() -> Token:
        try:
            headers = dict(sdk.authenticate())
        except Exception as exc:
            raise _sign_in_failed(config, exc) from None
        scheme, _, value = headers.pop("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ConfigError(
                f"Signing in with {config.auth_type} gave no bearer token (dbx-magic sends only bearer "
                "tokens): choose another auth_type."
            )
        expiries = [_jwt_expiry(v) for v in (value, headers.get(MANAGEMENT_TOKEN_HEADER, ""))]
        known = [e for e in expiries if e is not None]
        return Token(value.strip(), min(known) if known else None, headers)

    return databricks_sdk


def azure_msi_provider(config: Config, *, credential: Any = None) -> TokenProvider:
    """A provider for Azure managed identity (``azure_use_msi``, ``ARM_USE_MSI``, ``auth_type = azure-msi``).

    databricks-sdk for Python has no managed-identity sign-in (databricks-sdk-py#164), so this one
    uses azure-identity's ``ManagedIdentityCredential``, imported here, not before.

    Args:
        config: The resolved configuration; ``azure_client_id`` picks a user-assigned identity.
        credential: Anything with azure-identity's ``get_token(*scopes)`` (default: a
            ``ManagedIdentityCredential`` for ``config.azure_client_id``).

    Raises:
        ConfigError: azure-identity is not installed; or, when the provider is called, the identity
            gives no token.
    """
    if credential is None:
        try:
            from azure.identity import ManagedIdentityCredential
        except ImportError:
            raise _missing_extra(config, "azure-identity") from None
        credential = ManagedIdentityCredential(client_id=config.azure_client_id or None)
    management = bool(config.azure_workspace_resource_id)

    def azure_managed_identity() -> Token:
        try:
            token, expires_at = credential.get_token(f"{AZURE_DATABRICKS_APP_ID}/.default")
            headers: dict[str, str] = {}
            if management:  # lets an identity with rights on the workspace resource in, as the Go SDK does
                mgmt, mgmt_expires_at = credential.get_token(AZURE_MANAGEMENT_SCOPE)
                headers[MANAGEMENT_TOKEN_HEADER] = mgmt
                expires_at = min(expires_at, mgmt_expires_at)
        except Exception as exc:
            raise _sign_in_failed(config, exc) from None
        return Token(token, float(expires_at), headers)

    return azure_managed_identity


# -- messages -------------------------------------------------------------------------------------

_FIXES = {
    "azure-cli": (
        "run `az login` where the kernel runs (add `--tenant TENANT_ID` when the workspace is in "
        "another tenant), or install the Azure CLI if it is missing"
    ),
    "azure-client-secret": (
        "check azure_client_id, azure_client_secret and azure_tenant_id in the profile "
        "(or ARM_CLIENT_ID, ARM_CLIENT_SECRET and ARM_TENANT_ID)"
    ),
    "azure-msi": (
        "managed identity works only on an Azure VM, App Service, Function or AKS pod that has one; "
        "with several identities, set azure_client_id (ARM_CLIENT_ID) to the one to use"
    ),
    "databricks-cli": "run `databricks auth login --host {host}`, then try again",
    "oauth-m2m": "check client_id and client_secret (DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET)",
}
_AAD_FIXES = (
    (
        re.compile(r"AADSTS(90002|900023|700016)\b"),
        "the tenant is wrong for this application: set azure_tenant_id (ARM_TENANT_ID) to the "
        "workspace's Entra ID tenant, and check azure_client_id",
    ),
    (
        re.compile(r"AADSTS(7000215|7000222)\b"),
        "the client secret is wrong or has expired: create a new one for the application and set "
        "azure_client_secret (ARM_CLIENT_SECRET) to its value, not its id",
    ),
)


def _missing_extra(config: Config, package: str) -> ConfigError:
    return ConfigError(
        f"Signing in with {config.auth_type} (set in {config.source}) needs {package}, which is not "
        f"installed: run {INSTALL_EXTRA} where the kernel runs, then restart the kernel."
    )


def _sign_in_failed(config: Config, exc: BaseException) -> ConfigError:
    reason = str(exc) or type(exc).__name__
    # The SDK appends its whole configuration ("... Config: host=..., Env: ..."); where the settings
    # came from is said below, in our words.
    reason = re.split(r"\.? Config: ", reason, maxsplit=1)[0]
    for secret in (config.token, config.azure_client_secret):
        if secret:
            reason = reason.replace(secret, "***")
    reason = " ".join(reason.split())[:400].rstrip(". ")
    fix = next((hint for pattern, hint in _AAD_FIXES if pattern.search(reason)), None)
    if fix is None:
        fix = _FIXES.get(config.auth_type, f"check the {config.auth_type} settings")
    return ConfigError(
        f"Signing in to {config.host} with {config.auth_type} (set in {config.source}) failed: "
        f"{reason}; {fix.format(host=config.host)}."
    )
