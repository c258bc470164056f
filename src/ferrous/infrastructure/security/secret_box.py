"""Secrets encrypted at rest: AES-256-GCM under a ring of keys, the newest one current.

A token names its format and its key, so that keys can change while old rows stay readable:
``v1:<key id>:<base64url(nonce || ciphertext || tag)>``. The key id is the first four bytes
of the key's SHA-256, in hex: enough to pick a key, useless for guessing it. The header and a
caller's ``context`` (the owner: "project:<id>:<name>") are the associated data, so a token
copied to another row, or edited to name another key, does not decrypt.

Keys come from ``FERROUS_SECRET_KEY`` (one or more base64 keys of 32 bytes, comma-separated,
the first current) or else from ``<data dir>/secret.key``, created on first use with mode
0600, one key per line, newest first. A key file that group or others may read is refused:
its keys must be taken as exposed. ``rotate_key_file`` puts a new key in front; a running
server that meets a token of a key it does not know reloads its keys once (``reload``), so
servers need not restart in step; ``AesGcmSecretBox.rotate`` re-encrypts a token under the
current key, for a command that walks every stored secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ferrous.domain.errors import ConfigInvalid, StorageError

log = structlog.get_logger(__name__)

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_FILE = "secret.key"
SETTING = "FERROUS_SECRET_KEY"

_KEY_ID = re.compile(r"[0-9a-f]{8}")
_HEADER = "# Ferrous CI secret keys, newest first. Without them stored secrets cannot be read:\n"
_HEADER += "# back this file up, and keep it private (mode 0600).\n"


class SecretUnreadable(StorageError):
    """A secret cannot be decrypted: its key is missing or wrong, or the data was changed."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def generate_key() -> str:
    """A new random key, as it is written in ``FERROUS_SECRET_KEY`` or the key file."""
    return _b64encode(secrets.token_bytes(KEY_BYTES))


class KeyRing:
    """Keys, newest first: the first encrypts, all decrypt. Its repr shows ids, never keys."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        unique = list(dict.fromkeys(keys))
        if not unique:
            raise ConfigInvalid("no secret key is configured")
        self._ciphers: dict[str, AESGCM] = {}
        for key in unique:
            if len(key) != KEY_BYTES:
                raise ConfigInvalid(f"a secret key must be {KEY_BYTES} bytes, not {len(key)}")
            if key_id(key) in self._ciphers:  # two keys, one id: one in four billion
                raise ConfigInvalid(f"two secret keys share the id {key_id(key)}: replace one")
            self._ciphers[key_id(key)] = AESGCM(key)
        self._keys = tuple(unique)
        self.current_id = key_id(unique[0])

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._ciphers)

    @property
    def encoded(self) -> tuple[str, ...]:
        """The keys as they are written down (for the key file)."""
        return tuple(_b64encode(key) for key in self._keys)

    def cipher(self, kid: str) -> AESGCM | None:
        return self._ciphers.get(kid)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(ids={self.ids!r})"


class AesGcmSecretBox:
    """Encrypts and decrypts secret values; see the module docstring. Thread-safe.

    ``reload`` (for instance ``lambda: load_keys(setting, data_dir)``) is called once when a
    token names a key this box does not have: another server may have rotated the key file.
    """

    def __init__(self, keys: KeyRing, *, reload: Callable[[], KeyRing] | None = None) -> None:
        self.keys = keys
        self._reload = reload

    def encrypt(self, plaintext: bytes, *, context: bytes = b"") -> str:
        kid = self.keys.current_id
        cipher = self.keys.cipher(kid)
        assert cipher is not None
        header = f"{VERSION}:{kid}:"
        nonce = os.urandom(NONCE_BYTES)
        sealed = cipher.encrypt(nonce, plaintext, header.encode("ascii") + context)
        return header + _b64encode(nonce + sealed)

    def decrypt(self, token: str, *, context: bytes = b"") -> bytes:
        kid, blob = _parse(token)
        cipher = self._cipher(kid)
        header = f"{VERSION}:{kid}:".encode("ascii")
        try:
            return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], header + context)
        except InvalidTag as exc:
            raise SecretUnreadable(
                f"a secret does not decrypt with key {kid}: the key is wrong, or the secret "
                "was changed or copied from another owner"
            ) from exc

    def rotate(self, token: str, *, context: bytes = b"") -> str:
        """``token`` under the current key (unchanged if it is already); checks it decrypts."""
        plaintext = self.decrypt(token, context=context)
        if self.key_id_of(token) == self.keys.current_id:
            return token
        return self.encrypt(plaintext, context=context)

    def needs_rotation(self, token: str) -> bool:
        return self.key_id_of(token) != self.keys.current_id

    @staticmethod
    def key_id_of(token: str) -> str:
        return _parse(token)[0]

    def _cipher(self, kid: str) -> AESGCM:
        cipher = self.keys.cipher(kid)
        if cipher is None and self._reload is not None:
            self.keys = self._reload()
            cipher = self.keys.cipher(kid)
            log.info("secret_keys_reloaded", key_ids=list(self.keys.ids), wanted=kid)
        if cipher is None:
            raise SecretUnreadable(
                f"a secret was encrypted with key {kid}, which is not configured "
                f"(known: {', '.join(self.keys.ids)})"
            )
        return cipher


def load_keys(secret_key_setting: str | None, data_dir: Path) -> KeyRing:
    """The keys of ``FERROUS_SECRET_KEY`` if it is set, else of the key file (made if absent)."""
    if secret_key_setting and secret_key_setting.strip():
        parts = [part.strip() for part in secret_key_setting.split(",") if part.strip()]
        return KeyRing(_decode_key(part, f"{SETTING}, key {n}") for n, part in enumerate(parts, 1))
    path = data_dir / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    return _read_key_file(path)


def rotate_key_file(data_dir: Path) -> str:
    """Put a new key in front of the key file's keys; return its id.

    The old keys stay: they still decrypt what they encrypted, until every secret has been
    re-encrypted (``AesGcmSecretBox.rotate``) and an operator removes them by hand. An
    administrator's command: two rotations at once would keep only one of the new keys.
    """
    path = data_dir / KEY_FILE
    if not path.exists():
        raise ConfigInvalid(f"there is no secret key file at {path} to rotate")
    old = _read_key_file(path)
    new = secrets.token_bytes(KEY_BYTES)
    temporary = _write_private(path, [_b64encode(new), *old.encoded])
    try:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_folder(path.parent)
    kid = key_id(new)
    log.info("secret_key_rotated", path=str(path), key_id=kid, keys=len(old) + 1)
    return kid


def _create_key_file(path: Path) -> None:
    """Write a new key file; if another process wins the race, its file is the one kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _write_private(path, [generate_key()])
    try:
        with contextlib.suppress(FileExistsError):
            _publish(temporary, path)
            _sync_folder(path.parent)
            log.warning("secret_key_created", path=str(path), hint="back this file up")
    finally:
        temporary.unlink(missing_ok=True)


