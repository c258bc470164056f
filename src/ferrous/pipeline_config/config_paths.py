"""Dotted paths that name a place in the config, for problems a UI can highlight.

Jobs live under ``jobs.<name>`` and globals under their own key (``variables.FOO``,
``workflow.rules[0].if``), the same convention every compile stage uses.
"""

from __future__ import annotations

from typing import Any

from ferrous.pipeline_config.keywords import is_job_key


def top_level_path(key: Any) -> str:
    return f"jobs.{key}" if is_job_key(key) else str(key)


def child_path(parent: str, key: Any) -> str:
    """The path of a mapping entry (the top level has no parent)."""
    return f"{parent}.{key}" if parent else top_level_path(key)


def item_path(parent: str, index: int) -> str:
    return f"{parent}[{index}]"
