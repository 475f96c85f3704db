"""Accounts and identity: people, sign-in (password and providers), sessions and tokens,
profiles, skills and portfolios. Registered as the built-in plugin ``accounts``."""
