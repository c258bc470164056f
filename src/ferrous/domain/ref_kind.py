"""What a build's ``ref`` names: a branch, a tag, or only a commit (its sha).

A tag and a branch may share a name, so the name alone does not say which builds are of the
same ref: "the latest build of a ref" is keyed by kind and name.
"""

from __future__ import annotations

from enum import StrEnum


class RefKind(StrEnum):
    BRANCH = "branch"
    TAG = "tag"
    COMMIT = "commit"  # no branch or tag: the build's ref is its sha

    @classmethod
    def of(cls, *, branch: str | None, tag: str | None) -> RefKind:
        """The kind of ``TriggerContext.ref_name`` (a tag wins, as it does there)."""
        if tag:
            return cls.TAG
        return cls.BRANCH if branch else cls.COMMIT

    @property
    def has_latest(self) -> bool:
        """Whether newer builds follow on the same ref: a commit's build is its own only one,
        so "its latest success" would keep its artifacts forever."""
        return self is not RefKind.COMMIT
