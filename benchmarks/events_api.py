"""Benchmark: the events API (POST /api/v1/events) against a bare Starlette floor, with wrk.

    python benchmarks/events_api.py --rounds 3 --seconds 10
    python benchmarks/events_api.py --rounds 3 --profile 20   # and py-spy on both, under load

Needs wrk (`sudo apt-get install -y wrk`); py-spy for --profile. Two servers, one uvicorn
process each with the settings of `palabre serve`, each on its own embedded SQLite file:
  floor   benchmarks/events_floor.py: the Bearer key's HMAC-SHA256 digest found by one
          indexed SELECT, the JSON body, one INSERT of the event (a replay caught by its
          primary key), 202
  engine  `palabre serve --no-worker` on a one-step flow triggered by `ticket.called`
          that ends with one SMS; its key made by `palabre apikey create bench`,
          PALABRE_API_RATE lifted out of the way. Each event: the key, the rate, the capped
          body, the fields, the INSERT of the queued event (a replay caught by its unique
          key), 202.
Starting the flows is the starters' work, and sending the outbox's, not the API's (as in
a deployment of `palabre serve --no-worker` and `palabre worker` processes): after the
rounds, one `palabre worker` starts every event the rounds queued, and the run reports
how fast (events a second, its CPU µs per event: the session's lock, load and commit,
the turn, the outbox row, the event's status). The transports are disabled
(PALABRE_DISABLE_PLUGINS=twilio,meta_cloud,web): benchmarks/drain_outbox.py measures
sending; here every event's message is written and stays queued.

Both get one event (202, then the same request again is caught as a replay), a warm-up,
then `--rounds` rounds of `--seconds`, alternating (floor first in odd rounds). wrk
replays pre-built requests (benchmarks/requests_file.py's format, benchmarks/replay.lua),
as many as twice the server's warm-up rate calls for: every request a new event id for
a new person (+24381..., channel sms), so no two events wait for one contact's lock.
Printed: per round and medians, req/s, p50/p99/max latency, the server's CPU µs per
request from /proc and its busy share of a core, wrk's own CPU; the median throughput
ratio, engine over floor (the goal: at least 0.8, else the exit status is 1); the
worker's starts; then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import report
import servers
from broadcast import run_palabre
from comparison import Contacts
from measure import Run, wrk_figures
from procstat import RssSampler, TreeCpu, load_average
from profiling import PySpy
from provenance import code_state
from report import Round, medians, table
from requests_file import Message, http_post, write_requests
from servers import SECRETS, Server, free_port, running, wait_until
from wrk import add_run_options, run_wrk, wrk_binary

GOAL = 0.8
PATH = "/api/v1/events"
WARMUP_RATE = 3000  # requests per second a warm-up file is sized for (no rate known yet)
FLOW = """\
id: bench_ticket
title: Your turn
settings: {locales: [en], default_locale: en}
triggers: {event: ticket.called}
steps:
  called: {kind: end, text: "Ticket {{ event.data.ticket }}: it is your turn, counter 3."}
"""
# The webhook benchmark's columns, but those of processes this one does not run.
COLUMNS = tuple(column for column in report.COLUMNS if column[1] not in ("child_us", "redis_us"))


def event_post(key: str, contact: int) -> tuple[dict[str, str], bytes]:
    """The headers and body of one event for person `contact`, whose number is its id."""
    phone = Message(contact, 0, "").phone
    body = {"event": "ticket.called", "id": f"bench-{contact}", "to": phone, "channel": "sms"}
    body["data"] = {"ticket": f"A{contact % 1000}"}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return headers, json.dumps(body).encode()


def engine_env(work: Path) -> dict[str, str]:
    return {
        "PALABRE_DATA_DIR": str(work / "data"),
        "PALABRE_LOG_LEVEL": "WARNING",
        "PALABRE_SECRET": SECRETS["PALABRE_SECRET"],
        "PALABRE_API_RATE": "1000000/second",  # the benchmark measures work, not a cap
        "PALABRE_DISABLE_PLUGINS": "twilio,meta_cloud,web",  # nothing sent (docstring)
    }


def api_key(work: Path, env: dict[str, str]) -> str:
    """A key made by `palabre apikey create bench` on the engine's database."""
    output = run_palabre(work, env, "apikey", "create", "bench")
    return next(line for line in output.splitlines() if line.startswith("plb_"))


