"""Smoke test of the triggerer capacity benchmark: small, fast, no timing assertions."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from bench.triggerer import BenchConfig, LagMonitor, percentile, run, table

pytestmark = pytest.mark.integration


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) == 0.0


async def test_lag_monitor_sees_a_blocked_loop() -> None:
    monitor = LagMonitor(0.01)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.05)
    time.sleep(0.25)  # noqa: ASYNC251 - blocking the loop on purpose
    await asyncio.sleep(0.05)
    monitor.stop()
    await task
    assert max(lag for _, lag in monitor.samples) >= 0.2


def test_twenty_triggers_all_succeed_in_one_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # the harness sets a Fernet key if none is set: make sure it is undone after the test
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")
    monkeypatch.delenv("AIRFLOW__CORE__FERNET_KEY")
    cfg = BenchConfig(
        triggers=20,
        latency=1.0,
        latency_max=2.0,
        poll_interval=0.5,
        max_poll_interval=1.0,
        give_up_s=120.0,
        configure_logging=False,  # leave pytest's logging alone
        what_if=True,
    )

    result = run(cfg)

    for measured in (result, result["what_if_no_gc_freeze"]):
        assert measured["triggers"] == 20
        assert measured["events_by_status"] == {"success": 20}
        assert measured["all_success"] is True
        assert 1 <= measured["peak_running_triggers"] <= 20
        assert measured["simulator_requests_during_wait"]["status_poll"] >= 20
        assert measured["cpu_s"]["wait"] > 0
        assert measured["lag_max_ms"] >= measured["lag_p99_ms"] >= measured["lag_p50_ms"] >= 0
    assert result["lag"]["lag_samples"] > 0
    assert result["trigger_failures"] == 0
    assert not result["gave_up"]
    # the triggers share one OAuth2 token per connection (core/auth.py's TokenCache)
    assert result["simulator_requests_during_wait"].get("token", 0) <= 1
    assert result["gc_pauses"]["frozen"] is True  # the first trigger run froze the heap
    assert result["what_if_no_gc_freeze"]["gc_pauses"]["frozen"] is False  # setting off
    assert gc.get_freeze_count() == 0  # each phase unfreezes after itself
    assert set(result) >= {"triggers", "lag_p99_ms", "lag_max_ms", "cpu_s_per_1000", "loadavg"}
    assert "shipped code" in table(result)
