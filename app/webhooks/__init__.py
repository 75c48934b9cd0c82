"""Webhooks (api-contract.md, Webhooks): provider CRMs hear of their referrals' events."""
