"""A ``SecretBox`` that does not encrypt (and ignores ``context``): for tests.

The text is ``plain:`` + base64, so a stored value says plainly that it is not sealed, and a
real box can refuse it (or re-seal it) instead of mistaking it for ciphertext.
"""

from __future__ import annotations

import base64
import binascii

from ferrous.domain.errors import InvalidValue

PREFIX = "plain:"


class PlaintextSecretBox:
    def encrypt(self, plaintext: bytes, *, context: bytes = b"") -> str:
        return PREFIX + base64.b64encode(plaintext).decode("ascii")

    def decrypt(self, sealed: str, *, context: bytes = b"") -> bytes:
        if not sealed.startswith(PREFIX):
            raise InvalidValue("this value was not stored by the plaintext secret box")
        try:
            return base64.b64decode(sealed.removeprefix(PREFIX), validate=True)
        except binascii.Error as exc:
            raise InvalidValue("a stored secret is damaged") from exc
