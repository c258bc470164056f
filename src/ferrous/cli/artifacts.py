"""``ferrous artifacts ...``: a job's artifacts from the command line.

Downloads stream into a temporary file next to the target, hashing as they go, and are
renamed onto it only when the sha256 the server announced matches: an interrupted or
corrupt download never leaves a file that looks whole. Imports beyond Typer happen inside
the commands, so ``ferrous --help`` stays quick.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import httpx

UrlOption = Annotated[str | None, typer.Option("--url", help="Server URL (or FERROUS_URL).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
JobArgument = Annotated[str, typer.Argument(help="The job's id.")]
COLUMNS = ["kind", "name", "filename", "size", "files", "expires_at", "locked"]
_FILENAME = re.compile(r'filename="([^"]*)"')

artifacts_app = typer.Typer(
    help="A job's artifacts: list them, download the archive, fetch one file.",
    no_args_is_help=True,
)


@artifacts_app.command("list")
def artifacts_list(job_id: JobArgument, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """List the job's stored archives (`archive`, `junit`)."""
    from ferrous.cli.client import Client, print_json, print_table

    items = Client(url).get(f"/jobs/{job_id}/artifacts")["items"]
    if as_json:
        print_json(items)
    else:
        print_table(items, COLUMNS)


@artifacts_app.command("download")
def artifacts_download(
    job_id: JobArgument,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="File (or folder) to write; default: its name."),
    ] = None,
    kind: Annotated[str, typer.Option(help="archive or junit.")] = "archive",
    url: UrlOption = None,
) -> None:
    """Download the job's archive (`.tar.zst`), checking its sha256."""
    from ferrous.cli.client import Client, fail

    client = Client(url)
    with client.stream(
        "GET", f"/jobs/{job_id}/artifacts/download", params={"kind": kind}
    ) as response:
        expected = response.headers.get("x-checksum-sha256", "").lower()
        target = _target(output, _filename(response) or f"{job_id}-{kind}.tar.zst")
        digest, size = _save(response, target, expected)
    if expected and digest != expected:
        raise fail(
            f"checksum mismatch: the download's sha256 is {digest}, the server announced "
            f"{expected}: the stored archive is corrupt (nothing was written)"
        )
    sys.stdout.write(f"{target} ({size} bytes, sha256 {digest})\n")


@artifacts_app.command("get")
def artifacts_get(
    job_id: JobArgument,
    path: Annotated[str, typer.Argument(help="The file's path inside the archive.")],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="File (or folder) to write; default: stdout."),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Print (or save with -o) one file of the job's archive."""
    from ferrous.cli.client import Client

    client = Client(url)
    with client.stream("GET", f"/jobs/{job_id}/artifacts/files/{path}") as response:
        if output is None:
            for chunk in response.iter_bytes():
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return
        target = _target(output, Path(path).name)
        _, size = _save(response, target, "")
    sys.stderr.write(f"{target} ({size} bytes)\n")


def _filename(response: httpx.Response) -> str | None:
    found = _FILENAME.search(response.headers.get("content-disposition", ""))
    name = Path(found.group(1)).name if found else ""
    return name if name not in ("", ".", "..") else None


def _target(output: Path | None, name: str) -> Path:
    if output is None:
        return Path(name)
    return output / name if output.is_dir() else output


def _save(response: httpx.Response, target: Path, expected: str) -> tuple[str, int]:
    """Stream the body into a temporary file beside ``target``; rename it onto ``target``
    only when complete (and, with ``expected``, matching). Returns (sha256, size)."""
    from ferrous.cli.client import fail

    digest = hashlib.sha256()
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115  # renamed or removed below
        dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
    )
    part = Path(handle.name)
    try:
        with handle:
            size = _copy(response, handle, digest)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) != size:
            raise fail(f"the download stopped after {size} of {declared} bytes; try again")
        if not expected or digest.hexdigest() == expected:
            part.replace(target)
    finally:
        part.unlink(missing_ok=True)
    return digest.hexdigest(), size


def _copy(response: httpx.Response, sink: IO[bytes], digest: hashlib._Hash) -> int:
    size = 0
    for chunk in response.iter_bytes():
        digest.update(chunk)
        sink.write(chunk)
        size += len(chunk)
    return size
