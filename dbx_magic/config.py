"""Where the workspace host and the credentials come from.

As every Databricks tool does: explicit arguments, then the environment (``DATABRICKS_HOST``,
``DATABRICKS_TOKEN``), then a profile of ``~/.databrickscfg`` (or ``DATABRICKS_CONFIG_FILE``), the
profile named by the argument, else ``DATABRICKS_CONFIG_PROFILE``, else ``[DEFAULT]``. Values from the
file only fill what is still unset. The token never shows in a repr or a message.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["Config", "normalise_host"]

_HOST_CHARS = re.compile(r"^[A-Za-z0-9.\-]+$")


def normalise_host(host: str) -> str:
    """Return the workspace URL with a scheme and no trailing slash, or raise ConfigError.

    A host without a scheme gets ``https://``.
    """
    raw = host.strip()
    if not raw:
        raise ConfigError(
            "The Databricks host is empty: set DATABRICKS_HOST to your workspace URL, "
            "e.g. https://adb-1234567890123456.7.azuredatabricks.net."
        )
    candidate = raw if "://" in raw else f"https://{raw}"
    parts = urlsplit(candidate)
    hostname = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not hostname or not _HOST_CHARS.match(hostname):
        raise ConfigError(
            f"The Databricks host {raw!r} is not a workspace URL: use the form "
            "https://adb-1234567890123456.7.azuredatabricks.net."
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
    """A resolved workspace host and token.

    Attributes:
        host: The workspace URL, with a scheme and no trailing slash.
        token: The bearer token. It is never shown by ``repr``.
        profile: The ``~/.databrickscfg`` profile the values came from, if any.
        source: Where the values came from, in words (for messages).
    """

    host: str
    token: str = field(repr=False)
    profile: str | None = None
    source: str = "arguments"

    def __repr__(self) -> str:
        return (
            f"Config(host={self.host!r}, token={_mask(self.token)}, profile={self.profile!r}, "
            f"source={self.source!r})"
        )

    @classmethod
    def resolve(
        cls,
        *,
        host: str | None = None,
        token: str | None = None,
        profile: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Config:
        """Resolve host and token: arguments > environment > profile file.

        Args:
            host: The workspace URL; a host without a scheme gets ``https://``.
            token: A personal access token.
            profile: A ``~/.databrickscfg`` profile to read (overrides ``DATABRICKS_CONFIG_PROFILE``).
            env: The environment to read (default ``os.environ``).

        Raises:
            ConfigError: something is missing, or the profile does not exist.
        """
        env = os.environ if env is None else env
        sources = []
        if host or token:
            sources.append("arguments")
        # The environment is consulted only where no profile was asked for: naming a profile
        # means "use that profile", as the Databricks CLI does.
        if profile is None:
            env_host, env_token = env.get("DATABRICKS_HOST"), env.get("DATABRICKS_TOKEN")
            if (env_host and not host) or (env_token and not token):
                sources.append("environment")
            host = host or env_host or None
            token = token or env_token or None

        profile_name = profile or env.get("DATABRICKS_CONFIG_PROFILE") or None
        path = Path(env.get("DATABRICKS_CONFIG_FILE") or Path.home() / ".databrickscfg").expanduser()
        used_profile: str | None = None
        if not (host and token) or profile_name:
            parser = _read_profiles(path)
            name = profile_name or "DEFAULT"
            section = _profile_section(parser, name, path, explicit=profile_name is not None)
            if section is not None:
                file_host, file_token = section.get("host"), section.get("token")
                if (file_host and not host) or (file_token and not token):
                    used_profile = name
                    sources.append(f"profile [{name}] of {path}")
                host = host or file_host or None
                token = token or file_token or None

        if not host or not token:
            missing = " and ".join(what for what, value in (("host", host), ("token", token)) if not value)
            found = _profile_names(path)
            where = f"profiles in {path}: {', '.join(found)}" if found else f"no profiles in {path}"
            raise ConfigError(
                f"No Databricks {missing} configured: set DATABRICKS_HOST and DATABRICKS_TOKEN, "
                f"or name a profile with --profile / DATABRICKS_CONFIG_PROFILE ({where}); "
                "to try dbx-magic without a workspace, run %dbx_sandbox."
            )
        return cls(
            host=normalise_host(host),
            token=token.strip(),
            profile=used_profile,
            source=", ".join(sources) or "arguments",
        )


def _read_profiles(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section="__no_default__")
    if path.is_file():
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise ConfigError(
                f"The profile file {path} is not valid INI ({type(exc).__name__}): fix or move it."
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
