"""A build knows what its ref names: a branch, a tag, or only a commit (the artifact locks
key "the latest build of a ref" by kind and name)."""

from __future__ import annotations

from ferrous.domain.ref_kind import RefKind

from .conftest import World


async def test_a_triggered_build_records_its_ref_kind(world: World) -> None:
    pipeline_id = await world.project()
    head = world.repo.git("rev-parse", "HEAD")
    world.repo.git("tag", "v1.0")

    built = {
        "branch": await world.trigger(pipeline_id, ref="main"),
        "default branch": await world.trigger(pipeline_id),
        "tag": await world.trigger(pipeline_id, ref="v1.0"),
        "tag at its commit": await world.trigger(pipeline_id, ref="v1.0", sha=head),
        "commit": await world.trigger(pipeline_id, sha=head),
    }
    assert {label: (b.ref, b.ref_kind) for label, b in built.items()} == {
        "branch": ("main", RefKind.BRANCH),
        "default branch": ("main", RefKind.BRANCH),
        "tag": ("v1.0", RefKind.TAG),
        "tag at its commit": ("v1.0", RefKind.TAG),
        "commit": (head, RefKind.COMMIT),
    }


def test_a_tag_wins_as_in_the_ref_name() -> None:
    assert RefKind.of(branch="v1", tag="v1") is RefKind.TAG
    assert RefKind.of(branch="main", tag=None) is RefKind.BRANCH
    assert RefKind.of(branch=None, tag=None) is RefKind.COMMIT
    assert [kind for kind in RefKind if kind.has_latest] == [RefKind.BRANCH, RefKind.TAG]
