"""Stored idempotent answers, sealed (domain.md §10: nothing readable at rest that need not be).

A stored answer may hold a participant's personal data (a created referral, a search). It is
kept encrypted with AES-256-GCM under a key derived from the service's secret, the caller and
the ``Idempotency-Key`` itself: only a replay of the same request by the same caller can
recompute the key, and a copy of the table (a backup, a leaked dump) reads as noise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_CONTEXT = b"prap idempotent answer v1"
_NONCE_BYTES = 12


def _key(secret: str, caller: str, key: str) -> bytes:
    material = b"\0".join((_CONTEXT, caller.encode(), key.encode()))
    return hmac.new(secret.encode(), material, hashlib.sha256).digest()


def seal(secret: str, caller: str, key: str, plaintext: bytes) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_key(secret, caller, key)).encrypt(nonce, plaintext, caller.encode())
    return base64.b64encode(nonce + sealed).decode()


def unseal(secret: str, caller: str, key: str, stored: str) -> bytes | None:
    """The answer, or None when it cannot be read (a different secret, or tampering)."""
    try:
        raw = base64.b64decode(stored.encode(), validate=True)
        return AESGCM(_key(secret, caller, key)).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], caller.encode()
        )
    except (InvalidTag, ValueError):
        return None
