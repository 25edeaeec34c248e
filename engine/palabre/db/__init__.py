"""The database behind Palabre's durable records: registry, media, message log, tasks, contacts.

    url.py        which database: DATABASE_URL (PostgreSQL), else the embedded SQLite file
    schema.py     the tables, as SQLAlchemy Core (no ORM)
    database.py   the AsyncEngine, its transactions, and store failures as StoreError
    migrate.py    Alembic, run from code: upgrade, current revision, the start-up check
    inserts.py    INSERT ... ON CONFLICT for the dialect at hand, built once per table
    batches.py    group commit: the writes of a moment share one transaction
    migrations/   the Alembic environment and its revisions (shipped in the wheel)

Sessions are not here: they live in Redis or the embedded session store, with their TTL.
"""
