from __future__ import annotations

import base64
import os
import re
import stat
import threading
from pathlib import Path

import pytest

from ferrous.domain.errors import ConfigInvalid, FerrousError, StorageError
from ferrous.infrastructure.security.secret_box import (
    KEY_FILE,
    AesGcmSecretBox,
    KeyRing,
    SecretUnreadable,
    generate_key,
    key_id,
    load_keys,
    rotate_key_file,
)

OWNER = b"project:7:DEPLOY_TOKEN"


def ring(*keys: str) -> KeyRing:
    return load_keys(",".join(keys), Path("/nonexistent"))


@pytest.fixture
def box() -> AesGcmSecretBox:
    return AesGcmSecretBox(ring(generate_key()))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip(box: AesGcmSecretBox) -> None:
    for plaintext in (b"hunter2-hunter2", b"", "clé ü".encode(), os.urandom(5000)):
        token = box.encrypt(plaintext, context=OWNER)
        assert box.decrypt(token, context=OWNER) == plaintext


def test_the_token_names_its_format_and_key_and_hides_the_value(box: AesGcmSecretBox) -> None:
    token = box.encrypt(b"hunter2-hunter2")
    assert re.fullmatch(r"v1:[0-9a-f]{8}:[A-Za-z0-9_-]+", token)
    assert token.split(":")[1] == box.keys.current_id
    assert box.key_id_of(token) == box.keys.current_id
    assert box.encrypt(b"hunter2-hunter2") != token  # a fresh nonce each time
    assert b"hunter2" not in base64.urlsafe_b64decode(token.split(":")[2] + "==")


def test_a_token_only_decrypts_for_its_owner(box: AesGcmSecretBox) -> None:
    token = box.encrypt(b"value", context=OWNER)
    for other in (b"project:8:DEPLOY_TOKEN", b"project:7:OTHER", b""):
        with pytest.raises(SecretUnreadable):
            box.decrypt(token, context=other)


@pytest.mark.parametrize("where", ["body", "version", "key id", "truncated", "not base64"])
def test_a_changed_token_does_not_decrypt(box: AesGcmSecretBox, where: str) -> None:
    token = box.encrypt(b"value", context=OWNER)
    version, kid, body = token.split(":")
    changed = {
        "body": f"{version}:{kid}:{body[:10]}{'A' if body[10] != 'A' else 'B'}{body[11:]}",
        "version": f"v2:{kid}:{body}",
        "key id": f"{version}:{kid[:-1]}x:{body}",
        "truncated": f"{version}:{kid}:{body[:20]}",
        "not base64": f"{version}:{kid}:{body[:10]}!{body[11:]}",
    }[where]
    with pytest.raises(SecretUnreadable):
        box.decrypt(changed, context=OWNER)


def test_a_token_relabelled_with_another_known_key_does_not_decrypt() -> None:
    first, second = generate_key(), generate_key()
    box = AesGcmSecretBox(ring(first, second))
    token = box.encrypt(b"value")
    other_id = ring(second).current_id
    with pytest.raises(SecretUnreadable):
        box.decrypt(token.replace(box.keys.current_id, other_id, 1))


def test_another_key_cannot_decrypt_and_says_which_key_is_missing(box: AesGcmSecretBox) -> None:
    token = box.encrypt(b"value")
    stranger = AesGcmSecretBox(ring(generate_key()))
    with pytest.raises(SecretUnreadable, match=box.keys.current_id) as caught:
        stranger.decrypt(token)
    assert isinstance(caught.value, StorageError)
    assert isinstance(caught.value, FerrousError)


def test_rotation_re_encrypts_under_the_current_key() -> None:
    old, new = generate_key(), generate_key()
    before = AesGcmSecretBox(ring(old))
    token = before.encrypt(b"value", context=OWNER)
    after = AesGcmSecretBox(ring(new, old))
    assert after.decrypt(token, context=OWNER) == b"value"  # old keys still decrypt
    assert after.needs_rotation(token)
    rotated = after.rotate(token, context=OWNER)
    assert after.key_id_of(rotated) == key_id(base64.urlsafe_b64decode(new + "="))
    assert not after.needs_rotation(rotated)
    assert after.rotate(rotated, context=OWNER) == rotated  # already current: unchanged
    assert AesGcmSecretBox(ring(new)).decrypt(rotated, context=OWNER) == b"value"
    with pytest.raises(SecretUnreadable):
        after.rotate(token, context=b"someone else")


