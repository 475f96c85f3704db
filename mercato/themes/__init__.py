"""Bundled themes: each a folder with ``templates/`` and ``static/``."""
