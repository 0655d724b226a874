"""Pydantic models of the HTTP edge (requests and responses); nothing inside uses them."""
