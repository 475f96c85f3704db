"""Reading contracts: each party sees its own, anyone else gets a 404."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from mercato.core.accounts.routes import require_principal
from mercato.core.contracts import schemas
from mercato.core.contracts.services import ContractService
from mercato.core.pagination import DEFAULT_LIMIT, Cursor, Limit
from mercato.core.site import Site


class ContractsController(Controller):
    path = "/api/v1/contracts"
    tags = ["contracts"]

    @get("/", summary="Your contracts, newest first")
    async def list_contracts(
        self,
        request: Request[Any, Any, Any],
        site: NamedDependency[Site],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.ContractPage:
        principal = require_principal(request)
        async with site.db.reading() as session:
            return await ContractService().list_for(session, principal.user_id, limit=limit, cursor=cursor)

    @get("/{contract_id:uuid}", summary="One of your contracts, with its milestones")
    async def get_contract(
        self, request: Request[Any, Any, Any], contract_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ContractOut:
        principal = require_principal(request)
        service = ContractService()
        async with site.db.reading() as session:
            contract = await service.party_contract(session, contract_id, principal.user_id)
            return await service.out(session, contract)
