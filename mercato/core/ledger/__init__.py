"""The escrow ledger: double-entry accounts, immutable transactions, balances from entries."""
