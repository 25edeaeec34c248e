"""Prometheus metrics of one app: webhooks, turns, the outbox and its sends.

Each app owns one `Metrics`, with its own `CollectorRegistry` (never prometheus_client's
global one), so tests and several apps in one process keep separate counts.

    palabre_webhook_requests_total{transport,status}  requests to a transport's routes
    palabre_webhook_seconds{transport}                their duration, until answered
    palabre_turn_seconds                              one turn: load, run, commit
    palabre_outbox_messages{status}                   outbox rows by status, read at scrape
    palabre_events_waiting{status}                    events taken, not yet started (queued,
                                                      starting), read at scrape
    palabre_sends_total{transport,outcome}            calls to Transport.send, by outcome
    palabre_send_retries_total{transport}             sends that retry a failed attempt

Every label is bounded: transport names, HTTP status codes, outbox statuses and send
outcomes; never a path, an address or an id.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from palabre.outbox.statuses import ALL as OUTBOX_STATUSES

CONTENT_TYPE = CONTENT_TYPE_LATEST  # what generate_latest writes
SEND_OUTCOMES = ("sent", "failed", "throttled", "unconfirmed", "retried")


class Metrics:
    """The counters and histograms of one app, and their text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.webhook_requests = Counter(
            "palabre_webhook_requests",
            "Requests to the transports' routes, by transport and HTTP status.",
            ["transport", "status"],
            registry=registry,
        )
        self.webhook_seconds = Histogram(
            "palabre_webhook_seconds",
            "Seconds from a webhook request to the end of its answer, by transport.",
            ["transport"],
            registry=registry,
        )
        self.turn_seconds = Histogram(
            "palabre_turn_seconds",
            "Seconds of one turn, the contact's lease held: load, run, commit.",
            registry=registry,
        )
        self.sends = Counter(
            "palabre_sends",
            "Calls to a transport's send, by transport and outcome.",
            ["transport", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "palabre_send_retries",
            "Sends that retry an earlier attempt that failed (a retryable error).",
            ["transport"],
            registry=registry,
        )
        # Each webhook's labelled series, found once: `labels()` checks and locks every call.
        self._webhook_series: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def webhook(self, transport: str, status: int, seconds: float) -> None:
        """One request to `transport`'s routes, answered with `status` after `seconds`."""
        series = self._webhook_series.get((transport, status))
        if series is None:
            series = self._webhook_series[transport, status] = (
                self.webhook_requests.labels(transport, str(status)),
                self.webhook_seconds.labels(transport),
            )
        requests, durations = series
        requests.inc()
        durations.observe(seconds)

    def turn(self, seconds: float) -> None:
        """One turn of the engine took `seconds`."""
        self.turn_seconds.observe(seconds)

    def sent(self, transport: str, outcome: str) -> None:
        """One call to `transport`'s send ended in `outcome` (one of SEND_OUTCOMES)."""
        if outcome not in SEND_OUTCOMES:
            raise ValueError(f"unknown send outcome {outcome!r} (known: {SEND_OUTCOMES})")
        self.sends.labels(transport, outcome).inc()

    def retried(self, transport: str) -> None:
        """The worker sends a message again through `transport` after a failed attempt."""
        self.retries.labels(transport).inc()

    def exposition(
        self, outbox_depth: Mapping[str, int] | None, events: Mapping[str, int] | None = None
    ) -> bytes:
        """Every metric in the Prometheus text format, with the outbox rows counted by
        status in `outbox_depth` and the events waiting by status in `events` (None:
        unknown, the gauge has no samples)."""
        return generate_latest(Scrape(self.registry, outbox_depth, events))


class Scrape(Collector):
    """One scrape: the app's registry, and the counts read for this scrape only."""

    def __init__(
        self,
        registry: CollectorRegistry,
        depth: Mapping[str, int] | None,
        events: Mapping[str, int] | None = None,
    ) -> None:
        self.registry, self.depth, self.events = registry, depth, events

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        yield outbox_messages(self.depth)
        yield events_waiting(self.events)


def outbox_messages(depth: Mapping[str, int] | None) -> GaugeMetricFamily:
    """`palabre_outbox_messages{status}`: every known status shown (0 when it has no
    rows), so a drained queue reads 0 rather than nothing."""
    family = GaugeMetricFamily(
        "palabre_outbox_messages", "Outbox rows by status.", labels=["status"]
    )
    if depth is not None:
        for status in dict.fromkeys([*OUTBOX_STATUSES, *sorted(depth)]):
            family.add_metric([status], depth.get(status, 0))
    return family


def events_waiting(waiting: Mapping[str, int] | None) -> GaugeMetricFamily:
    """`palabre_events_waiting{status}`: the events the API took whose flows have not run
    yet, queued or starting; a backlog that grows means too few workers."""
    family = GaugeMetricFamily(
        "palabre_events_waiting", "Events taken whose flows have not run yet.", labels=["status"]
    )
    for status, count in sorted((waiting or {}).items()):
        family.add_metric([status], count)
    return family
