"""Git served over real protocols on 127.0.0.1, for integration and end-to-end tests.

- ``GitDaemon``: ``git daemon`` (``git://``), upload-pack only.
- ``GitHttpServer``: ``git http-backend`` behind a threaded stdlib HTTP server, plain HTTP
  on 127.0.0.1 with HTTP basic auth when given a token (the password must be the token; a
  401 with ``WWW-Authenticate`` otherwise), as a forge serves HTTPS with a token. It can
  hide protocol v2 (``protocol_v2=False``) so that, like an old server, it refuses to send
  a commit no ref points at; it records every request and the bytes it sent.
- ``SshServer``: ``sshd`` on a free port with a fresh host key and one authorized deploy
  key (``sshd_problem()`` says why it cannot run: Debian ``openssh-server`` is missing).

``ServedRepo`` is a bare repository in the served folder with a working clone to commit
from; the same folder can be served by all three at once.
"""

from __future__ import annotations

import base64
import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
}
SSHD = "/usr/sbin/sshd"


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    )
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


class ServedRepo:
    """``base/<name>.git`` (bare, served) and a working clone that commits and pushes."""

    def __init__(self, base: Path, name: str, branch: str = "main") -> None:
        self.name = name
        self.bare = base / f"{name}.git"
        self.work = base.parent / f"{base.name}-work" / name
        git("init", "-q", "--bare", "-b", branch, str(self.bare))
        git("init", "-q", "-b", branch, str(self.work))
        git("remote", "add", "origin", str(self.bare), cwd=self.work)

    def commit(self, files: dict[str, str], message: str = "change", branch: str = "main") -> str:
        """Write ``files`` (path -> text), commit them on ``branch``, push; the new sha."""
        if git("branch", "--show-current", cwd=self.work) != branch:
            git("checkout", "-q", "-B", branch, cwd=self.work)
        for name, text in files.items():
            target = self.work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "-q", "-f", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def tag(self, name: str, sha: str) -> None:
        git("tag", "-a", "-m", name, name, sha, cwd=self.work)
        git("push", "-q", "origin", f"refs/tags/{name}", cwd=self.work)


class GitDaemon:
    def __init__(self, base: Path, *, allow_sha_wants: bool = True) -> None:
        self.base = base
        self.allow_sha_wants = allow_sha_wants
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def start(self) -> GitDaemon:
        for _attempt in range(3):
            self.port = free_port()
            allow = str(self.allow_sha_wants).lower()
            config = ["-c", f"uploadpack.allowReachableSHA1InWant={allow}"]
            options = ["--reuseaddr", "--export-all", "--informative-errors"]
            options += [f"--base-path={self.base}", "--enable=upload-pack"]
            options += ["--listen=127.0.0.1", f"--port={self.port}", str(self.base)]
            self._process = subprocess.Popen(
                ["git", *config, "daemon", *options],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_for_port(self.port, self._process)
                return self
            except RuntimeError:
                self.stop()
        raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)


@dataclass
class HttpRequest:
    method: str
    path: str
    status: int
    sent: int  # response body bytes
    user: str | None  # the basic-auth user, when its password was right
    tried: str | None = None  # the password sent, right or wrong


@dataclass
class _Settings:
    base: Path
    token: str | None
    protocol_v2: bool
    allow_sha_wants: bool
    requests: list[HttpRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    settings: _Settings  # set on the subclass of each server
    tried: str | None = None

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _credentials(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user, password

    def _serve(self) -> None:
        settings = self.settings
        body = self._body()
        given = self._credentials()
        self.tried = given[1] if given else None
        user: str | None = "anonymous"
        if settings.token is not None:
            user = given[0] if given and given[1] == settings.token else None
        parts = urlsplit(self.path)
        if user is None:
            self._reply(401, {"WWW-Authenticate": 'Basic realm="git"'}, b"auth needed\n", None)
            return
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(settings.base),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": parts.path,
            "REQUEST_METHOD": self.command,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "uploadpack.allowReachableSHA1InWant",
            "GIT_CONFIG_VALUE_0": str(settings.allow_sha_wants).lower(),
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if settings.protocol_v2 and self.headers.get("Git-Protocol"):
            env["HTTP_GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        done = subprocess.run(
            ["git", "http-backend"], input=body, capture_output=True, env=env, check=False
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = done.stdout.partition(b"\n\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers[name.strip()] = value.strip()
        self._reply(status, headers, payload, user)

    def _reply(
        self, status: int, headers: dict[str, str], payload: bytes, user: str | None
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        with self.settings.lock:
            self.settings.requests.append(
                HttpRequest(self.command, self.path, status, len(payload), user, self.tried)
            )


class GitHttpServer:
    def __init__(
        self,
        base: Path,
        *,
        token: str | None = None,
        protocol_v2: bool = True,
        allow_sha_wants: bool = False,
    ) -> None:
        self.settings = _Settings(base, token, protocol_v2, allow_sha_wants)
        handler = type("Handler", (_Handler,), {"settings": self.settings})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def requests(self) -> list[HttpRequest]:
        with self.settings.lock:
            return list(self.settings.requests)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    def start(self) -> GitHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def sshd_problem() -> str | None:
    if not Path(SSHD).is_file():
        return f"{SSHD} is missing (Debian: apt-get install -y openssh-server)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "ssh or ssh-keygen is missing (Debian: openssh-client)"
    return None


class SshServer:
    """``sshd`` for the current user; ``deploy_key`` logs in, ``known_hosts`` vouches for it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = 0
        self.user = getpass.getuser()
        self.deploy_key = ""
        self.other_key = ""  # a key that is not authorized
        self.known_hosts = ""
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, bare: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{bare}"

    def _keygen(self, name: str) -> Path:
        path = self.folder / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
            check=True,
        )
        return path

    def start(self) -> SshServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        host_key, deploy, other = (self._keygen(n) for n in ("host_key", "deploy", "other"))
        self.deploy_key = deploy.read_text()
        self.other_key = other.read_text()
        (self.folder / "authorized_keys").write_text(deploy.with_suffix(".pub").read_text())
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation
        for _attempt in range(3):
            self.port = free_port()
            config = self.folder / "sshd_config"
            config.write_text(
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
                f"PidFile {self.folder / 'sshd.pid'}\n"
                f"AuthorizedKeysFile {self.folder / 'authorized_keys'}\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
                "StrictModes no\nUsePAM no\nLogLevel ERROR\nAcceptEnv GIT_PROTOCOL\n"
            )
            self._process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=(self.folder / "sshd.log").open("ab"),
            )
            try:
                wait_for_port(self.port, self._process)
            except RuntimeError:
                self.stop()
                continue
            public = host_key.with_suffix(".pub").read_text().split()
            self.known_hosts = f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n"
            return self
        raise RuntimeError(f"sshd did not start: {(self.folder / 'sshd.log').read_text()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
