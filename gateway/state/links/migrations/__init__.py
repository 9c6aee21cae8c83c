"""Alembic migrations of the link store, run by the store itself before its first use."""
