"""HTTPS on a real ``ferrous serve --tls-cert --tls-key``, with a certificate made here.

A TLS 1.2+ client that trusts the certificate is served; a client held to TLS 1.1 is
refused (the same client is accepted by a TLS 1.1 server, so the refusal is the server's);
plain HTTP on the HTTPS port gets nothing. The embedded agents still run builds: they use
their own plain listener on loopback.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.auth import bearer, server_token
from tests.e2e.conftest import git_repo
from tests.e2e.server_process import ServerProcess, wait_for_build

pytestmark = pytest.mark.e2e


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


def tls11_client(cert_file: Path) -> ssl.SSLContext:
    """A client that speaks TLS 1.1 only (its ciphers allowed at security level 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cert_file)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is, indeed
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def handshake(context: ssl.SSLContext, port: int) -> str | None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
def https_server(tmp_path: Path, certificate: tuple[Path, Path]) -> Iterator[ServerProcess]:
    cert_file, key_file = certificate
    args = ("--tls-cert", str(cert_file), "--tls-key", str(key_file))
    process = ServerProcess(tmp_path / "data", agents=1, args=args).start()
    try:
        yield process
    finally:
        process.stop()


def test_https_with_tls_1_2_or_newer(
    https_server: ServerProcess, certificate: tuple[Path, Path]
) -> None:
    cert_file, _ = certificate
    assert https_server.url.startswith("https://127.0.0.1:")
    port = int(https_server.url.rsplit(":", 1)[1])
    trusting = ssl.create_default_context(cafile=str(cert_file))
    admin = bearer(server_token(https_server.url, verify=trusting))
    with httpx.Client(base_url=https_server.url, verify=trusting, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/api/v1/projects", headers=admin).status_code == 200
    assert handshake(trusting, port) in ("TLSv1.2", "TLSv1.3")
    tls12 = ssl.create_default_context(cafile=str(cert_file))
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(tls12, port) == "TLSv1.2"

    # asyncio's TLS ends the connection without an alert: an EOF mid-handshake
    with pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|protocol version|EOF"):
        handshake(tls11_client(cert_file), port)

    with pytest.raises(httpx.HTTPError):  # no plain HTTP on the HTTPS port
        httpx.get(https_server.url.replace("https://", "http://") + "/healthz", timeout=10)
    with pytest.raises(httpx.ConnectError):  # nor a certificate the client does not trust
        httpx.get(https_server.url + "/healthz", timeout=10)


def test_the_tls_1_1_client_is_able_to_speak_it(certificate: tuple[Path, Path]) -> None:
    """The control: a server that allows TLS 1.1 accepts the client refused above."""
    cert_file, key_file = certificate
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1_1
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def accept() -> None:
            conn, _ = listener.accept()
            with conn, server.wrap_socket(conn, server_side=True):
                pass

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        assert handshake(tls11_client(cert_file), listener.getsockname()[1]) == "TLSv1.1"
        thread.join(10)


def test_embedded_agents_run_builds_behind_tls(
    https_server: ServerProcess, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_text("hello:\n  script: [echo over-tls]\n")
    git_repo(repo)
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    admin = bearer(server_token(https_server.url, verify=trusting))
    api = https_server.url + "/api/v1"
    with httpx.Client(base_url=api, verify=trusting, headers=admin, timeout=30) as client:
        created = client.post("/projects", json={"name": "app", "repo_url": str(repo)})
        assert created.status_code == 201, created.text
        build = client.post("/projects/app/builds", json={}).raise_for_status().json()
        finished = wait_for_build(client, build["id"])
        assert finished["status"] == "success", finished
        [job] = finished["jobs"]
        assert "over-tls" in client.get(f"/jobs/{job['id']}/log").text
