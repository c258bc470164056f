"""``workflow:auto_cancel:on_new_commit``: read into the plan; a matching rule overrides it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ferrous.domain.auto_cancel import AutoCancel
from ferrous.pipeline_config.compiler import CompileResult, compile_pipeline
from ferrous.pipeline_config.context import TriggerContext

#: As in OpenMW's .gitlab-ci.yml (the corpus): protected branches keep running.
WITH_RULES = """
workflow:
  auto_cancel:
    on_new_commit: interruptible
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
      auto_cancel:
        on_new_commit: none
    - if: $CI_COMMIT_BRANCH == "release"
      auto_cancel:
        on_job_failure: all
    - when: always
job:
  script: [make]
"""


def compile_text(tmp_path: Path, text: str, branch: str = "main") -> CompileResult:
    (tmp_path / ".gitlab-ci.yml").write_text(textwrap.dedent(text))
    return compile_pipeline(tmp_path, TriggerContext(branch=branch))


def test_the_default_is_conservative(tmp_path: Path) -> None:
    result = compile_text(tmp_path, "job:\n  script: [make]\n")
    assert result.plan.auto_cancel == AutoCancel.CONSERVATIVE
    assert result.problems == []


@pytest.mark.parametrize("mode", list(AutoCancel))
def test_workflow_auto_cancel_is_applied(tmp_path: Path, mode: AutoCancel) -> None:
    text = f"workflow:\n  auto_cancel:\n    on_new_commit: {mode.value}\njob:\n  script: [x]\n"
    result = compile_text(tmp_path, text)
    assert result.plan.auto_cancel == mode
    assert result.problems == []


@pytest.mark.parametrize(
    ("branch", "mode"),
    [
        ("main", AutoCancel.NONE),  # the matching rule's
        ("release", AutoCancel.INTERRUPTIBLE),  # the rule sets no on_new_commit: workflow's
        ("feature", AutoCancel.INTERRUPTIBLE),
    ],
)
def test_the_matching_rule_overrides_the_workflow(
    tmp_path: Path, branch: str, mode: AutoCancel
) -> None:
    result = compile_text(tmp_path, WITH_RULES, branch)
    assert result.plan.auto_cancel == mode
    # on_job_failure is read, and said to be not applied yet
    [warning] = result.problems
    assert warning.severity == "warning"
    assert warning.path == "workflow.rules[1].auto_cancel.on_job_failure"
    assert "not applied yet" in warning.message


def test_wrong_values_and_keys_are_errors_with_positions(tmp_path: Path) -> None:
    text = """
    workflow:
      auto_cancel:
        on_new_commit: always
        on_push: none
      rules:
        - auto_cancel: interruptible
    job:
      script: [x]
    """
    result = compile_text(tmp_path, text)
    found = {(p.path, p.line) for p in result.problems if p.severity == "error"}
    assert found == {
        ("workflow.auto_cancel.on_new_commit", 4),
        ("workflow.auto_cancel.on_push", 5),
        ("workflow.rules[0].auto_cancel", 7),
    }
    messages = " ".join(p.message for p in result.problems)
    assert "conservative, interruptible, none" in messages
    assert result.plan.auto_cancel == AutoCancel.CONSERVATIVE
