"""Shared test fixtures.

The real-world corpus (forge payloads, pipeline files, reference fixtures) is third parties'
data: it is read in place from ``FERROUS_CORPUS`` (default ``../shared/corpus`` beside the
project) and tests that need it skip with a reason when it is absent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path | None:
    configured = os.environ.get("FERROUS_CORPUS")
    path = Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "corpus"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_dir()
    if path is None:
        reason = "real-world corpus not found: set FERROUS_CORPUS to the shared corpus folder"
        if os.environ.get("FERROUS_REQUIRE_CORPUS"):
            pytest.fail(reason)  # CI has the corpus; a missing one must not pass silently
        pytest.skip(reason)
    return path


@pytest.fixture(autouse=True)
def _logging_does_not_leak(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test that runs a command configures logging as the command would; with loggers
    cached on first use, module loggers would keep that level for the rest of the worker, and
    ``capture_logs`` in a later test would miss their debug events. So no caching in tests,
    and the defaults again after each."""
    configure = structlog.configure

    def uncached(**settings: Any) -> None:
        configure(**{**settings, "cache_logger_on_first_use": False})

    monkeypatch.setattr(structlog, "configure", uncached)
    yield
    structlog.reset_defaults()
