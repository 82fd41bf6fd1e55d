"""Prometheus metrics, on a registry of the app's own (so several apps can live in one process).

Under gunicorn every worker counts for itself; set PROMETHEUS_MULTIPROC_DIR for summed figures
(see README).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import multiprocess as prometheus_multiprocess


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    events: Counter
    latency: Histogram
    ignored_vars: Counter
    batches: Counter
    batch_latency: Histogram


def make_metrics() -> Metrics:
    registry = CollectorRegistry()
    target: CollectorRegistry | None
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prometheus_multiprocess.MultiProcessCollector(registry)
        target = None  # samples go to the shared files; the collector reads them back
    else:
        target = registry
    events = Counter("vipgate_events_received", "Hook events received, by hook and outcome",
                     ["hook", "outcome"], registry=target)
    latency = Histogram("vipgate_ingest_seconds", "Time to answer POST /hooks/whmcs",
                        buckets=(.001, .0025, .005, .01, .015, .025, .05, .1, .25, .5, 1, 2.5),
                        registry=target)
    ignored_vars = Counter("vipgate_ignored_vars", "vars keys the bridge does not know, left "
                           "out of accepted events (a stub newer than the bridge)",
                           ["hook", "key"], registry=target)
    # POST /hooks/whmcs/batch: its events count in vipgate_events_received one by one; the
    # batches by outcome ("answered", or the error code of a batch refused whole).
    batches = Counter("vipgate_batches_received", "Batches received (POST /hooks/whmcs/batch), "
                      "by outcome", ["outcome"], registry=target)
    batch_latency = Histogram("vipgate_batch_ingest_seconds",
                              "Time to answer POST /hooks/whmcs/batch",
                              buckets=(.0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5),
                              registry=target)
    return Metrics(registry, events, latency, ignored_vars, batches, batch_latency)
