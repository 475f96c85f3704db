"""Timers: work due at a moment (auto-approve a milestone, end a payout hold), kept as rows
and run by a sweeper that claims due rows with ``SKIP LOCKED``, so any number of app
instances may sweep. See :mod:`mercato.core.timers.services`."""

from mercato.core.timers.services import TimerHandler, cancel, schedule

__all__ = ["TimerHandler", "cancel", "schedule"]
