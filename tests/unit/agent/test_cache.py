from __future__ import annotations

from pathlib import Path

from ferrous.agent.cache import (
    LocalCacheStore,
    cache_key,
    files_hash,
    folder_name,
    restore_caches,
    save_caches,
)
from ferrous.pipeline_config.plan import Cache


def make(root: Path, **files: str) -> None:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def test_key_files_hash_is_stable_and_follows_content(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    make(one, **{"package-lock.json": "v1", "Gemfile.lock": "g"})
    make(two, **{"package-lock.json": "v1", "Gemfile.lock": "g"})
    cache = Cache(key_files=("package-lock.json", "Gemfile.lock"), paths=("x",))
    key = cache_key(cache, one, {})
    assert len(key) == 40
    assert key == cache_key(cache, two, {})  # same content, another folder: same key
    assert key == files_hash(one, ["Gemfile.lock", "package-lock.json"])
    make(two, **{"package-lock.json": "v2"})
    assert cache_key(cache, two, {}) != key


def test_key_files_prefix_and_missing_files(tmp_path: Path) -> None:
    make(tmp_path, **{"go.sum": "x"})
    cache = Cache(key_files=("go.sum",), key_prefix="$CI_JOB_NAME")
    assert cache_key(cache, tmp_path, {"CI_JOB_NAME": "test"}).startswith("test-")
    missing = Cache(key_files=("nope.lock",), key_prefix="p")
    assert cache_key(missing, tmp_path, {}) == "p-default"
    assert cache_key(Cache(key_files=("nope",)), tmp_path, {}) == "default"


def test_plain_keys_expand_variables(tmp_path: Path) -> None:
    cache = Cache(key="deps-$CI_COMMIT_REF_SLUG")
    assert cache_key(cache, tmp_path, {"CI_COMMIT_REF_SLUG": "main"}) == "deps-main"
    assert cache_key(Cache(key="$UNSET"), tmp_path, {}) == "default"


def test_folder_names_are_safe_and_distinct() -> None:
    names = [folder_name(k) for k in ("a/b", "a%2Fb", "..", ".", "a b", "a/../b")]
    assert len(set(names)) == len(names)
    assert all("/" not in n and n not in (".", "..") for n in names)


def test_save_then_restore_with_fallback(tmp_path: Path) -> None:
    store = LocalCacheStore(tmp_path / "cache")
    first = tmp_path / "first"
    make(first, **{"vendor/lib.a": "built", "vendor/sub/x": "y"})
    seen: list[str] = []
    save_caches(
        [Cache(key="main", paths=("vendor/",))],
        store,
        first,
        {},
        succeeded=True,
        untracked=list,
        note=seen.append,
    )
    assert store.has("main")
    second = tmp_path / "second"
    second.mkdir()
    cache = Cache(key="feature", paths=("vendor/",), fallback_keys=("main",))
    restore_caches([cache], store, second, {}, seen.append)
    assert (second / "vendor/lib.a").read_text() == "built"
    assert "Successfully extracted cache main (fallback for feature)" in seen


def test_a_missing_cache_is_only_a_note(tmp_path: Path) -> None:
    store = LocalCacheStore(tmp_path / "cache")
    seen: list[str] = []
    restore_caches([Cache(key="k", paths=("x",))], store, tmp_path, {}, seen.append)
    assert any("No cache found for k" in line for line in seen)


def test_policy_and_when_decide_saving(tmp_path: Path) -> None:
    store = LocalCacheStore(tmp_path / "cache")
    make(tmp_path / "ws", x="1")
    ws = tmp_path / "ws"
    seen: list[str] = []

    def save(cache: Cache, succeeded: bool) -> None:
        save_caches([cache], store, ws, {}, succeeded=succeeded, untracked=list, note=seen.append)

    save(Cache(key="pull", paths=("x",), policy="pull"), True)
    save(Cache(key="failed-only", paths=("x",), when="on_failure"), True)
    save(Cache(key="on-success", paths=("x",)), False)
    assert not store.has("pull")
    assert not store.has("failed-only")
    assert not store.has("on-success")
    save(Cache(key="always", paths=("x",), when="always"), False)
    save(Cache(key="push", paths=("x",), policy="push"), True)
    assert store.has("always")
    assert store.has("push")
    # a push-only cache is never restored
    target = tmp_path / "target"
    target.mkdir()
    restore_caches([Cache(key="push", paths=("x",), policy="push")], store, target, {}, seen.append)
    assert not (target / "x").exists()
