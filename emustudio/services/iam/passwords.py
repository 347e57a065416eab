"""Password hashing, one way for every password the gateway checks: IAM login profiles (console
passwords) and the built-in IdP's users file (``password_hash``). scrypt with its
interactive-login parameters (16 MiB, well under a tenth of a second) and a 16-byte random salt.
"""

from __future__ import annotations

import hashlib
import secrets

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_password(password: str, salt: bytes) -> bytes:
    """Blocking (by design it costs time and memory): call it off the event loop."""
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT)


def salted_hash(password: str) -> tuple[bytes, bytes]:
    """``(salt, hash)`` of ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    return salt, hash_password(password, salt)