@contextmanager
def serving(name: str, command: list[str], env: dict[str, str], work: Path) -> Iterator[Server]:
    """`command` on a free port, logging to `name`.log, once it says it is ready."""
    port = free_port()
    ready = "/readyz" if name == "palabre" else "/healthz"
    with running([*command, "--port", str(port)], env, work / f"{name}.log") as process:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + ready, timeout=1).raise_for_status(), process, url)
        yield Server(process, url)


def start_both(stack: ExitStack, work: Path, key: str, env: dict[str, str]) -> dict[str, Server]:
    """The floor (on its own SQLite file, with the same key) and `palabre serve`."""
    floor = [sys.executable, str(servers.BENCH / "events_floor.py")]
    floor += ["--database", str(work / "floor.db"), *servers.uvicorn_options()]
    floor_env = {"PALABRE_SECRET": SECRETS["PALABRE_SECRET"], "BENCH_API_KEY": key}
    (work / "flows").mkdir()
    (work / "flows" / "bench_ticket.yaml").write_text(FLOW)
    engine = [sys.executable, "-m", "palabre.cli", "serve", "--no-worker"]
    engine += ["--flows", str(work / "flows")]
    return {
        "floor": stack.enter_context(serving("floor", floor, floor_env, work)),
        "engine": stack.enter_context(serving("palabre", engine, env, work)),
    }


def drain_starts(work: Path, env: dict[str, str]) -> dict[str, float]:
    """One `palabre worker` starts every event queued: how many, how fast, its CPU."""
    database = work / "data" / "palabre.db"
    waiting = "SELECT COUNT(*) FROM api_events WHERE status IN ('queued', 'starting')"

    def left() -> int:
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
            return int(conn.execute(waiting).fetchone()[0])

    queued = left()
    command = [sys.executable, "-m", "palabre.cli", "worker", "--flows", str(work / "flows")]
    with running(command, env, work / "worker.log") as process:
        clock, began = TreeCpu(process.pid), time.monotonic()
        clock.read()  # from its start: loading the flows is a few ms of a long run
        while left():
            if process.poll() is not None:
                raise SystemExit(f"palabre worker stopped: {(work / 'worker.log').read_text()}")
            time.sleep(0.2)
            clock.read()
        seconds = time.monotonic() - began
    started = "SELECT COUNT(*) FROM api_events WHERE status = 'started'"
    with contextlib.closing(sqlite3.connect(database)) as conn:
        done = int(conn.execute(started).fetchone()[0])
    if done < queued:
        raise SystemExit(f"{queued - done} of {queued} events did not start: see worker.log")
    return {
        "events": queued,
        "seconds": round(seconds, 2),
        "per_second": round(queued / seconds, 1),
        "cpu_us_per_event": round(clock.read() / queued * 1e6, 1),
    }


def check(server: Server, key: str, contact: int) -> None:
    """One event is taken (202), and the same again is caught; SystemExit if not."""
    headers, body = event_post(key, contact)
    first = httpx.post(server.url + PATH, content=body, headers=headers)
    again = httpx.post(server.url + PATH, content=body, headers=headers)
    if first.status_code != 202 or again.status_code not in (200, 202):
        raise SystemExit(f"{server.url}: {first.status_code} {first.text}, then {again.text}")
    if again.status_code == 202 and again.json() != first.json():
        raise SystemExit(f"{server.url}: the replay got another answer: {again.text}")


