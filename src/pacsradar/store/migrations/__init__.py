"""Alembic migrations of the findings store (a package so the wheel ships them)."""
