"""One measured run: wrk against one server, and what the run cost every process.

CPU is read from /proc before and after: the server's process tree (its QR worker
included), wrk, redis-server and the fake Graph API. For a Meta run the replies are sent
after the webhooks are answered (by Palabre's outbox worker, or the floor's senders), so
the run ends only once the fake Graph API has received the requests the answered
messages call for (`expected`, less those of the last `connections` messages, which may
not have been processed) and then nothing new for `QUIET` seconds; that drain is part of
the server's CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from procstat import RssSampler, TreeCpu
from servers import Server
from wrk import run_wrk

QUIET = 1.0  # seconds without a new Graph API request that end a Meta run
SENDS_PER_STEP = (2, 1, 1, 1, 1, 2)  # welcome + question 1; ...; upload + image (Meta)
DRAIN_LIMIT = 300.0


@dataclass
class Run:
    """The figures of one run of one server."""

    server: str
    requests: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    wrapped: int
    server_cpu: float  # seconds, process tree
    child_cpu: float  # of which the server's child processes (Palabre's QR worker)
    wrk_cpu: float
    redis_cpu: float
    graph_cpu: float
    drain_seconds: float = 0.0
    graph_requests: int = 0
    rss_kib: list[int] = field(default_factory=list)

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu / self.requests * 1e6

    @property
    def wrk_us_per_request(self) -> float:
        return self.wrk_cpu / self.requests * 1e6

    @property
    def busy(self) -> float:
        """The server's share of one core while it ran (and drained)."""
        return self.server_cpu / (self.seconds + self.drain_seconds)

    @property
    def wrk_busy(self) -> float:
        return self.wrk_cpu / self.seconds

    @property
    def end_to_end(self) -> float:
        """Requests per second, counting the time their replies took to be sent."""
        return self.requests / (self.seconds + self.drain_seconds)

    def as_dict(self) -> dict[str, object]:
        figures = asdict(self)
        figures["rss_kib"] = {
            "start": self.rss_kib[0],
            "end": self.rss_kib[-1],
            "max": max(self.rss_kib),
        }
        for name in ("cpu_us_per_request", "wrk_us_per_request", "busy", "wrk_busy", "end_to_end"):
            figures[name] = round(getattr(self, name), 3)
        return figures


@dataclass(frozen=True)
class Others:
    """The processes that serve both servers: redis-server and the fake Graph API."""

    redis: Server
    graph: Server


def measure(
    name: str,
    server: Server,
    path: str,
    requests_file: Path,
    others: Others,
    *,
    seconds: float,
    connections: int,
    threads: int,
    expected: Callable[[int], int] | None = None,
    started: Callable[[], None] | None = None,
) -> Run:
    """Run wrk on `server` with the file's requests; the figures of the run. `started` is
    called just before wrk starts (to start a profiler)."""
    clocks = [TreeCpu(server.pid), TreeCpu(others.redis.pid), TreeCpu(others.graph.pid)]
    before = [clock.read() for clock in clocks]
    child_before = clocks[0].children()
    sent_before = graph_requests(others.graph)
    if started is not None:
        started()
    with RssSampler(server.pid) as rss:
        result = run_wrk(
            server.url + path,
            requests_file,
            seconds=seconds,
            connections=connections,
            threads=threads,
        )
        if expected is not None:
            awaited = sent_before + expected(max(0, result.requests - connections))
            drained = wait_for_replies(others.graph, awaited)
        else:
            drained = 0.0
    used = [clock.read() - start for clock, start in zip(clocks, before, strict=True)]
    return Run(
        server=name,
        **wrk_figures(result),
        server_cpu=used[0],
        child_cpu=clocks[0].children() - child_before,
        redis_cpu=used[1],
        graph_cpu=used[2],
        drain_seconds=drained,
        graph_requests=graph_requests(others.graph) - sent_before,
        rss_kib=rss.samples,
    )


def wrk_figures(result: Any) -> dict[str, Any]:
    """What a `Run` takes from wrk's result: counts, latencies, errors and wrk's own CPU."""
    return {
        "requests": result.requests,
        "seconds": result.seconds,
        "throughput": result.throughput,
        "p50_ms": result.latency_ms("p50"),
        "p99_ms": result.latency_ms("p99"),
        "max_ms": result.latency_ms("max"),
        "errors": result.errors,
        "wrapped": int(result.summary["wrapped"]),
        "wrk_cpu": result.cpu,
    }


def graph_requests(graph: Server) -> int:
    counts = httpx.get(graph.url + "/stats", timeout=5).json()
    return int(counts["messages"] + counts["media"])


def wait_for_replies(graph: Server, awaited: int) -> float:
    """Wait until the Graph API has had `awaited` requests and then none for QUIET
    seconds; returns the seconds from the call to the last request it received."""
    began = last_change = time.monotonic()
    seen = graph_requests(graph)
    while seen < awaited or time.monotonic() - last_change < QUIET:
        if time.monotonic() - began > DRAIN_LIMIT:
            raise RuntimeError(
                f"the Graph API got {seen} of {awaited} requests in {DRAIN_LIMIT:g} s"
            )
        time.sleep(0.1)
        count = graph_requests(graph)
        if count != seen:
            seen, last_change = count, time.monotonic()
    return last_change - began
