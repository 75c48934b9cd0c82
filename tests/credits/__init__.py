"""Pure tests of the rules in app/credits/ (no database)."""
