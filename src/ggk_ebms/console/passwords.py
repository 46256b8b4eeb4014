"""Password hashes of console accounts: argon2id with argon2-cffi's RFC 9106 low-memory profile."""

from __future__ import annotations

import contextlib
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH: Final = 12  # NCSC ICT-beveiligingsrichtlijnen: long passphrases over complexity rules
MAX_LENGTH: Final = 1024  # hashing an unbounded input is a denial-of-service lever

_hasher: Final = PasswordHasher()


def check_new_password(password: str) -> str | None:
    """Why ``password`` is refused as a new password (Dutch), or None."""
    if len(password) < MIN_LENGTH:
        return f"een wachtwoord heeft minstens {MIN_LENGTH} tekens"
    if len(password) > MAX_LENGTH:
        return f"een wachtwoord heeft hoogstens {MAX_LENGTH} tekens"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if stored is None or len(password) > MAX_LENGTH:
        # Same cost as a real check, so the answer time does not tell that an account exists.
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY, "x" if len(password) > MAX_LENGTH else password + "x")
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY: Final = _hasher.hash("ggk-ebms dummy password, never matches")
