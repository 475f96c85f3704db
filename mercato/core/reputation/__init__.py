"""Reputation: what the marketplace knows of how someone works, per role.

For each person and role (``developer``, ``client``) a :class:`~.models.Reputation` row
holds their average rating and its count, a job-success score, the on-time delivery rate
and the repeat-client rate. Event handlers recompute it from the facts (published ratings,
contracts, milestones) whenever one of them changes, so a redelivered event changes nothing.
"""
