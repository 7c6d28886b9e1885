"""SCRAM-SHA-256 password verifiers as PostgreSQL stores them (RFC 5802, RFC 7677), made here.

The database host never needs the password: the deploying machine computes the verifier
(``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``) and sends only that. Whether
the role already has the password is decided here too, from the stored verifier's salt and a
digest of it, so neither the password nor the verifier is ever printed or put in an argv.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata

ITERATIONS = 4096  # PostgreSQL's default scram_iterations
SALT_BYTES = 16
PREFIX = "SCRAM-SHA-256$"


def saslprep(password: str) -> str:
    """RFC 4013 SASLprep, as PostgreSQL applies it; PostgreSQL uses the raw password when it fails
    (a prohibited character, bad bidi), and so does this."""
    if password.isascii():
        return password  # printable ASCII maps to itself; control characters fail: raw, the same text
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    text = unicodedata.normalize("NFKC", mapped)
    prohibited = (stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
                  stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
                  stringprep.in_table_c9, stringprep.in_table_a1)
    if any(check(c) for c in text for check in prohibited):
        return password
    right_to_left = any(stringprep.in_table_d1(c) for c in text)
    if right_to_left and (any(stringprep.in_table_d2(c) for c in text)
                          or not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1]))):
        return password  # RFC 3454's bidi rule
    return text


def keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes, bytes]:
    """(ClientKey, StoredKey, ServerKey) for the password with this salt and iteration count."""
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return client_key, hashlib.sha256(client_key).digest(), server_key


def verifier(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The verifier PostgreSQL stores in pg_authid.rolpassword; a fresh random salt unless given."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    _, stored_key, server_key = keys(password, salt, iterations)
    return f"{PREFIX}{iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def digest(stored: str) -> str:
    """What is compared instead of the verifier itself: its SHA-256, hex (PostgreSQL's sha256())."""
    return hashlib.sha256(stored.encode()).hexdigest()


def matches(password: str, salt_part: str, stored_digest: str) -> bool:
    """Does the stored verifier whose '<iterations>:<salt>' is `salt_part` and whose digest is
    `stored_digest` belong to `password`? False for anything unreadable (md5, none)."""
    iterations, _, salt = salt_part.partition(":")
    try:
        candidate = verifier(password, base64.b64decode(salt, validate=True), int(iterations))
    except ValueError:
        return False
    return bool(salt) and hmac.compare_digest(digest(candidate), stored_digest.strip())
