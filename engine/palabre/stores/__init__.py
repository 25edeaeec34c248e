"""Session stores: the protocol, and its SQLite (embedded) and Redis (production) backends."""

from palabre.stores.base import DEFAULT_TTL_SECONDS, SessionStore

__all__ = ["DEFAULT_TTL_SECONDS", "SessionStore"]
