"""The keyed one-way digest of a NINO (domain.md §10, GEN 136).

The open-referral (JFS 5.19) and re-referral (JFS 3.42, 5.16) rules must keep working after a
participant's data is erased, so referrals are found by an HMAC-SHA256 of the normalised NINO
under a key from settings, never by the NINO itself. Without the key the digest cannot be
turned back into a NINO, not even by trying every possible one.

Rotation: a new ``PRAP_NINO_DIGEST_KEY`` is used for every new digest, and the keys named in
``PRAP_NINO_DIGEST_PREVIOUS_KEYS`` are still matched, so referrals digested under an older key
(erased ones included, whose NINO is gone) keep counting for the rules.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.core.settings import Settings
from app.referrals.rules import normalise_nino


@dataclass(frozen=True, slots=True)
class NinoDigests:
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("no NINO digest key configured (PRAP_NINO_DIGEST_KEY)")

    def current(self, nino: str) -> str:
        """The digest a new referral is stored under."""
        return nino_digest(nino, self.keys[0])

    def every(self, nino: str) -> list[str]:
        """The digests this NINO may be stored under: current key first."""
        return [nino_digest(nino, key) for key in self.keys]


def nino_digest(nino: str, key: str) -> str:
    return hmac.new(key.encode(), normalise_nino(nino).encode(), hashlib.sha256).hexdigest()


async def get_nino_digests(request: Request) -> NinoDigests:
    """FastAPI dependency: the digests under the app's configured keys."""
    settings: Settings = request.app.state.settings
    return NinoDigests(settings.nino_digest_keys)


Digests = Annotated[NinoDigests, Depends(get_nino_digests)]
