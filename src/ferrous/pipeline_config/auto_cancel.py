"""``workflow:auto_cancel``: what a newer pipeline of the same ref may cancel in this one.

``on_new_commit`` (``conservative``, the default; ``interruptible``; ``none``) is applied by
the server when it creates a newer build (``domain.auto_cancel``). ``workflow:rules:
auto_cancel`` of the matching rule overrides the workflow's, as in GitLab. ``on_job_failure``
is checked but not applied yet (a warning says so).
"""

from __future__ import annotations

from typing import Any

from ferrous.domain.auto_cancel import AutoCancel
from ferrous.pipeline_config.checks import Checker
from ferrous.pipeline_config.problems import Position

AUTO_CANCEL_KEYS = ("on_new_commit", "on_job_failure")
ON_JOB_FAILURE = ("none", "all")


def read_auto_cancel(check: Checker, value: Any, path: str, pos: Position) -> AutoCancel | None:
    """The ``on_new_commit`` mode, or None when the mapping does not set it (or is wrong)."""
    mapping = check.mapping(value, path, pos)
    if mapping is None:
        return None
    check.unknown_keys(mapping, AUTO_CANCEL_KEYS, path, "auto_cancel")
    if "on_job_failure" in mapping:
        where = mapping.where("on_job_failure")
        if check.choice(mapping["on_job_failure"], f"{path}.on_job_failure", where, ON_JOB_FAILURE):
            check.warning(
                f"{path}.on_job_failure",
                "auto_cancel:on_job_failure is read but not applied yet: a failed job does "
                "not cancel the rest of the pipeline",
                mapping.where_key("on_job_failure"),
            )
    if "on_new_commit" not in mapping:
        return None
    read = check.choice(
        mapping["on_new_commit"],
        f"{path}.on_new_commit",
        mapping.where("on_new_commit"),
        [mode.value for mode in AutoCancel],
    )
    return AutoCancel(read) if read else None
