"""Who may use the admin API and pages: the ``admin`` role only."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import PermissionDeniedException
from sqlalchemy.ext.asyncio import AsyncSession

from mercato.core.accounts.models import User
from mercato.core.accounts.routes import current_user
from mercato.core.site import Site


async def require_admin(request: Request[Any, Any, Any], session: AsyncSession, site: Site) -> User:
    """The signed-in admin: 401 when signed out, 403 for anyone without the admin role."""
    user = await current_user(request, session, site)
    if not user.is_admin:
        raise PermissionDeniedException("Administrators only.")
    return user
