"""The sandbox executor: the shell executor's bash sessions, run inside bubblewrap.

The job sees this machine's whole file system read-only, a private writable ``/tmp`` and its
workspace, bound read-write under ``/tmp``; nothing else it writes survives the step. Inside:

    /                                  the host's root, read-only (``--ro-bind / /``)
    /proc, /dev                        fresh (``--proc``, ``--dev``)
    /tmp                               a private tmpfs, gone with the step (HOME points here)
    /tmp/ferrous/builds/<name>         the workspace, read-write (CI_PROJECT_DIR, the cwd)
    /tmp/ferrous/scripts/<script>      the step's script, read-only

Paths are mounted under ``/tmp`` because the read-only root cannot grow a new top-level
folder. Variables that name the workspace on the host (``CI_PROJECT_DIR``, and anything the
job runner expanded from it) are rewritten to the inside path, and ``CI_BUILDS_DIR`` to its
parent, so the job sees one consistent layout.

The job runs in its own PID namespace (``--unshare-pid``): when its first process ends, the
kernel kills everything left inside, even what escaped the process group with ``setsid``;
``--die-with-parent`` does the same if the agent dies. Bubblewrap itself ignores SIGTERM
(``env --ignore-signal``) so that a cancel's SIGTERM reaches the job's processes, which get
their grace period, while the sandbox stays up around them; the SIGKILL ends it all.

Resource limits are set with util-linux ``prlimit`` just before bash starts. The kernel never
applies the process limit to root, so when the agent runs as root the job runs as an
unprivileged user (``uid``, nobody by default, via ``setpriv``) that owns the workspace; that
user also cannot read root's private files. The process limit counts every process of that
user on the machine: concurrent jobs under one uid share it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from ferrous.agent.shell import ShellExecutor
from ferrous.domain.errors import ExecutionError

INSIDE_ROOT = PurePosixPath("/tmp/ferrous")
INSIDE_BUILDS = INSIDE_ROOT / "builds"
INSIDE_SCRIPTS = INSIDE_ROOT / "scripts"
INSIDE_HOME = "/tmp"
NOBODY = 65534
TOOLS = ("bwrap", "prlimit", "setpriv", "env")


class SandboxLimits(NamedTuple):
    """Resource limits of every process in the sandbox; ``None`` leaves one as inherited."""

    processes: int | None = 1024  # RLIMIT_NPROC (threads count too), per uid on the machine
    open_files: int | None = 4096  # RLIMIT_NOFILE
    address_space: int | None = 8 << 30  # RLIMIT_AS, bytes of virtual memory per process
    cpu_seconds: int | None = 3600  # RLIMIT_CPU, CPU time per process

    def prlimit_options(self) -> list[str]:
        options = {
            "--nproc": self.processes,
            "--nofile": self.open_files,
            "--as": self.address_space,
            "--cpu": self.cpu_seconds,
        }
        return [f"{flag}={value}" for flag, value in options.items() if value is not None]


@functools.lru_cache(maxsize=1)
def sandbox_problem() -> str | None:
    """Why sandboxes cannot run here (a missing tool, namespaces refused), or None."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"the sandbox executor needs {', '.join(missing)} (Debian: bubblewrap, util-linux)"
    probe = [str(shutil.which("bwrap")), "--ro-bind", "/", "/", "--unshare-pid", "--", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap does not run here: {exc}"
    if done.returncode != 0:
        return f"bwrap does not run here: {done.stderr.decode(errors='replace').strip()}"
    return None


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """Give the workspace to the job's user. A file hard-linked from outside it (the agent's
    git cache links its pack files into workspaces) is copied first: the job's user must own
    nothing that outlives the workspace, or a job could alter what later jobs fetch."""
    os.chown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if info.st_nlink > 1 and stat.S_ISREG(info.st_mode):
                private = f"{path}.unlinked"
                shutil.copy2(path, private)
                os.replace(private, path)
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


class SandboxExecutor(ShellExecutor):
    """Runs steps with bash inside bubblewrap; see ``ferrous.agent.executor`` for the contract."""

    name = "sandbox"

    def __init__(
        self,
        *,
        scratch_dir: Path,
        label: str = "job",
        kill_grace: float = 5.0,
        shell: str = "bash",
        network: bool = True,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008  # immutable
        uid: int = NOBODY,
        gid: int = NOBODY,
    ) -> None:
        super().__init__(scratch_dir=scratch_dir, label=label, kill_grace=kill_grace, shell=shell)
        self.network = network
        self.limits = limits
        #: The job's user when the agent runs as root (ignored otherwise: it cannot switch).
        self._user = (uid, gid) if os.geteuid() == 0 else None
        self._given_workspace = Path()
        self._host_workspace: Path | None = None
        self._tools: dict[str, str] = {}

    @property
    def inside_workspace(self) -> PurePosixPath:
        """The workspace's path as the job sees it."""
        if self._host_workspace is None:
            raise ExecutionError("SandboxExecutor.inside_workspace read before prepare")
        return INSIDE_BUILDS / self._host_workspace.name

    def prepare(self, workspace: Path) -> None:
        for tool in TOOLS:
            found = shutil.which(tool)
            if found is None:
                package = "bubblewrap" if tool == "bwrap" else "util-linux/coreutils"
                raise ExecutionError(
                    f"the sandbox executor needs {tool}, not found on PATH (install {package})"
                )
            self._tools[tool] = found
        super().prepare(workspace)
        self._given_workspace = workspace
        self._host_workspace = workspace.resolve()
        if self._user is not None:
            try:
                _chown_tree(self._host_workspace, *self._user)
            except OSError as exc:
                raise ExecutionError(f"cannot hand the workspace to the job's user: {exc}") from exc

    def _command(self, shell: str, script: Path) -> list[str]:
        assert self._host_workspace is not None  # run() checks prepare() was called
        script.chmod(0o644)  # readable by the job's user
        inside_script = str(INSIDE_SCRIPTS / script.name)
        tools = self._tools
        argv = [tools["env"], "--ignore-signal=TERM", tools["bwrap"], "--die-with-parent"]
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        if not self.network:
            argv.append("--unshare-net")
        argv += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        argv += ["--perms", "1777", "--tmpfs", "/tmp"]
        for folder in (INSIDE_ROOT, INSIDE_BUILDS, INSIDE_SCRIPTS):  # else 0700, root's
            argv += ["--perms", "0755", "--dir", str(folder)]
        argv += ["--bind", str(self._host_workspace), str(self.inside_workspace)]
        argv += ["--ro-bind", str(script), inside_script]
        argv += ["--chdir", str(self.inside_workspace), "--"]
        argv += [tools["env"], "--default-signal=TERM"]  # undo the ignore, for the job
        argv += [tools["prlimit"], *self.limits.prlimit_options()]
        if self._user is not None:
            uid, gid = self._user
            argv += [tools["setpriv"], f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        return [*argv, shell, "--noprofile", "--norc", inside_script]

    def _environment(self, variables: Mapping[str, str]) -> dict[str, str]:
        env = {**os.environ, "HOME": INSIDE_HOME, **variables}
        env.pop("PWD", None)  # bash takes the working directory from getcwd()
        return {name: self._inside(value) for name, value in env.items()}

    def _inside(self, value: str) -> str:
        """``value`` with the workspace's host paths replaced by the inside ones."""
        if self._host_workspace is None:
            return value
        inside = str(self.inside_workspace)
        for host in {self._given_workspace, self._host_workspace}:
            if value == str(host.parent):  # CI_BUILDS_DIR
                return str(INSIDE_BUILDS)
            value = re.sub(re.escape(str(host)) + r"(?=[/:\s]|$)", lambda _: inside, value)
        return value
