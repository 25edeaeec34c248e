"""The events API: outside systems (a queue, a fleet tracker) tell Palabre what happened,
and the flows triggered by that event message the person concerned.

    keys.py       API keys: made once, kept as a keyed hash, revoked by name
    requests.py   an event request read and checked, each fault named by its field
    problems.py   errors as RFC 9457 problem documents
    rates.py      events per key, failed authentications per client: the 429s
    prefer.py     `Prefer: wait=N`: how long a caller asks the answer to wait for the flows
    delivery.py   an event taken for the flows it triggers, once per (key, id)
    queue.py      the events taken, on the database: claims, statuses
    starter.py    the worker job that starts each event's flows, in each person's order
    routes.py     POST /api/v1/events, GET /api/v1/events/{id}, GET /api/v1/openapi.json
    openapi.py    the OpenAPI document of those routes
    commands.py   `palabre apikey create|revoke|list`, `palabre notify`
"""
