"""The ledger: organizations, their members, accounts and transactions."""
