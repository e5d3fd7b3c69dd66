"""The runsc row's summaries and table, from made-up samples (no Docker)."""

from __future__ import annotations

from bench.runsc import Series, _ratio, markdown


def test_a_series_summarises_its_good_runs_and_lists_the_rest() -> None:
    """p50 and CPU per run come from the runs that completed; errors are listed, not averaged."""
    series = Series(latencies=[0.3, 0.1, 0.2], cpu=[1.0, 2.0, 3.0], errors=["status sandbox_error"])
    summary = series.summary()
    assert summary["runs"] == 4
    assert summary["p50_s"] == 0.2
    assert summary["cpu_s_per_run"] == 2.0
    assert summary["errors"] == ["status sandbox_error"]


def test_ratios_need_both_figures() -> None:
    """A ratio is runsc over runc, and absent when either figure is."""
    assert _ratio(3.0, 1.5) == 2.0
    assert _ratio(None, 1.0) is None
    assert _ratio(1.0, None) is None


def test_the_table_has_one_line_per_workload_and_kind() -> None:
    """Each row shows both runtimes' p50 and CPU and their ratios; failures are listed."""
    good = Series(latencies=[1.0], cpu=[0.5]).summary()
    slow = Series(latencies=[2.0], cpu=[1.5], errors=["stdout ''"]).summary()
    result = {
        "when": "2026-12-04T16:00:00+00:00",
        "host": {"machine": "x86_64", "cpus": 2},
        "environment": "env",
        "runs_per_series": 1,
        "rows": [
            {
                "workload": "tiny script",
                "kind": "cold",
                "runc": good,
                "runsc": slow,
                "p50_ratio": 2.0,
                "cpu_ratio": 3.0,
            }
        ],
    }
    text = markdown(result)
    assert "| tiny script | cold | 1.000 s | 2.000 s | 2.00x | 0.500 s | 1.500 s | 3.00x |" in text
    assert "- tiny script cold runsc: stdout ''" in text
