"""Memory stays flat however large the archive: 200 MB go through pack and unpack with a few
tens of MB of peak memory growth."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ferrous.archive import entries, pack, unpack
from tests.unit.archive.conftest import reset_peak, status

TOTAL = 200 << 20
BUDGET_MB = 50


def generate(root: Path) -> list[str]:
    """Build output of sorts: big files, some random, some repetitive, and small ones."""
    files = []
    chunk = os.urandom(1 << 20)
    lines = (b"line %d of a log that compresses well\n" % i for i in range(30_000))
    text = b"".join(lines)[: 1 << 20]
    for index in range(TOTAL // (20 << 20)):
        rel = f"big/{index}.bin"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        with (root / rel).open("wb") as out:
            for part in range(20):
                out.write(chunk if (index + part) % 3 else text)
        files.append(rel)
    for index in range(500):
        rel = f"small/{index}.txt"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(text[: index * 10])
        files.append(rel)
    return files


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_pack_and_unpack_of_200_mb_stream(tmp_path: Path) -> None:
    source = tmp_path / "source"
    files = generate(source)

    started = time.perf_counter()
    before = reset_peak()
    packed = pack(source, files, tmp_path / "big.tar.zst")
    pack_growth = status("VmHWM") - before
    packed_at = time.perf_counter()

    before = reset_peak()
    with packed.path.open("rb") as archive:
        assert unpack(archive, tmp_path / "out") == len(files)
    unpack_growth = status("VmHWM") - before

    before = reset_peak()
    with packed.path.open("rb") as archive:
        listed = sum(1 for _ in entries(archive))
    list_growth = status("VmHWM") - before
    done = time.perf_counter()

    assert listed == len(files)
    assert (tmp_path / "out/big/3.bin").read_bytes() == (source / "big/3.bin").read_bytes()
    assert pack_growth < BUDGET_MB, f"pack grew by {pack_growth} MB"
    assert unpack_growth < BUDGET_MB, f"unpack grew by {unpack_growth} MB"
    assert list_growth < BUDGET_MB, f"entries grew by {list_growth} MB"
    print(
        f"200 MB: pack {packed_at - started:.2f}s +{pack_growth} MB, "
        f"unpack+list {done - packed_at:.2f}s +{unpack_growth}/{list_growth} MB"
    )
