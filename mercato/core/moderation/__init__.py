"""Moderation: what people can report, and what admins can hide."""

from mercato.core.moderation.subjects import ReportedItem, ReportSubject

__all__ = ["ReportSubject", "ReportedItem"]
