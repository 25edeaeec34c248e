"""Stores: sessions (the protocol, and its SQLite and Redis backends), and the durable
records on the database (`bundle.Stores`: registry, media, message log, tasks, contacts)."""

from palabre.stores.base import DEFAULT_TTL_SECONDS, SessionStore

__all__ = ["DEFAULT_TTL_SECONDS", "SessionStore"]
