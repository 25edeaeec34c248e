"""The one send path: every outbound message is a row of the outbox before it leaves.

    rows.py      what goes in (`Queued`), what a row shows (`Row`), the message as JSON
    statuses.py  the statuses and the forward-only rule (status callbacks)
    store.py     `Outbox`: enqueue, release, replies_to, delivered_inline, status, depth
    claims.py    the worker's transactions: claim (SKIP LOCKED), start, record, reap
    policy.py    retries, backoff, throttling, unconfirmed sends; the outbox settings
    limits.py    per-sender throughput (GCRA slots) and per-recipient pacing (moving window)
    schedules.py where those limits live: this process's memory, or Redis for every worker
    retention.py how long bodies and rows are kept, and the purge
    worker.py    the loop that sends (after a consent check): in `palabre serve`, or alone
                 in `palabre worker`
    answers.py   when the answers to a send's HTTP requests come (its room in the window)
    replies.py   a turn's messages as held rows, keyed by what they answer (the engine's)
    commands.py  `palabre worker` and `palabre messages`
    listing.py   what `palabre messages` shows: columns, JSON Lines, --status, --contact

Nothing is imported here, so that the stores can use the statuses without the worker.
"""
