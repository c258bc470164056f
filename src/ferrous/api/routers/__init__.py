"""The REST API's routers: each module's ``build_router(services)`` returns one APIRouter."""