class Bench:
    """Runs of either server: a request file of new people, wrk, CPU from /proc."""

    def __init__(self, args: argparse.Namespace, work: Path, key: str) -> None:
        self.args, self.work, self.key = args, work, key
        self.contacts = Contacts()

    def requests_file(self, count: int) -> Path:
        file, first = self.work / "requests.bin", self.contacts.take(count)
        public = servers.PUBLIC_URL
        posts = (event_post(self.key, contact) for contact in range(first, first + count))
        write_requests(file, (http_post(public, PATH, *post) for post in posts))
        return file

    def run(
        self,
        server: Server,
        name: str,
        seconds: float,
        rate: float,
        started: Callable[[], None] | None = None,
    ) -> Run:
        """wrk on `server` for `seconds`, sized for twice `rate`; the run's figures."""
        file = self.requests_file(int(max(rate, 200) * 2 * seconds) + self.args.connections)
        clock = TreeCpu(server.pid)
        before = clock.read()
        if started is not None:
            started()  # a profiler
        with RssSampler(server.pid) as rss:
            options = {"connections": self.args.connections, "threads": self.args.threads}
            result = run_wrk(server.url + PATH, file, seconds=seconds, **options)
        file.unlink()
        used = clock.read() - before
        return Run(
            server=name,
            **wrk_figures(result),
            server_cpu=used,
            child_cpu=clock.children(),
            redis_cpu=0.0,
            graph_cpu=0.0,
            rss_kib=rss.samples,
        )

    def rounds(self, pair: dict[str, Server], rates: dict[str, float]) -> list[Round]:
        found = []
        for number in range(1, self.args.rounds + 1):
            order = ["floor", "engine"] if number % 2 else ["engine", "floor"]
            runs = {n: self.run(pair[n], n, self.args.seconds, rates[n]) for n in order}
            found.append(Round(runs["floor"], runs["engine"]))
            print(f"  round {number}: ratio {found[-1].ratio:.2f}", file=sys.stderr)
        return found

    def profile(self, server: Server, name: str, rate: float) -> dict[str, object]:
        """py-spy on `server` during one more run (profiling.PySpy), at --profile-rate: at
        its 200 samples a second, the pauses of the SQLite writers holding the write lock
        made Palabre fall to 3 requests a second, and others' waits exceed the busy timeout."""
        self.args.profile_dir.mkdir(parents=True, exist_ok=True)
        spy = PySpy(server.pid, self.args.profile, self.args.profile_dir / f"events-{name}.txt")
        spy.command[spy.command.index("--rate") + 1] = str(self.args.profile_rate)
        return spy.finish(self.run(server, name, self.args.profile, rate, spy.start), name)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The events API vs a bare Starlette floor.")
    add_run_options(parser, seconds=10)
    parser.add_argument("--profile", type=float, default=0, help="py-spy seconds per server")
    parser.add_argument("--profile-rate", type=int, default=50, help="py-spy samples a second")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    wrk_binary()  # says how to install wrk before anything starts
    result: dict = {"benchmark": "events_api", "code": code_state(), "loads": [load_average()]}
    with tempfile.TemporaryDirectory(prefix="palabre-events-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        env = engine_env(work)
        bench = Bench(args, work, api_key(work, env))
        pair = start_both(stack, work, bench.key, env)
        for server in pair.values():
            check(server, bench.key, bench.contacts.take(1))
        rates = {n: bench.run(s, n, args.warmup, WARMUP_RATE).throughput for n, s in pair.items()}
        found = bench.rounds(pair, rates)
        if args.profile:
            result["profiles"] = [bench.profile(pair[n], n, rates[n]) for n in pair]
        result["warnings"] = warnings(work / "palabre.log")
        stack.close()  # the servers stop: the worker runs alone, as the rounds did
        result["starts"] = drain_starts(work, env)
    result["loads"].append(load_average())
    ratio = print_results(args, found, result)
    if ratio < GOAL:
        raise SystemExit(f"the events API has {ratio:.2f} of the floor's throughput (goal {GOAL})")


def print_results(args: argparse.Namespace, found: list[Round], result: dict) -> float:
    """The table, the profiles, one JSON line (also to --json); the median ratio."""
    print("load average before: {}   after: {}".format(*result["loads"]))
    print(f"wrk: {args.threads} thread(s), {args.connections} connections, {args.seconds:g} s")
    print(table("events", found, COLUMNS))
    for found_profile in result.get("profiles", []):
        print(found_profile["text"])
    print(f"Palabre's log lines at WARNING or above: {json.dumps(result['warnings'])}")
    starts = result["starts"]
    print(
        f"one `palabre worker` started the {starts['events']} events queued in "
        f"{starts['seconds']} s: {starts['per_second']} a second, "
        f"{starts['cpu_us_per_event']} µs of CPU each"
    )
    result["args"] = {key: str(value) for key, value in vars(args).items()}
    result["median"] = medians(found)
    result["rounds"] = [{"floor": r.floor.as_dict(), "engine": r.engine.as_dict()} for r in found]
    line = json.dumps(result, ensure_ascii=False)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")
    return float(result["median"]["ratio"])


def warnings(log: Path) -> list[str]:
    """Palabre's first five WARNING and ERROR lines (they never carry personal data)."""
    lines = log.read_text(errors="replace").splitlines()
    return [line[:300] for line in lines if " WARNING " in line or " ERROR " in line][:5]


if __name__ == "__main__":
    main()
