"""The CLI's stored sign-ins: one personal API token per server, in the user's config dir.

``ferrous login`` keeps a token here (``$XDG_CONFIG_HOME/ferrous/credentials.json``, else
``~/.config/ferrous/credentials.json``), keyed by the server's URL, and remembers the last
server signed in to as the default one. The folder is made 0700 and the file 0600 before
anything is written to it, and the file is replaced whole (write, then rename), so no other
user can read a token, and a crash never leaves half a file.

The token a command sends: ``--token``, else ``FERROUS_TOKEN``, else the stored one for
that server, else none (public routes still answer).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

FILE_NAME = "credentials.json"


def credentials_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "ferrous" / FILE_NAME


def _read() -> dict[str, Any]:
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"servers": {}}
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
        raise ValueError(f"{path} is not a ferrous credentials file")
    return data


def _write(data: dict[str, Any]) -> Path:
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    temporary = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            os.fchmod(file.fileno(), 0o600)  # even if it existed with looser bits
            json.dump(data, file, indent=2)
            file.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return path


def stored(server: str) -> dict[str, str] | None:
    """What ``login`` kept for ``server`` (``token``, ``token_id``, ``username``), if any;
    raises ValueError when the file cannot be read."""
    entry = _read()["servers"].get(server)
    return dict(entry) if isinstance(entry, dict) and entry.get("token") else None


def default_server() -> str | None:
    """The server ``ferrous login`` last signed in to."""
    try:
        current = _read().get("current")
    except ValueError:
        return None
    return current if isinstance(current, str) else None


def store(server: str, entry: dict[str, str]) -> Path:
    """Keep ``entry`` for ``server``, which becomes the default server; the file's path."""
    data = _read()
    data["servers"][server] = entry
    data["current"] = server
    return _write(data)


def forget(server: str) -> dict[str, str] | None:
    """Drop what was kept for ``server`` (the file goes with its last entry); what it was."""
    data = _read()
    entry = data["servers"].pop(server, None)
    if entry is None:
        return None
    if data.get("current") == server:
        data.pop("current")
    if data["servers"]:
        _write(data)
    else:
        credentials_path().unlink(missing_ok=True)
    return dict(entry)


def token_for(server: str, given: str | None = None) -> str | None:
    """The token to send to ``server``: given (``--token``), FERROUS_TOKEN, or stored."""
    if given:
        return given
    from_env = os.environ.get("FERROUS_TOKEN", "").strip()
    if from_env:
        return from_env
    try:
        entry = stored(server)
    except ValueError:
        return None  # the 401 says to log in, and login says what is wrong with the file
    return entry["token"] if entry else None
