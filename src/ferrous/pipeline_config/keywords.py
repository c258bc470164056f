"""The keyword tables of the pipeline language, in one place.

Lint, merge and the docs all need to agree on what a top-level key means (a global keyword or
a job) and which job keywords exist; keeping the tables here stops them drifting apart.
"""

from __future__ import annotations

from typing import Final

#: Top-level keys that are not jobs.
GLOBAL_KEYWORDS: Final = frozenset(
    {
        "stages",
        "variables",
        "default",
        "workflow",
        "include",
        "spec",
        # Deprecated globals that GitLab still reads as `default:` entries.
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
    }
)

#: Globals that GitLab treats as if they were written under `default:`.
DEPRECATED_GLOBAL_DEFAULTS: Final = ("image", "services", "cache", "before_script", "after_script")

#: Keys allowed under `default:` (GitLab's list).
DEFAULT_KEYWORDS: Final = frozenset(
    {
        "after_script",
        "artifacts",
        "before_script",
        "cache",
        "hooks",
        "id_tokens",
        "image",
        "interruptible",
        "retry",
        "services",
        "tags",
        "timeout",
    }
)

#: Every job keyword GitLab knows.
JOB_KEYWORDS: Final = frozenset(
    {
        "after_script",
        "allow_failure",
        "artifacts",
        "before_script",
        "cache",
        "coverage",
        "dast_configuration",
        "dependencies",
        "description",
        "environment",
        "except",
        "extends",
        "hooks",
        "id_tokens",
        "identity",
        "image",
        "inherit",
        "interruptible",
        "manual_confirmation",
        "needs",
        "only",
        "pages",
        "parallel",
        "release",
        "resource_group",
        "retry",
        "rules",
        "run",
        "script",
        "secrets",
        "services",
        "stage",
        "start_in",
        "tags",
        "timeout",
        "trigger",
        "variables",
        "when",
    }
)

#: Job keywords we parse and validate but that need a server feature not built yet.
#: Lint reports them as warnings so nobody believes they took effect.
NOT_EXECUTED_JOB_KEYWORDS: Final = {
    "trigger": "downstream pipelines are not supported yet: the job passes without starting one",
    "release": "releases are not created yet",
    "secrets": "external secret providers are not supported yet",
    "id_tokens": "OIDC id_tokens are not issued yet",
    "dast_configuration": "DAST profiles are not supported",
    "identity": "cloud identity federation is not supported",
    "pages": "GitLab Pages publishing is not supported",
    "hooks": "job hooks are not run yet",
    "run": "CI/CD steps (run:) are not supported yet",
    "manual_confirmation": "manual confirmation messages are not shown yet",
}

STAGE_PRE: Final = ".pre"
STAGE_POST: Final = ".post"
DEFAULT_STAGES: Final = (".pre", "build", "test", "deploy", ".post")
DEFAULT_JOB_STAGE: Final = "test"

WHEN_VALUES: Final = frozenset({"on_success", "on_failure", "always", "manual", "delayed", "never"})


def is_hidden_job(name: object) -> bool:
    """Hidden jobs (templates) start with a dot; they are never run."""
    return isinstance(name, str) and name.startswith(".")


def is_job_key(name: object) -> bool:
    return name not in GLOBAL_KEYWORDS
