"""Delivery states (api-contract.md, Webhooks)."""

from __future__ import annotations

import enum


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"
