"""Pure tests of the rules in app/core/ (no database)."""
