"""Broadcasts: one flow started for an audience read from a CSV file, through the outbox.

audience.py   the CSV: columns, addresses, languages, duplicates, line numbers
preview.py    a dry run of the flow for each line: messages, SMS encoding and segments
planning.py   consent at the snapshot, the cost, the senders' rate caps
store.py      the broadcast, its snapshot and its progress on the database
sending.py    starting the lines a few seconds ahead of the rate cap (resumable)
display.py    the summary, the live progress and the status, for people
commands.py   `palabre broadcast FLOW --to contacts.csv`, resume, status, retry-failed
"""
