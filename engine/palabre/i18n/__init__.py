"""Translation: babel catalogs, the sandboxed Jinja environment, and language choice."""
