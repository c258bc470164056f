"""Agents, as people see them."""

from __future__ import annotations

from fastapi import APIRouter

from ferrous.api.permissions import require
from ferrous.api.schemas.agents import AgentList, AgentOut
from ferrous.api.services import ApiServices


def build_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["agents"])
    queries = services.queries

    @router.get("/agents", dependencies=[require("agents:read")])
    async def list_agents() -> AgentList:
        return AgentList(items=[AgentOut.model_validate(a) for a in await queries.list_agents()])

    return router
