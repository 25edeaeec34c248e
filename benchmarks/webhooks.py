"""Benchmark: Palabre against a hand-written floor bot, driven by wrk, rounds alternated.

    python benchmarks/webhooks.py --rounds 3
    python benchmarks/webhooks.py --rounds 3 --profile 20       # and py-spy under load
    python benchmarks/webhooks.py --configs redis --rounds 0 --messages 100000  # RSS

Needs wrk (`sudo apt-get install -y wrk`); py-spy for --profile (`pip install py-spy`).
It starts a throwaway redis-server and a fake Graph API (benchmarks/fake_graph.py), then
for each comparison a fresh floor (benchmarks/floor_app.py, always on Redis) and a fresh
`palabre serve` on flows/uic.yaml, one uvicorn process each with the same settings:
  redis   Twilio webhooks, Palabre's sessions in Redis
  sqlite  Twilio webhooks, Palabre's embedded SQLite session store (no REDIS_URL)
  meta    Meta Cloud API webhooks, Palabre on Redis. Both servers answer 200 and send
          the replies to the fake Graph API afterwards: Palabre through its outbox
          worker (PALABRE_RATE_META lifted so Meta's 80/s cap does not pace it), the
          floor through a Redis list and sender tasks. A run ends once the replies of
          the answered messages have reached the fake Graph API; that drain counts in
          the CPU and in the end-to-end throughput.
Both servers first complete one conversation (the code and its QR image, or the run
stops), then get a warm-up, then `--rounds` rounds of `--seconds` each, floor and engine
alternating (floor first in odd rounds, engine first in even ones). Requests are
pre-signed (benchmarks/requests_file.py): every contact does the UIC script, `--slots`
contacts interleaved, new contacts and message ids for every run. The script gives every
contact the same code, so both servers draw one QR image and then find it in their cache
(Palabre's registry also finds the code known: the "already registered" ending);
`--distinct-codes` gives each contact its own names, hence its own code and drawing.

Printed: a table per comparison (per round and medians: req/s, p50/p99/max latency, the
server's CPU µs per request from /proc and its busy share of a core, wrk's CPU, Redis's
CPU), the idle session's size in Redis, RSS start/end/max, the code measured, the load
average before and after; then one JSON line.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

import report
import servers
from comparison import Comparison, Contacts
from measure import Others
from procstat import load_average
from wrk import add_run_options, wrk_binary

CONFIGS = ("redis", "sqlite", "meta")


def main() -> None:
    parser = argparse.ArgumentParser(description="Palabre vs a hand-written floor, with wrk.")
    add_run_options(parser, seconds=20)
    parser.add_argument("--slots", type=int, default=2000, help="contacts interleaved")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="redis,sqlite,meta")
    parser.add_argument("--distinct-codes", action="store_true", help="names vary per contact")
    parser.add_argument("--profile", type=float, default=0, help="py-spy seconds per engine")
    parser.add_argument("--profile-floor", action="store_true", help="py-spy the floor too")
    parser.add_argument("--messages", type=int, default=0, help="long run (RSS), on Redis")
    parser.add_argument("--rss-every", type=int, default=10000, help="requests per RSS reading")
    args = parser.parse_args()
    wrk_binary()  # says how to install wrk before anything starts
    configs = [name.strip() for name in args.configs.split(",") if name.strip()]
    if unknown := set(configs) - set(CONFIGS):
        parser.error(f"unknown configs: {', '.join(sorted(unknown))}")
    load_before = load_average()
    results = []
    with tempfile.TemporaryDirectory(prefix="palabre-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        redis = stack.enter_context(servers.redis_server(work))
        graph = stack.enter_context(servers.fake_graph(work))
        others, contacts = Others(redis, graph), Contacts()
        for config in configs:
            (work / config).mkdir()
            comparison = Comparison(config, args, work / config, others, contacts)
            results.append(comparison.run_all())
    report.print_results(results, args, (load_before, load_average()))


if __name__ == "__main__":
    main()
