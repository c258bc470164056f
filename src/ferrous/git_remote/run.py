"""Run one git command; a failure becomes a ``GitFailed`` whose message holds no secret."""

from __future__ import annotations

import fcntl
import re
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ferrous.domain.errors import RepositoryUnavailable
from ferrous.git_remote.access import GitAccess

GIT_TIMEOUT = 600.0
_REFUSED = re.compile(
    r"authentication failed|could not read (username|password)|permission denied"
    r"|invalid username or password|returned error: 40[13]|host key verification failed"
    r"|access denied|terminal prompts disabled",
    re.IGNORECASE,
)
_MISSING = re.compile(
    r"not found|does not appear to be a git repository|no such (repository|file|remote ref)"
    r"|not our ref|unadvertised object|couldn't find remote ref|not a valid object"
    r"|access denied or repository not exported|bad object|unknown revision",
    re.IGNORECASE,
)


class GitFailed(RepositoryUnavailable):
    """A git command failed."""

    def __init__(self, message: str, *, detail: str = "", refused: bool = False) -> None:
        super().__init__(message)
        self.detail = detail  # git's scrubbed stderr
        self.refused = refused  # the remote refused the credentials (or asked for some)

    @property
    def missing(self) -> bool:
        """Git said the repository, ref or object does not exist (or is not ours to fetch)."""
        return bool(_MISSING.search(self.detail))


def run_git(
    args: Sequence[str],
    *,
    repo: Path | None = None,
    access: GitAccess | None = None,
    timeout: float = GIT_TIMEOUT,
) -> bytes:
    """``git [-C repo] <access config> args``; raises ``GitFailed`` with a scrubbed message."""
    argv = ["git"]
    if repo is not None:
        argv += ["-C", str(repo)]
    env = access.env() if access is not None else GitAccess("").env()
    if access is not None:
        argv += access.config
    argv += args
    scrubbed = access.scrub if access is not None else GitAccess("").scrub
    try:
        done = subprocess.run(argv, capture_output=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise GitFailed(f"git {args[0]} took longer than {timeout:g} s") from exc
    except OSError as exc:
        raise GitFailed(f"git {args[0]} could not run: {scrubbed(str(exc))}") from exc
    if done.returncode != 0:
        detail = scrubbed(done.stderr.decode("utf-8", "replace")).strip()
        lines = [line for line in detail.splitlines() if line.strip()]
        fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
        telling = [line for line in lines if _REFUSED.search(line)]
        last = (telling[:1] or fatal or lines or [f"exit code {done.returncode}"])[-1]
        refused = bool(telling)
        where = f" {access.url}" if access is not None and args[0] in ("fetch", "clone") else ""
        hint = " (the repository refused the credentials, or needs some)" if refused else ""
        raise GitFailed(
            f"git {args[0]}{where} failed{hint}: {last}", detail=detail, refused=refused
        )
    return done.stdout


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing), across threads and processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
