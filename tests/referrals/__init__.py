"""Pure tests of the rules in app/referrals/ (no database)."""
