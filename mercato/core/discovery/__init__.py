"""Discovery: ``GET /api/v1/search`` over projects, services and developers, answered by
whichever backend wins ``get_search_backend``. Registered as the built-in plugin
``discovery``."""
