"""Hints to PostgreSQL's planner for the claims that walk a queue by its status index."""

# Right after a burst is queued (a broadcast, a morning's events), PostgreSQL's statistics
# still say there are no queued rows; the planner then reads every queued row through
# bitmap scans for each candidate (seconds per claim, until autovacuum analyzes the table).
# Walking the status index in order and stopping at the claim's limit is right at any size.
WALK_THE_INDEX = "SET LOCAL enable_bitmapscan = off"
