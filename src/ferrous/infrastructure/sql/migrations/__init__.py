"""Alembic migrations of the Ferrous CI schema (run by ``migrate``)."""
