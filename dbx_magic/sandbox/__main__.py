"""``python -m dbx_magic.sandbox [--port N] [--speed X]``: serve a sandbox workspace until Ctrl-C."""

from __future__ import annotations

from dbx_magic.sandbox.server import serve

if __name__ == "__main__":
    raise SystemExit(serve())
