"""Helpers for the agent's tests: job specs built by hand, and a sink that keeps output."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from ferrous.domain.statuses import When
from ferrous.pipeline_config.plan import JobSpec


def job(name: str = "job", **fields: Any) -> JobSpec:
    """A job spec with GitLab's defaults, stage `test`, and what the test says."""
    values: dict[str, Any] = {
        "name": name,
        "base_name": name,
        "stage": "test",
        "stage_index": 2,
        "when": When.ON_SUCCESS,
        "script": ("true",),
    }
    values.update(fields)
    for key in ("script", "before_script", "after_script"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    return JobSpec(**values)


class Collected:
    """An OutputSink that keeps everything, safe to read from the test's thread."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            self._chunks.append(data)

    @property
    def text(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", "replace")


@pytest.fixture
def sink() -> Collected:
    return Collected()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    return folder
