"""Private Redis and RabbitMQ processes that a test may kill and start again.

Each instance listens on 127.0.0.1 on free ports of its own and keeps its files under the
test's folder, so killing it never touches the shared brokers on 6379/5672 (other tests use
them in parallel). ``kill()`` is a SIGKILL (a crash: no goodbye to the clients), ``start()``
brings the broker back on the same port (RabbitMQ: the same node, with the same data
directory, so its durable exchange survives as it would in production).

RabbitMQ notes (Debian's 3.10 package):

- ``/usr/sbin/rabbitmq-server`` is a wrapper that, for root, ``su``s to the ``rabbitmq``
  user and sends the output to ``/var/log/rabbitmq``; the node is started with the script it
  wraps (``/usr/lib/rabbitmq/bin/rabbitmq-server``) instead, which runs as any user that can
  write the folders below (root included).
- ``/etc/rabbitmq/rabbitmq-env.conf`` names the shared node and ``/etc/rabbitmq/rabbitmq.conf``
  binds port 5672: a private ``RABBITMQ_CONF_ENV_FILE`` and ``RABBITMQ_CONFIG_FILE`` keep
  both out. ``HOME`` is private too (Erlang writes its cookie there).
- ``RABBITMQ_ALLOW_INPUT`` makes the script ``exec`` the Erlang VM (instead of running it in
  the background under a signal-forwarding shell), so the process we start is the node;
  ``-noinput -noshell`` keep it from reading the terminal. It runs in a session of its own,
  so one ``killpg`` of that pid also takes its helper processes.
- It registers with the shared epmd (port 4369) under a name of its own, and a node killed
  with SIGKILL is deregistered at once (epmd notices its connection close), so it can start
  again under the same name right away. A (re)start takes 4 to 10 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from contextlib import suppress
from pathlib import Path

READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BrokerProcess:
    """A broker server process: ``start()`` waits until it answers, ``kill()`` is SIGKILL."""

    kind = ""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = folder / f"{self.kind}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def answers(self) -> bool:
        """True once the broker takes clients."""
        raise NotImplementedError

    def start(self, timeout: float = READY_TIMEOUT) -> BrokerProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv(),
                env=self.env(),
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.answers():
                return self
            time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.kill()
        raise AssertionError(f"{self.kind} on port {self.port} did not come up:\n{tail}")

    def kill(self) -> None:
        """SIGKILL: the broker dies at once and its clients see their connections drop."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # the node and its helpers
        self.proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: the broker shuts down cleanly (RabbitMQ closes its clients' connections
        with ``connection.close``, as ``rabbitmqctl stop`` would); SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)
        self.kill()  # whatever is left of its session


class RedisProcess(BrokerProcess):
    kind = "redis"

    @staticmethod
    def available() -> str | None:
        """Why this cannot run here, or None."""
        return None if shutil.which("redis-server") else "redis-server is not on PATH"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        return [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.folder),
        ]

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class RabbitMQProcess(BrokerProcess):
    kind = "rabbitmq"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.dist_port = free_port()
        self.node = f"ferrous-{uuid.uuid4().hex[:10]}@localhost"
        home = folder / "home"
        home.mkdir(exist_ok=True)
        (folder / "rabbitmq-env.conf").write_text("")
        (folder / "rabbitmq.conf").write_text("")
        (folder / "enabled_plugins").write_text("[].\n")

    @staticmethod
    def script() -> Path | None:
        """The script that starts a node (not Debian's ``su`` wrapper around it)."""
        found = shutil.which("rabbitmq-server")
        if found is None:
            return None
        path = Path(found).resolve()
        if path.name == "rabbitmq-script-wrapper":
            path = path.parent / "rabbitmq-server"
        return path if path.is_file() else None

    @classmethod
    def available(cls) -> str | None:
        if cls.script() is None:
            return "rabbitmq-server is not on PATH"
        if shutil.which("erl") is None:
            return "erl (Erlang) is not on PATH"
        return None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def argv(self) -> list[str]:
        return [str(self.script())]

    def env(self) -> dict[str, str]:
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITMQ_", "ERL_"))
        }
        folder = self.folder
        return {
            **inherited,
            "HOME": str(folder / "home"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_LOGS": "-",  # to stdout, which is our log file
            "RABBITMQ_ALLOW_INPUT": "1",  # exec the VM: our pid is the node
            "RABBITMQ_SERVER_START_ARGS": "-noinput -noshell",
        }

    def answers(self) -> bool:
        """True once the node greets an AMQP client (``connection.start``): its listener
        opens only at the end of the boot."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"AMQP\x00\x00\x09\x01")
                frame = b""
                while len(frame) < 11 and (part := sock.recv(11 - len(frame))):
                    frame += part
        except OSError:
            return False
        # A method frame (type 1) on channel 0 for class 10 (connection), method 10 (start).
        return frame[:3] == b"\x01\x00\x00" and frame[7:11] == b"\x00\x0a\x00\x0a"


BROKERS: dict[str, type[RedisProcess] | type[RabbitMQProcess]] = {
    "redis": RedisProcess,
    "rabbitmq": RabbitMQProcess,
}
