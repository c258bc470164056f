"""Contract tests of the storage adapters (SQLite, PostgreSQL, memory)."""
