"""Alembic migrations of the stableseg schema (a package so that it ships with the wheel)."""
