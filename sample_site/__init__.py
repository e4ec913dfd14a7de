"""A small ledger for organizations that shows revy and revy_mw at work."""