def _publish(temporary: Path, path: Path) -> None:
    """Give ``temporary`` the name ``path``, never replacing a file that is there."""
    try:
        os.link(temporary, path)  # the file appears whole, or not at all
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: create in place, still exclusive
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(temporary.read_bytes())
            os.fsync(handle.fileno())


def _write_private(path: Path, keys: list[str]) -> Path:
    """A new file beside ``path``, mode 0600 from its first byte, with ``keys``; synced."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(_HEADER + "".join(key + "\n" for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
    return temporary


def _read_key_file(path: Path) -> KeyRing:
    try:
        handle = path.open("rb")
    except OSError as exc:  # a folder, a file we may not read
        raise ConfigInvalid(f"cannot read the secret key file {path}: {exc.strerror}") from exc
    with handle:
        info = os.fstat(handle.fileno())  # of the file opened, not of what the path names now
        if not stat.S_ISREG(info.st_mode):
            raise ConfigInvalid(f"the secret key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigInvalid(
                f"the secret key file {path} may be read or changed by other users (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}` if nobody else "
                f"could have read it, else set a new key and rotate"
            )
        raw = handle.read()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ConfigInvalid(f"the secret key file {path} is not text") from exc
    lines = [line.strip() for line in text.splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    if not keys:
        raise ConfigInvalid(f"the secret key file {path} holds no key")
    return KeyRing(_decode_key(key, f"{path}, key {n}") for n, key in enumerate(keys, 1))


def _decode_key(text: str, where: str) -> bytes:
    """A key from base64 (URL-safe or standard, padded or not); the key never in a message."""
    try:
        key = _b64decode(text)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigInvalid(
            f"{where}: not the base64 of {KEY_BYTES} random bytes "
            "(make one with `openssl rand -base64 32`)"
        )
    return key


def _parse(token: str) -> tuple[str, bytes]:
    version, _, rest = token.partition(":")
    kid, _, body = rest.partition(":")
    if version != VERSION:  # never quoted: it may be a plaintext stored by mistake
        raise SecretUnreadable("a secret is not in a format this server knows")
    if not _KEY_ID.fullmatch(kid):
        raise SecretUnreadable("a secret names no valid key id")
    try:
        blob = _b64decode(body)
    except (binascii.Error, ValueError) as exc:
        raise SecretUnreadable("a secret's data is not base64") from exc
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise SecretUnreadable("a secret's data is too short")
    return kid, blob


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Either alphabet, padded or not; strict: any other character is an error, not skipped."""
    stripped = text.rstrip("=")
    standard = stripped.translate(str.maketrans("-_", "+/"))
    return binascii.a2b_base64(standard + "=" * (-len(standard) % 4), strict_mode=True)


def _sync_folder(folder: Path) -> None:
    """Make a new or renamed file's name durable: losing the key file loses every secret."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
