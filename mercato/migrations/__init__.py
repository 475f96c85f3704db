"""The Alembic environment and core revisions (``versions/``)."""
