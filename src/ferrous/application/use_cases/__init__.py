"""One module per use case: ``async def name(cmd, uow, deps)``."""
