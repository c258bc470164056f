"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, in its own thread and event loop.

Usage (a fixture, or a ``with`` block)::

    with SmtpServer() as server:                         # plain SMTP, accepts everything
        ...                                              # FERROUS_SMTP_* from smtp_env(server)
        server.wait_for(1)                               # the received messages
    cert = SelfSignedCert.make(tmp_path)                 # for STARTTLS / implicit TLS
    SmtpServer(cert=cert, require_starttls=True, users={"ci": "s3cret"})
    SmtpServer(answer="451 4.3.0 try again later")       # refuse every message at DATA
    SmtpServer(refused={"x@example.com": "550 5.1.1 no such user"})  # at RCPT

Its own thread keeps it answering while a test's loop blocks, and lets the e2e tests use it
from synchronous code.
"""

from __future__ import annotations

import datetime
import email
import email.message
import email.policy
import ipaddress
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.git_servers import free_port


@dataclass(frozen=True, slots=True)
class SelfSignedCert:
    """A certificate for ``localhost`` and 127.0.0.1; ``cert`` doubles as its own CA file."""

    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path) -> SelfSignedCert:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cls(cert=cert_path, key=key_path)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@dataclass(frozen=True, slots=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    tls: bool  # whether the session was encrypted when the message came
    login: str | None  # who authenticated, if anyone


@dataclass
class RecordingHandler:
    """Keeps every accepted message; ``answer`` (e.g. "550 ...") refuses each at DATA."""

    answer: str | None = None
    refused: dict[str, str] = field(default_factory=dict)  # recipient -> RCPT answer
    messages: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refused:
            return self.refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.answer is not None:
            return self.answer
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        login = session.auth_data if isinstance(session.auth_data, bytes) else None
        transport = server.transport
        implicit = transport is not None and transport.get_extra_info("ssl_object") is not None
        with self.arrived:
            self.messages.append(
                Received(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    message=parsed,
                    tls=session.ssl is not None or implicit,
                    login=login.decode() if login else None,
                )
            )
            self.arrived.notify_all()
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1:``port``; plain, STARTTLS (``cert``) or implicit TLS."""

    def __init__(
        self,
        *,
        cert: SelfSignedCert | None = None,
        require_starttls: bool = False,
        implicit_tls: bool = False,
        users: dict[str, str] | None = None,
        answer: str | None = None,
        refused: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.handler = RecordingHandler(answer=answer, refused=refused or {})
        self.users = users
        kwargs: dict[str, Any] = {}
        if cert is not None and not implicit_tls:
            kwargs.update(tls_context=cert.server_context(), require_starttls=require_starttls)
        if cert is not None and implicit_tls:
            kwargs["ssl_context"] = cert.server_context()
        if users is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.users is not None
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=data.login)
        return AuthResult(success=False, handled=False)

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The messages once at least ``count`` arrived; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.handler.arrived:
            while len(self.handler.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.handler.messages)} messages arrived, expected {count}"
                    )
                self.handler.arrived.wait(left)
            return list(self.handler.messages)


def smtp_env(server: SmtpServer, **extra: str) -> dict[str, str]:
    """FERROUS_SMTP_* variables for ``ferrous serve`` talking plain SMTP to ``server``."""
    env = {
        "FERROUS_SMTP_HOST": "127.0.0.1",
        "FERROUS_SMTP_PORT": str(server.port),
        "FERROUS_SMTP_STARTTLS": "false",
        "FERROUS_SMTP_TIMEOUT": "5",
    }
    env.update(extra)
    return env
