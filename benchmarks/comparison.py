"""One comparison of benchmarks/webhooks.py: a fresh floor and a fresh Palabre, in rounds.

Both servers first complete one conversation (its code and QR image, or the benchmark
stops), then get a warm-up run, then the rounds, floor and engine alternating (floor
first in odd rounds, engine first in even ones). Every run gets its own request file,
for contacts never seen before, sized for twice the server's warm-up rate.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import servers
from checks import check_meta, check_twilio, session_bytes
from measure import SENDS_PER_STEP, Others, Run, measure
from profiling import PySpy
from provenance import code_state
from report import Round
from requests_file import meta_request, schedule, twilio_request, write_requests
from rss_run import long_run
from servers import Server

WARMUP_CAPACITY = 4000  # requests per second of warm-up a file holds (no rate known yet)


def log_levels(path: Path) -> dict[str, object]:
    """How many WARNING and ERROR lines a server logged, and the first of them (Palabre's
    logs carry ids, never personal data; the floor logs nothing of its own)."""
    lines = path.read_text(errors="replace").splitlines()
    found = [line for line in lines if " WARNING " in line or " ERROR " in line]
    counts = {level: sum(f" {level} " in line for line in found) for level in ("WARNING", "ERROR")}
    return counts | {"first": found[0][:300] if found else None}


class Contacts:
    """Hands out blocks of contact numbers never used before in this benchmark."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, count: int) -> int:
        first, self.next = self.next, self.next + count
        return first


@dataclass
class Comparison:
    """The floor and the engine of one configuration ("redis", "sqlite" or "meta")."""

    config: str
    args: argparse.Namespace
    folder: Path
    others: Others
    contacts: Contacts
    steps: list[int] = field(default_factory=list)  # of the last request file, in order

    @property
    def kind(self) -> str:
        return "meta" if self.config == "meta" else "twilio"

    @property
    def path(self) -> str:
        return f"/{self.kind}"

    def run_all(self) -> dict[str, Any]:
        """Start both servers, check, warm up, run the rounds (and the extras asked for)."""
        redis_url, graph_url = self.others.redis.url, self.others.graph.url
        store_url = None if self.config == "sqlite" else redis_url
        env = servers.engine_env(store_url, graph_url, self.folder / "data")
        result: dict[str, Any] = {"config": self.config, "code": code_state()}
        with (
            servers.floor(self.folder, redis_url, graph_url) as floor,
            servers.palabre(self.folder, env) as engine,
        ):
            pair = {"floor": floor, "engine": engine}
            for name, server in pair.items():
                self.check(server)
                if self.config == "redis":
                    sizes = session_bytes(
                        redis_url, server, self.contacts.take(1), name == "engine"
                    )
                    result.setdefault("session_bytes", {})[name] = sizes
            warm = self.args.warmup
            rates = {
                n: self.run(s, n, warm, int(warm * WARMUP_CAPACITY)).throughput
                for n, s in pair.items()
            }
            result["rounds"] = self.rounds(pair, rates)
            if self.args.profile:
                result["profile"] = self.profile(engine, "engine", rates["engine"])
                if self.args.profile_floor:
                    result["floor_profile"] = self.profile(floor, "floor", rates["floor"])
            if self.args.messages and self.config == "redis":
                result["long_run"] = long_run(
                    engine,
                    self.path,
                    self.args.messages,
                    self.args.rss_every,
                    rates["engine"],
                    self.args.connections,
                    lambda n: self.requests_file(self.folder / "long.bin", n),
                )
        logs = {name: log_levels(self.folder / f"{name}.log") for name in ("palabre", "floor")}
        result["logs"] = logs
        return result

    def check(self, server: Server) -> None:
        if self.kind == "meta":
            check_meta(server, self.others.graph, self.contacts.take(1))
        else:
            check_twilio(server, self.contacts.take(1))

    def rounds(self, pair: dict[str, Server], rates: dict[str, float]) -> list[Round]:
        rounds = []
        for number in range(1, self.args.rounds + 1):
            order = ["floor", "engine"] if number % 2 else ["engine", "floor"]
            runs = {
                name: self.run(pair[name], name, self.args.seconds, self.capacity(rates[name]))
                for name in order
            }
            rounds.append(Round(runs["floor"], runs["engine"]))
            print(f"  {self.config} round {number}: ratio {rounds[-1].ratio:.2f}", file=sys.stderr)
        return rounds

    def profile(self, server: Server, name: str, rate: float) -> dict[str, object]:
        seconds = self.args.profile
        self.args.profile_dir.mkdir(parents=True, exist_ok=True)
        suffix = "" if name == "engine" else f"-{name}"
        output = self.args.profile_dir / f"profile-{self.config}{suffix}.txt"
        spy = PySpy(server.pid, seconds, output)
        measured = self.run(server, name, seconds, self.capacity(rate, seconds), spy.start)
        return spy.finish(measured, name)

    def run(
        self,
        server: Server,
        name: str,
        seconds: float,
        capacity: int,
        started: Callable[[], None] | None = None,
    ) -> Run:
        file = self.requests_file(self.folder / "requests.bin", capacity)
        try:
            return measure(
                name,
                server,
                self.path,
                file,
                self.others,
                seconds=seconds,
                connections=self.args.connections,
                threads=self.args.threads,
                expected=self.expected_sends if self.kind == "meta" else None,
                started=started,
            )
        finally:
            file.unlink()

    def expected_sends(self, answered: int) -> int:
        """Graph API requests the first `answered` messages of the last file call for."""
        return sum(SENDS_PER_STEP[step] for step in self.steps[:answered])

    def capacity(self, rate: float, seconds: float | None = None) -> int:
        """Requests for a run at twice `rate`, so that wrk never wraps round."""
        return int(max(rate, 200) * 2 * (seconds or self.args.seconds)) + self.args.connections

    def requests_file(self, path: Path, capacity: int) -> Path:
        """At least `capacity` pre-signed requests, from contacts never seen before."""
        slots = self.args.slots
        per_slot = math.ceil(capacity / (slots * 6)) + 1
        first = self.contacts.take(slots * per_slot)
        messages = list(schedule(slots, per_slot, first, self.args.distinct_codes))
        self.steps = [message.step for message in messages]
        public = servers.PUBLIC_URL
        if self.kind == "meta":
            secret = servers.SECRETS["META_APP_SECRET"]
            write_requests(path, (meta_request(m, secret, public) for m in messages))
        else:
            token = servers.SECRETS["TWILIO_AUTH_TOKEN"]
            write_requests(path, (twilio_request(m, token, public) for m in messages))
        return path
