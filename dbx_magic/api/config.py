"""Where the workspace host and the credentials come from.

As every Databricks tool does: explicit arguments, then the environment (``DATABRICKS_HOST``,
``DATABRICKS_TOKEN``), then a profile of ``~/.databrickscfg`` (or ``DATABRICKS_CONFIG_FILE``), the
profile named by the argument, else ``DATABRICKS_CONFIG_PROFILE``, else ``[DEFAULT]``. Values from the
file only fill what is still unset. The token never shows in a repr or a message.

Where no token is found but the same layers name another sign-in method (``auth_type`` /
``DATABRICKS_AUTH_TYPE``; Azure service principal settings ``azure_client_id``, ``azure_client_secret``,
``azure_tenant_id`` / ``ARM_CLIENT_ID``, ``ARM_CLIENT_SECRET``, ``ARM_TENANT_ID``; managed identity
``azure_use_msi`` / ``ARM_USE_MSI``; or only ``azure_workspace_resource_id`` /
``DATABRICKS_AZURE_RESOURCE_ID``, which means the Azure CLI), the Config says which method in
``auth_type``, and the client signs in through :mod:`dbx_magic.auth`. An ``auth_type`` other than
``pat`` wins over a token, as in the Databricks tools.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError, InvalidInput

__all__ = ["Config", "check_token_text", "normalise_host"]

_HOST_CHARS = re.compile(r"^[A-Za-z0-9.\-]+$")

# The settings that name a sign-in method: the profile key (the SDK's attribute name) -> its variable.
_AUTH_SETTINGS = {
    "auth_type": "DATABRICKS_AUTH_TYPE",
    "azure_workspace_resource_id": "DATABRICKS_AZURE_RESOURCE_ID",
    "azure_client_id": "ARM_CLIENT_ID",
    "azure_client_secret": "ARM_CLIENT_SECRET",
    "azure_tenant_id": "ARM_TENANT_ID",
    "azure_use_msi": "ARM_USE_MSI",
}


def check_token_text(token: str, where: str, error: type[ConfigError | InvalidInput] = ConfigError) -> str:
    """The token as it will be sent (stripped), or one sentence naming where it came from.

    A token is printable ASCII with no space in it; anything else (a line break or a curly dash
    pasted along with it) would be refused by the HTTP library with the whole token in its message,
    so it is refused here, and the message never holds the value.

    Args:
        token: The token as read.
        where: Where it was read from, in words ("DATABRICKS_TOKEN", "the profile [dev] of ...").
        error: The exception to raise.
    """
    text = token.strip()
    for position, char in enumerate(text, start=1):
        if 33 <= ord(char) <= 126:
            continue
        if char in "\r\n":
            what = "a line break"
        elif char.isspace():
            what = "a space"
        elif ord(char) < 32 or ord(char) == 127:
            what = "a control character"
        else:
            what = "a character that is not plain ASCII (a curly quote or dash?)"
        raise error(
            f"The token from {where} has {what} at position {position} of {len(text)}: a token is one "
            "line of plain letters, digits and punctuation, so copy it again from where it was created."
        )
    return text


def normalise_host(host: str) -> str:
    """Return the workspace URL with a scheme and no trailing slash, or raise ConfigError.

    A host without a scheme gets ``https://``.
    """
    if not isinstance(host, str):
        raise ConfigError(
            f"The Databricks host is {'missing' if host is None else 'a ' + type(host).__name__}: pass the "
            "workspace URL as a string, e.g. https://adb-1234567890123456.7.azuredatabricks.net."
        )
    raw = host.strip()
    if not raw:
        raise ConfigError(
            "The Databricks host is empty: set DATABRICKS_HOST to your workspace URL, "
            "e.g. https://adb-1234567890123456.7.azuredatabricks.net."
        )
    candidate = raw if "://" in raw else f"https://{raw}"
    if "@" in re.split(r"[/?#]", candidate.split("://", 1)[1], maxsplit=1)[0]:
        raise ConfigError(
            "The Databricks host holds a user name or password (the part before '@'): credentials never "
            "go in the host; give only the workspace URL, and the token in DATABRICKS_TOKEN or a profile."
        )
    try:
        parts = urlsplit(candidate)
    except ValueError:  # an unclosed [IPv6] bracket
        raise ConfigError(
            f"The Databricks host {raw!r} is not a workspace URL: use the form "
            "https://adb-1234567890123456.7.azuredatabricks.net."
        ) from None
    hostname = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not hostname or not _HOST_CHARS.match(hostname):
        raise ConfigError(
            f"The Databricks host {raw!r} is not a workspace URL: use the form "
            "https://adb-1234567890123456.7.azuredatabricks.net."
        )
    long = next((label for label in hostname.split(".") if len(label) > 63), None)
    if long is not None or len(hostname) > 253 or ".." in hostname or hostname.startswith("."):
        raise ConfigError(
            f"The Databricks host {raw!r} is not a valid host name (each part between dots is 1 to 63 "
            "characters): check it against the workspace URL in your browser."
        )
    if parts.path.strip("/") or parts.query:
        raise ConfigError(
            f"The Databricks host {raw!r} has a path or query: give only the workspace URL, "
            f"e.g. {parts.scheme}://{parts.netloc}."
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(
            f"The Databricks host {raw!r} has a malformed port: use e.g. http://127.0.0.1:8080."
        ) from None
    return f"{parts.scheme}://{parts.netloc}"


def _mask(token: str) -> str:
    return "***" if token else "<none>"


@dataclass(frozen=True)
class Config:
    """A resolved workspace host and the way to sign in to it.

    Attributes:
        host: The workspace URL, with a scheme and no trailing slash.
        token: The personal access token (empty for other methods). It is never shown by ``repr``.
        profile: The ``~/.databrickscfg`` profile the values came from, if any.
        source: Where the values came from, in words (for messages).
        auth_type: The sign-in method: ``"pat"`` for a token, else the Databricks tools' name for it
            (``"azure-client-secret"``, ``"azure-cli"``, ``"azure-msi"``, ``"databricks-cli"``, ...).
        azure_workspace_resource_id: The workspace's Azure resource id, when configured.
        azure_client_id: An Azure service principal's or user-assigned identity's client id.
        azure_client_secret: The service principal's secret; never shown by ``repr``.
        azure_tenant_id: The Entra ID tenant.
        azure_use_msi: Sign in with the Azure managed identity.
        config_file: The profile file, when a profile was used (the SDK reads the same one).
    """

    host: str
    token: str = field(repr=False)
    profile: str | None = None
    source: str = "arguments"
    auth_type: str = "pat"
    azure_workspace_resource_id: str | None = None
    azure_client_id: str | None = None
    azure_client_secret: str | None = field(default=None, repr=False)
    azure_tenant_id: str | None = None
    azure_use_msi: bool = False
    config_file: str | None = None

    def __repr__(self) -> str:
        text = (
            f"Config(host={self.host!r}, token={_mask(self.token)}, profile={self.profile!r}, "
            f"source={self.source!r}"
        )
        if self.auth_type != "pat":
            text += f", auth_type={self.auth_type!r}"
            for name in ("azure_workspace_resource_id", "azure_client_id", "azure_tenant_id"):
                if getattr(self, name):
                    text += f", {name}={getattr(self, name)!r}"
            if self.azure_client_secret:
                text += ", azure_client_secret=***"
        return text + ")"

    @classmethod
    def resolve(
        cls,
        *,
        host: str | None = None,
        token: str | None = None,
        profile: str | None = None,
        env: Mapping[str, str] | None = None,
        auth_type: str | None = None,
    ) -> Config:
        """Resolve host and sign-in: arguments > environment > profile file.

        Args:
            host: The workspace URL; a host without a scheme gets ``https://``.
            token: A personal access token.
            profile: A ``~/.databrickscfg`` profile to read (overrides ``DATABRICKS_CONFIG_PROFILE``).
            env: The environment to read (default ``os.environ``).
            auth_type: A sign-in method to use (overrides ``DATABRICKS_AUTH_TYPE`` and the profile's).

        Raises:
            ConfigError: something is missing, or the profile does not exist.
        """
        env = os.environ if env is None else env
        found = _Found(host or None, token or None, "the token argument" if token else None)
        found.settings = {"auth_type": auth_type.strip()} if auth_type and auth_type.strip() else {}
        found.settings_sources = ["arguments"] if found.settings else []
        if host or token:
            found.sources.append("arguments")
        # The environment is consulted only where no profile was asked for: naming a profile
        # means "use that profile", as the Databricks CLI does.
        if profile is None:
            settings = {key: env.get(var) for key, var in _AUTH_SETTINGS.items()}
            found.layer(
                "environment",
                env.get("DATABRICKS_HOST"),
                env.get("DATABRICKS_TOKEN"),
                "DATABRICKS_TOKEN",
                settings,
            )
        profile_name = profile or env.get("DATABRICKS_CONFIG_PROFILE") or None
        path = Path(env.get("DATABRICKS_CONFIG_FILE") or Path.home() / ".databrickscfg").expanduser()
        # The file is skipped when the arguments and environment already give a host and a way to
        # sign in, and no profile was asked for (a stray ARM_TENANT_ID alone is no way to sign in).
        if not (found.host and _sign_in_method(found.token, found.settings)) or profile_name:
            name = profile_name or "DEFAULT"
            section = _profile_section(_read_profiles(path), name, path, explicit=profile_name is not None)
            if section is not None:
                found.from_profile(name, path, section)
        method = _sign_in_method(found.token, found.settings)
        if method not in (None, "pat"):
            return cls._another_way(found, method, path)
        if not found.host or not found.token:
            raise _missing(found, path)
        return cls(
            host=normalise_host(found.host),
            token=check_token_text(found.token, found.token_where or "the configuration"),
            profile=found.profile,
            source=", ".join(found.sources) or "arguments",
        )

    @classmethod
    def _another_way(cls, found: _Found, method: str, path: Path) -> Config:
        """The configuration of a sign-in method other than a personal access token."""
        if not found.host:
            raise ConfigError(
                f"No Databricks host configured for signing in with {method}: set DATABRICKS_HOST, "
                "or host in the profile, to your workspace URL."
            )
        settings = found.settings
        profile_used = found.profile or found.settings_profile
        return cls(
            host=normalise_host(found.host),
            token="",
            profile=profile_used,
            # arguments, environment, profile: the order of precedence
            source=", ".join(sorted(set(found.sources + found.settings_sources), key=_layer_order)),
            auth_type=method,
            azure_workspace_resource_id=settings.get("azure_workspace_resource_id"),
            azure_client_id=settings.get("azure_client_id"),
            azure_client_secret=settings.get("azure_client_secret"),
            azure_tenant_id=settings.get("azure_tenant_id"),
            azure_use_msi=method == "azure-msi",
            config_file=str(path) if profile_used else None,
        )


@dataclass
class _Found:
    """What the layers gave so far (arguments, then environment, then a profile), and from where."""

    host: str | None
    token: str | None
    token_where: str | None
    settings: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # where the host and token came from
    settings_sources: list[str] = field(default_factory=list)  # where the other sign-in settings did
    profile: str | None = None  # the profile that gave the host or token
    settings_profile: str | None = None  # the profile that gave other settings

    def layer(
        self,
        where: str,
        host: str | None,
        token: str | None,
        token_where: str,
        settings: Mapping[str, str | None],
    ) -> tuple[bool, bool]:
        """Fill what is still missing from one layer; (it gave a host or token, it gave settings)."""
        fresh = _unset(self.settings, settings)
        gave = bool((host and not self.host) or (token and not self.token))
        if gave:
            self.sources.append(where)
        if fresh:
            self.settings_sources.append(where)
        self.host = self.host or host or None
        self.token_where = self.token_where or (token_where if token else None)
        self.token = self.token or token or None
        self.settings.update(fresh)
        return gave, bool(fresh)

    def from_profile(self, name: str, path: Path, section: Mapping[str, str]) -> None:
        where = f"profile [{name}] of {path}"
        settings = {key: section.get(key) for key in _AUTH_SETTINGS}
        gave, gave_settings = self.layer(
            where, section.get("host"), section.get("token"), f"the {where}", settings
        )
        if gave:
            self.profile = name
        if gave_settings:
            self.settings_profile = name


def _missing(found: _Found, path: Path) -> ConfigError:
    """What to set when no host or token was found anywhere."""
    missing = " and ".join(
        what for what, value in (("host", found.host), ("token", found.token)) if not value
    )
    names = _profile_names(path)
    where = f"profiles in {path}: {', '.join(names)}" if names else f"no profiles in {path}"
    if found.settings.get("azure_client_id") and not found.settings.get("azure_client_secret"):
        where += (
            "; azure_client_id is set without azure_client_secret: set that too for a "
            "service principal, or azure_use_msi = true for a managed identity"
        )
    return ConfigError(
        f"No Databricks {missing} configured: set DATABRICKS_HOST and DATABRICKS_TOKEN, "
        f"or name a profile with --profile / DATABRICKS_CONFIG_PROFILE ({where}), or sign in "
        "another way with auth_type (docs/sign-in.md); "
        "to try dbx-magic without a workspace, run %dbx_sandbox in a notebook or "
        "`python -m dbx_magic demo`."
    )


def _unset(settings: Mapping[str, str], found: Mapping[str, str | None]) -> dict[str, str]:
    """The non-blank values in ``found`` for keys that ``settings`` does not have yet."""
    return {k: v.strip() for k, v in found.items() if v and v.strip() and k not in settings}


def _layer_order(source: str) -> int:
    return {"arguments": 0, "environment": 1}.get(source, 2)


def _sign_in_method(token: str | None, settings: Mapping[str, str]) -> str | None:
    """The method the settings name: an explicit auth_type, a token, then the Azure settings."""
    named = settings.get("auth_type", "").lower()
    if named and named != "pat":
        return named
    if token:
        return "pat"
    if named == "pat":
        return None
    if settings.get("azure_use_msi", "").lower() in ("1", "true", "yes", "on"):
        return "azure-msi"
    if settings.get("azure_client_id") and settings.get("azure_client_secret"):
        return "azure-client-secret"
    if settings.get("azure_workspace_resource_id"):
        return "azure-cli"
    return None


def _read_profiles(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section="__no_default__")
    if path.is_file():
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise ConfigError(
                f"The profile file {path} is not valid INI ({type(exc).__name__}): fix or move it."
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(
                f"The profile file {path} is not text (it is not UTF-8): it is not a profile file; "
                "move it away, or point DATABRICKS_CONFIG_FILE at the right one."
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"The profile file {path} cannot be read ({exc.strerror or type(exc).__name__}): "
                "check its permissions, or point DATABRICKS_CONFIG_FILE at another one."
            ) from None
    return parser


def _profile_section(
    parser: configparser.ConfigParser, name: str, path: Path, *, explicit: bool
) -> configparser.SectionProxy | None:
    if parser.has_section(name):
        return parser[name]
    if explicit:
        found = [s for s in parser.sections() if s != "__settings__"]
        listing = ", ".join(found) if found else "none"
        raise ConfigError(
            f"The profile {name!r} is not in {path} (profiles found: {listing}): "
            "name one of those, or add it with `databricks configure --profile NAME`."
        )
    return None


def _profile_names(path: Path) -> list[str]:
    try:
        return [s for s in _read_profiles(path).sections() if s != "__settings__"]
    except ConfigError:
        return []
