"""``ferrous artifacts list | download | get`` against a real API (uvicorn in a thread) on
memory adapters, with an archive uploaded the way an agent uploads it.

A download is renamed onto its target only once its sha256 matched: a corrupt stored
archive is a clear error and leaves no file behind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from ferrous.api.app import create_app
from ferrous.cli.main import app
from ferrous.infrastructure.storage.memory import InMemoryObjectStore
from tests.unit.api.test_artifact_routes import serve_files
from tests.unit.application.test_artifacts import make_archive
from tests.unit.cli.conftest import api_in_thread


@dataclass
class Server:
    url: str
    job_id: str
    archive: bytes
    objects: InMemoryObjectStore

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--url", self.url])


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    served = serve_files(tmp_path / "repo")
    monkeypatch.setenv("FERROUS_TOKEN", served.people.tokens["admin"])
    archive = make_archive(tmp_path, {"out/app": b"binary", "out/doc/readme.md": b"# hi\n"})
    with api_in_thread(create_app(served.services)) as url:
        with httpx.Client(base_url=f"{url}/api/v1", headers=served.people.headers()) as http:
            http.post("/projects", json={"name": "demo", "repo_url": "/srv/x.git"})
            http.post("/projects/demo/builds", json={})
            token = http.post("/agent/register", json={"token": "reg", "name": "a"}).json()
            agent = {"Authorization": f"Bearer {token['token']}"}
            job = http.post("/agent/claim", headers=agent).json()
            stored = http.put(
                f"/agent/jobs/{job['job_id']}/artifacts/archive",
                params={"name": "out"},
                content=archive,
                headers={"X-Checksum-Sha256": hashlib.sha256(archive).hexdigest(), **agent},
            )
            assert stored.status_code == 201, stored.text
        yield Server(url, job["job_id"], archive, served.objects)


def test_list(server: Server) -> None:
    table = server.run("artifacts", "list", server.job_id)
    assert table.exit_code == 0, table.output
    assert "out.tar.zst" in table.output
    header, row = table.output.splitlines()
    assert (header.split()[-1], row.split()[-1]) == ("LOCKED", "False")  # its build runs
    listed = server.run("artifacts", "list", server.job_id, "--json")
    assert [a["kind"] for a in json.loads(listed.output)] == ["archive"]


def test_download_checks_the_sha256(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    done = server.run("artifacts", "download", server.job_id)
    assert done.exit_code == 0, done.output
    assert (tmp_path / "out.tar.zst").read_bytes() == server.archive

    target = tmp_path / "dl" / "mine.tar.zst"
    assert server.run("artifacts", "download", server.job_id, "-o", str(target)).exit_code == 0
    assert target.read_bytes() == server.archive

    [key] = server.objects.objects
    server.objects.objects[key] = server.archive[:-1] + bytes([server.archive[-1] ^ 1])
    broken = tmp_path / "broken.tar.zst"
    failed = server.run("artifacts", "download", server.job_id, "-o", str(broken))
    assert failed.exit_code == 1
    assert "checksum mismatch" in failed.output
    assert "the stored archive is corrupt" in failed.output
    assert not broken.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []


def test_get_one_file(server: Server, tmp_path: Path) -> None:
    printed = server.run("artifacts", "get", server.job_id, "out/doc/readme.md")
    assert (printed.exit_code, printed.stdout) == (0, "# hi\n")

    folder = tmp_path / "here"
    folder.mkdir()
    saved = server.run("artifacts", "get", server.job_id, "out/app", "-o", str(folder))
    assert saved.exit_code == 0, saved.output
    assert (folder / "app").read_bytes() == b"binary"

    missing = server.run("artifacts", "get", server.job_id, "out/nope")
    assert missing.exit_code == 1
    assert "not in the archive" in missing.output
    unknown = server.run("artifacts", "list", "no-such-job")
    assert unknown.exit_code == 1
    assert "404" in unknown.output
