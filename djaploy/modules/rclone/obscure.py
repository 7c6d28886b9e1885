"""rclone's "obscured" passwords, computed here so no password ever reaches a command line.

rclone keeps some config values (a crypt remote's password, an SFTP password) obscured, not
encrypted: AES-256-CTR under a key published in rclone's source (fs/config/obscure), a random
16-byte IV in front, base64url without padding. `rclone obscure` would need the password as an
argument or on stdin of a remote process; computing it locally needs neither.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

#: rclone's fixed key (fs/config/obscure/obscure.go, cryptKey)
RCLONE_KEY = bytes.fromhex("9c935b48730a554d6bfd7c63c886a92bd390198eb8128afbf4de162b8b95f638")
IV_SIZE = 16


def _crypt(data: bytes, iv: bytes) -> bytes:
    cipher = Cipher(algorithms.AES(RCLONE_KEY), modes.CTR(iv)).encryptor()
    return cipher.update(data) + cipher.finalize()


def obscure(password: str, iv: bytes | None = None) -> str:
    """What `rclone obscure` prints for `password` (random IV unless given: tests pin it)."""
    iv = os.urandom(IV_SIZE) if iv is None else iv
    if len(iv) != IV_SIZE:
        raise ValueError(f"the IV must be {IV_SIZE} bytes")
    return base64.urlsafe_b64encode(iv + _crypt(password.encode(), iv)).decode().rstrip("=")


def stable_obscure(password: str) -> str:
    """`obscure` with an IV derived from the password: the same config file on every run, so a
    configureserver that changes nothing reports no change (obscuring hides nothing anyway:
    the file's 0600 mode protects it)."""
    return obscure(password, hashlib.sha256(b"djaploy rclone obscure\0" + password.encode()).digest()[:IV_SIZE])


def reveal(obscured: str) -> str:
    """What `rclone reveal` prints: the inverse of `obscure`."""
    raw = base64.urlsafe_b64decode(obscured + "=" * (-len(obscured) % 4))
    if len(raw) < IV_SIZE:
        raise ValueError("too short to be an rclone obscured value")
    return _crypt(raw[IV_SIZE:], raw[:IV_SIZE]).decode()
