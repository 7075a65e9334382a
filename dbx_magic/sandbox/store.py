"""A sandbox's state on disk: ``Sandbox(data=DIR)`` keeps its token and every change its runs went
through in DIR, and a sandbox started again on DIR plays them back, so its runs (and their ids) outlive
the process.

DIR holds ``token`` (the sandbox's access token) and ``changes.jsonl`` (one JSON object a line, as
:attr:`Workspace.recorder` gives them), both readable by the user alone.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path

from .workspace import Workspace

__all__ = ["Store"]


class Store:
    """The files of one sandbox's data directory.

    Args:
        directory: where the token and the changes are kept (made if missing, mode 0700).
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.changes = self.directory / "changes.jsonl"
        self._lock = threading.Lock()

    def token(self) -> str:
        """The sandbox's token: the one kept in the directory, else a new one written there."""
        path = self.directory / "token"
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        token = "dsbx-" + secrets.token_hex(16)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token + "\n")
        return token

    def restore(self, workspace: Workspace) -> int:
        """Play the kept changes back into ``workspace``, then record its new ones; returns how many."""
        count = 0
        if self.changes.exists():
            for line in self.changes.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    workspace.replay(json.loads(line))
                    count += 1
        workspace.recorder = self.append
        return count

    def append(self, change: dict[str, object]) -> None:
        """Keep one change (written and flushed before the request is answered)."""
        line = json.dumps(change, separators=(",", ":")) + "\n"
        with self._lock:
            fd = os.open(self.changes, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as out:
                out.write(line)
