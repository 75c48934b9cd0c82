"""Pure tests of the rules in app/claims/ (no database)."""
