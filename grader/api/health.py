"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ..adapters.cluster import LATENCY_BUCKETS
from ..adapters.queue import queue_for
from ..constants import QUEUE_WEBHOOKS
from .models import Health, Readiness
from .state import ApiState, api_state
from .tracing import HttpMetrics

router = APIRouter(tags=["health"])
SWEEP_COUNTERS = {
    "sweeps": "Sweeps of the workers for stuck submissions",
    "sweep_requeues": "Stuck submissions a sweep re-queued (lost task, dead worker)",
    "sweep_failures": "Stuck submissions a sweep ended failed, past their retry budget",
}


@router.get(
    "/healthz", summary="The API process is up", response_model=Health, operation_id="getHealth"
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Redis, workers and their Docker engines are reachable",
    response_model=Readiness,
    operation_id="getReadiness",
    responses={503: {"model": Readiness, "description": "Not ready: see checks"}},
)
async def readyz(request: Request) -> JSONResponse:
    state = api_state(request)
    redis_ok = await run_in_threadpool(state.store.ping)
    workers = await run_in_threadpool(state.store.workers) if redis_ok else []
    docker_ok = any(w.get("docker") for w in workers)
    ready = redis_ok and bool(workers) and docker_ok
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {"redis": redis_ok, "workers": len(workers), "docker": docker_ok},
    }
    return JSONResponse(status_code=200 if ready else 503, content=body)


class StoreCollector(Collector):
    """Cluster-wide numbers, read from Redis at scrape time (workers write them)."""

    def __init__(self, state: ApiState) -> None:
        self._state = state

    def collect(self) -> Iterator[Any]:
        stats, latency = self._state.store.stats()
        verdicts = CounterMetricFamily(
            "grader_submissions", "Graded submissions by verdict", labels=["verdict"]
        )
        for name, value in sorted(stats.items()):
            if name.startswith("verdict:"):
                verdicts.add_metric([name.split(":", 1)[1]], value)
        yield verdicts
        yield CounterMetricFamily(
            "grader_sandbox_failures",
            "Runs that failed on our side",
            value=stats.get("sandbox_failures", 0),
        )
        yield CounterMetricFamily(
            "grader_webhooks_delivered",
            "Webhooks delivered",
            value=stats.get("webhooks_delivered", 0),
        )
        yield CounterMetricFamily(
            "grader_webhooks_failed", "Webhooks given up on", value=stats.get("webhooks_failed", 0)
        )
        for name, help_text in SWEEP_COUNTERS.items():
            yield CounterMetricFamily(f"grader_{name}", help_text, value=stats.get(name, 0))
        buckets = [(str(b), latency.get(f"le:{b}", 0.0)) for b in LATENCY_BUCKETS]
        buckets.append(("+Inf", latency.get("count", 0.0)))
        yield HistogramMetricFamily(
            "grader_submission_latency_seconds",
            "From acceptance to verdict",
            buckets=buckets,
            sum_value=latency.get("sum", 0.0),
        )
        depth = GaugeMetricFamily("grader_queue_depth", "Tasks waiting per queue", labels=["queue"])
        for queue in [queue_for(e) for e in self._state.environments] + [QUEUE_WEBHOOKS]:
            depth.add_metric([queue], float(self._state.store.queue_depth(queue)))
        yield depth


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    state = api_state(request)
    registry = CollectorRegistry()
    registry.register(StoreCollector(state))
    body = await run_in_threadpool(generate_latest, registry)
    http: HttpMetrics | None = getattr(request.app.state, "http_metrics", None)
    if http is not None:  # this process's own requests, beside the cluster's numbers
        body += generate_latest(http.registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
