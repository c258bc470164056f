"""The metadata every table is declared on, and the naming of constraints and indexes.

Shared by the modules that declare tables (``schema`` and the ones it gathers), so that one
``MetaData`` holds them all: the migrations are compared with it.
"""

from __future__ import annotations

from sqlalchemy import MetaData, String

ID = String(36)
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)
