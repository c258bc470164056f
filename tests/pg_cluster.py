"""A private PostgreSQL cluster that a test may stop and start again.

The machine's shared PostgreSQL (``FERROUS_TEST_POSTGRES_URL``) serves other tests running
at the same time, so a test that needs the database to go away makes its own: ``initdb``
into a fresh folder, ``pg_ctl start`` on 127.0.0.1 at a free port (its Unix socket in that
folder too, never in /var/run/postgresql), ``fsync=off`` (a test's data need not survive a
power cut). ``stop()`` is ``pg_ctl stop -m fast``: the clients' connections are closed, as in
a restart for maintenance; ``start()`` brings it back on the same port with the same data.

The binaries are Debian's (``/usr/lib/postgresql/<version>/bin``, the newest there) or
whatever ``initdb`` is on PATH. PostgreSQL refuses to run as root: as root the cluster runs
as the ``postgres`` user (``runuser``), in a folder under /tmp that it owns (pytest's
``tmp_path`` is private to root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

DEBIAN_BINARIES = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None."""
    versions = sorted(
        (path for path in DEBIAN_BINARIES.glob("*/bin") if (path / "initdb").is_file()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def unavailable() -> str | None:
    """Why a private cluster cannot run here (a skip reason), or None."""
    if binaries() is None:
        return "initdb is not installed (PostgreSQL server binaries): no private cluster"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user to run the cluster as"
        if shutil.which("runuser") is None:
            return "running as root without runuser"
    return None


class PostgresCluster:
    def __init__(self) -> None:
        bin_dir = binaries()
        assert bin_dir is not None, unavailable()
        self.bin_dir = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="ferrous-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self.running = False
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresCluster:
        options = f"-h 127.0.0.1 -p {self.port} -c fsync=off -k {self.folder}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        self.running = True
        return self

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: waits until the server is down."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        argv = [str(self.bin_dir / program), *args]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, cwd=self.folder, check=False
        )
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise AssertionError(f"{program} failed: {done.stdout}{done.stderr}\n{tail}")
