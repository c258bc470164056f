"""The email channel against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from ferrous.domain.notification import (
    EVENT_FAILED,
    EVENT_RECOVERED,
    EVENT_TEST,
    BuildNotice,
    DueNotification,
    FailedJob,
    NotifyChannel,
    SendOutcome,
)
from ferrous.infrastructure.notify.email import (
    SmtpConfig,
    SmtpEmailChannel,
    UnconfiguredEmailChannel,
)
from ferrous.infrastructure.notify.email_message import build_message, subject
from tests.git_servers import free_port
from tests.smtp import SelfSignedCert, SmtpServer

PASSWORD = "s3cret-Pa55word"


def due(
    target: str = "alice@example.com, bob@example.com",
    *,
    delivery_id: str = "d-0001",
    event: str = EVENT_FAILED,
    **notice: object,
) -> DueNotification:
    fields: dict[str, object] = {
        "project_id": "p1",
        "project_name": "demo",
        "pipeline_name": "default",
        "build_id": "b-42",
        "build_number": 42,
        "status": "failed",
        "previous_status": "success",
        "ref": "main",
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "commit_message": "Fix <script>alert(1)</script> & more\n\nbody",
        "commit_author": "Alice",
        "duration_seconds": 83.4,
        "failed_jobs": (
            FailedJob(
                name="test: [3.11]", stage="test", failure_reason="script_failure", exit_code=1
            ),
        ),
        "url": "http://ci.example/builds/b-42",
    }
    fields.update(notice)
    return DueNotification(
        delivery_id=delivery_id,
        rule_id="r1",
        project_id="p1",
        channel=NotifyChannel.EMAIL,
        target=target,
        secret=None,
        event=event,
        notice=BuildNotice(**fields),  # type: ignore[arg-type]
        attempts=0,
        created_at=datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
    )


def config(server: SmtpServer, **changes: object) -> SmtpConfig:
    base = SmtpConfig(host="127.0.0.1", port=server.port, starttls=False, timeout=5.0)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCert:
    return SelfSignedCert.make(tmp_path_factory.mktemp("smtp-cert"))


@pytest.fixture
def plain() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


async def test_a_delivery_arrives_with_subject_recipients_id_and_both_parts(
    plain: SmtpServer,
) -> None:
    result = await SmtpEmailChannel(config(plain)).send(due())
    assert result.outcome is SendOutcome.DELIVERED, result
    assert result.error is None
    (received,) = plain.wait_for(1)
    message = received.message
    assert received.rcpt_tos == ["alice@example.com", "bob@example.com"]
    assert received.mail_from == "ferrous@localhost"
    assert message["Subject"] == "[demo] Build #42 failed on main"
    assert message["To"] == "alice@example.com, bob@example.com"
    assert message["From"] == "Ferrous CI <ferrous@localhost>"
    assert message["Message-ID"] == "<d-0001@ferrous>"
    assert message["X-Ferrous-Delivery"] == "d-0001"
    assert message["X-Ferrous-Event"] == EVENT_FAILED
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] == "Fri, 27 Nov 2026 12:00:00 +0000"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    page = message.get_body(preferencelist=("html",))
    assert text is not None
    assert page is not None
    plain_body, html_body = text.get_content(), page.get_content()
    for body in (plain_body, html_body):
        assert "http://ci.example/builds/b-42" in body
        assert "test: [3.11] (stage test): script failure, exit code 1" in body
        assert "1m 23s" in body
    assert "<script>" in plain_body  # plain text is shown as is
    assert "<script>" not in html_body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html_body
    assert "body" not in plain_body.split("Commit:")[1].splitlines()[0]  # first line only


async def test_a_resend_is_the_same_message(plain: SmtpServer) -> None:
    channel = SmtpEmailChannel(config(plain))
    for _ in range(2):
        assert (await channel.send(due())).outcome is SendOutcome.DELIVERED
    first, second = plain.wait_for(2)
    assert first.message.as_bytes() == second.message.as_bytes()


def test_subjects_use_gitlab_words() -> None:
    assert subject(due(status="success", previous_status="failed", event=EVENT_RECOVERED)) == (
        "[demo] Build #42 fixed on main"
    )
    assert subject(due(status="success")) == "[demo] Build #42 succeeded on main"
    assert subject(due(status="canceled")) == "[demo] Build #42 was canceled on main"
    assert subject(due(event=EVENT_TEST)) == "[demo] Test notification from Ferrous CI"
    assert subject(due(project_name="evil\r\nBcc: x@y", ref="a\nb")) == (
        "[evil Bcc: x@y] Build #42 failed on a b"
    )


def test_a_ping_says_it_is_a_test() -> None:
    message = build_message(due(event=EVENT_TEST), "ci@example.com")
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert "test notification" in body.get_content()


async def test_starttls_with_the_certificate_trusted(cert: SelfSignedCert) -> None:
    with SmtpServer(cert=cert, require_starttls=True) as server:
        channel = SmtpEmailChannel(config(server, starttls=True, ca_file=cert.cert))
        result = await channel.send(due())
        assert result.outcome is SendOutcome.DELIVERED, result
        (received,) = server.wait_for(1)
        assert received.tls


async def test_starttls_without_verification(cert: SelfSignedCert) -> None:
    with SmtpServer(cert=cert, require_starttls=True) as server:
        channel = SmtpEmailChannel(config(server, starttls=True, verify_certificate=False))
        assert (await channel.send(due())).outcome is SendOutcome.DELIVERED
        assert server.wait_for(1)[0].tls


async def test_an_untrusted_certificate_is_refused(cert: SelfSignedCert) -> None:
    with SmtpServer(cert=cert) as server:
        result = await SmtpEmailChannel(config(server, starttls=True)).send(due())
        assert result.outcome is SendOutcome.REFUSED
        assert result.error is not None
        assert "certificate does not verify" in result.error
        assert server.messages == []


async def test_no_starttls_offered_means_no_mail_in_clear(plain: SmtpServer) -> None:
    channel = SmtpEmailChannel(config(plain, starttls=True, username="ci", password=PASSWORD))
    with structlog.testing.capture_logs() as logs:
        result = await channel.send(due())
    assert result.outcome is SendOutcome.REFUSED
    assert result.error is not None
    assert "does not offer STARTTLS" in result.error
    assert plain.messages == []
    assert logs
    assert PASSWORD not in repr(logs)


async def test_a_server_that_requires_starttls_refuses_plaintext(cert: SelfSignedCert) -> None:
    with SmtpServer(cert=cert, require_starttls=True) as server:
        result = await SmtpEmailChannel(config(server, starttls=False)).send(due())
        assert result.outcome is SendOutcome.REFUSED
        assert result.response_status == 530
        assert server.messages == []


async def test_implicit_tls(cert: SelfSignedCert) -> None:
    with SmtpServer(cert=cert, implicit_tls=True) as server:
        channel = SmtpEmailChannel(config(server, implicit_tls=True, ca_file=cert.cert))
        assert (await channel.send(due())).outcome is SendOutcome.DELIVERED
        assert server.wait_for(1)[0].tls


async def test_auth_over_starttls(cert: SelfSignedCert) -> None:
    with SmtpServer(cert=cert, require_starttls=True, users={"ci": PASSWORD}) as server:
        good = config(server, starttls=True, ca_file=cert.cert, username="ci", password=PASSWORD)
        assert (await SmtpEmailChannel(good).send(due())).outcome is SendOutcome.DELIVERED
        (received,) = server.wait_for(1)
        assert received.login == "ci"
        assert received.tls
        assert PASSWORD not in repr(good)

        bad = dataclasses.replace(good, password="wrong-" + PASSWORD)
        with structlog.testing.capture_logs() as logs:
            result = await SmtpEmailChannel(bad).send(due(delivery_id="d-0002"))
        assert result.outcome is SendOutcome.REFUSED
        assert result.response_status == 535
        assert PASSWORD not in f"{result!r} {logs!r}"
        assert len(server.messages) == 1


async def test_auth_is_not_offered_in_clear(cert: SelfSignedCert) -> None:
    with SmtpServer(cert=cert, users={"ci": PASSWORD}) as server:
        channel = SmtpEmailChannel(config(server, username="ci", password=PASSWORD))
        result = await channel.send(due())
        assert result.outcome is SendOutcome.REFUSED
        assert result.error is not None
        assert "AUTH" in result.error
        assert server.messages == []


async def test_a_451_is_tried_again() -> None:
    with SmtpServer(answer="451 4.3.0 mailbox busy, try later") as server:
        result = await SmtpEmailChannel(config(server)).send(due())
    assert result.outcome is SendOutcome.RETRY
    assert result.response_status == 451
    assert result.error == "451 4.3.0 mailbox busy, try later"


async def test_a_550_fails_with_the_server_answer() -> None:
    with SmtpServer(answer="550 5.1.1 no such user") as server:
        result = await SmtpEmailChannel(config(server)).send(due())
    assert result.outcome is SendOutcome.REFUSED
    assert result.response_status == 550
    assert result.error == "550 5.1.1 no such user"


async def test_every_recipient_refused() -> None:
    refused = {
        "alice@example.com": "553 5.1.3 bad address",
        "bob@example.com": "550 5.1.1 no such user",
    }
    with SmtpServer(refused=refused) as server:
        result = await SmtpEmailChannel(config(server)).send(due())
        assert result.outcome is SendOutcome.REFUSED
        assert result.error is not None
        assert "553 5.1.3 bad address" in result.error
        transient = {"alice@example.com": "450 4.2.1 try later"}
        server.handler.refused = transient | {"bob@example.com": "550 no"}
        result = await SmtpEmailChannel(config(server)).send(due())
        assert result.outcome is SendOutcome.RETRY
        assert server.messages == []


async def test_some_recipients_refused_is_delivered_to_the_others() -> None:
    with SmtpServer(refused={"bob@example.com": "550 5.1.1 no such user"}) as server:
        with structlog.testing.capture_logs() as logs:
            result = await SmtpEmailChannel(config(server)).send(due())
        assert [entry["event"] for entry in logs] == ["email_recipients_refused"]
        assert result.outcome is SendOutcome.DELIVERED
        assert result.error == "bob@example.com: 550 5.1.1 no such user"
        assert server.wait_for(1)[0].rcpt_tos == ["alice@example.com"]


async def test_no_server_is_tried_again() -> None:
    config_ = SmtpConfig(host="127.0.0.1", port=free_port(), starttls=False, timeout=2.0)
    result = await SmtpEmailChannel(config_).send(due())
    assert result.outcome is SendOutcome.RETRY
    assert result.error is not None
    assert "ConnectionRefused" in result.error


async def test_a_silent_server_times_out_and_is_tried_again(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        config_ = SmtpConfig(host="127.0.0.1", port=port, starttls=False, timeout=0.5)
        result = await SmtpEmailChannel(config_).send(due())
        assert result.outcome is SendOutcome.RETRY
        assert result.error is not None
        assert "timed out" in result.error.lower()
    finally:
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()


async def test_email_without_a_relay_fails_saying_so() -> None:
    result = await UnconfiguredEmailChannel().send(due())
    assert result.outcome is SendOutcome.REFUSED
    assert result.error is not None
    assert "email is not configured on this server" in result.error