def test_an_unknown_key_reloads_the_keys_once() -> None:
    old, new = generate_key(), generate_key()
    token = AesGcmSecretBox(ring(new, old)).encrypt(b"value")
    calls: list[int] = []

    def reload() -> KeyRing:
        calls.append(1)
        return ring(new, old)

    box = AesGcmSecretBox(ring(old), reload=reload)
    assert box.decrypt(token) == b"value"
    assert box.decrypt(token) == b"value"
    assert len(calls) == 1
    assert box.keys.current_id == ring(new).current_id  # and it now encrypts with the new key
    with pytest.raises(SecretUnreadable):
        box.decrypt(AesGcmSecretBox(ring(generate_key())).encrypt(b"x"))
    assert len(calls) == 2


def test_a_key_ring_never_shows_its_keys() -> None:
    key = generate_key()
    keys = ring(key, key)  # the same key twice counts once
    assert len(keys) == 1
    assert key not in repr(keys)
    assert keys.current_id in repr(keys)
    with pytest.raises(ConfigInvalid):
        KeyRing([b"short"])
    with pytest.raises(ConfigInvalid):
        KeyRing([])


def test_keys_from_the_setting_first_is_current(tmp_path: Path) -> None:
    first, second = generate_key(), generate_key()
    keys = load_keys(f" {first} , {second},", tmp_path)
    assert len(keys) == 2
    assert keys.current_id == ring(first).current_id
    assert not (tmp_path / KEY_FILE).exists()  # the setting wins: no key file is made


def test_a_key_in_standard_padded_base64_is_accepted(tmp_path: Path) -> None:
    raw = os.urandom(32)
    openssl_style = base64.b64encode(raw).decode()  # `openssl rand -base64 32`
    assert load_keys(openssl_style, tmp_path).current_id == key_id(raw)


@pytest.mark.parametrize(
    "setting",
    ["not base64!", base64.b64encode(bytes(range(16))).decode(), "a" * 43 + "!"],
    ids=["not-base64", "16-bytes", "bad-character"],
)
def test_a_bad_key_setting_is_refused_without_showing_it(tmp_path: Path, setting: str) -> None:
    with pytest.raises(ConfigInvalid, match="FERROUS_SECRET_KEY, key 2") as caught:
        load_keys(f"{generate_key()},{setting}", tmp_path)
    assert setting not in str(caught.value)


def test_a_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    previous = os.umask(0)  # even with a careless umask
    try:
        keys = load_keys(None, data_dir)
    finally:
        os.umask(previous)
    path = data_dir / KEY_FILE
    assert mode(path) == 0o600
    assert load_keys("", data_dir).current_id == keys.current_id  # an empty setting is unset
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE]  # no temporary file left


def test_servers_starting_together_share_one_key_file(tmp_path: Path) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        ids.append(load_keys(None, tmp_path).current_id)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8
    assert len(set(ids)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o620])
def test_a_key_file_others_may_read_is_refused(tmp_path: Path, loose: int) -> None:
    load_keys(None, tmp_path)
    path = tmp_path / KEY_FILE
    path.chmod(loose)
    with pytest.raises(ConfigInvalid, match="chmod 600"):
        load_keys(None, tmp_path)


def test_a_key_file_without_keys_or_with_a_bad_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    for text in ("# only a comment\n\n", "not a key\n"):
        path.write_text(text)
        path.chmod(0o600)
        with pytest.raises(ConfigInvalid, match=str(path)):
            load_keys(None, tmp_path)
    path.unlink()
    path.mkdir()
    with pytest.raises(ConfigInvalid, match="cannot read the secret key file"):
        load_keys(None, tmp_path)


def test_rotating_the_key_file_puts_a_new_key_in_front(tmp_path: Path) -> None:
    before = load_keys(None, tmp_path)
    token = AesGcmSecretBox(before).encrypt(b"value", context=OWNER)
    new_id = rotate_key_file(tmp_path)
    after = load_keys(None, tmp_path)
    assert after.current_id == new_id != before.current_id
    assert after.ids == (new_id, before.current_id)
    assert mode(tmp_path / KEY_FILE) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]
    box = AesGcmSecretBox(after)
    assert box.decrypt(token, context=OWNER) == b"value"
    assert box.key_id_of(box.rotate(token, context=OWNER)) == new_id


def test_rotating_without_a_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match="no secret key file"):
        rotate_key_file(tmp_path)
