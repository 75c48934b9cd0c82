"""The racing client the claims and payments tests share (tests/claim_support.py)."""

from tests.claim_support import racing

__all__ = ["racing"]
