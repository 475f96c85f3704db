"""Contracts and their milestones: the agreement between a client and a developer that a
proposal acceptance or a service order creates. Registered as the built-in plugin
``contracts``. Money (funding, escrow, release) comes with the ledger."""
