"""Report generation from a small sample of locust's CSV output (no stack needed)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import report  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def _sample(tmp_path: Path) -> Path:
    for f in DATA.glob("drop_*.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / "drop"


def test_outcome_labels_are_grouped_under_their_endpoint(tmp_path):
    summary = report.summarize_requests(_sample(tmp_path), seconds=10)
    outcomes = summary["outcomes"]["POST /orders/add"]
    assert outcomes["won"] == 50 and outcomes["sold_out"] == 178
    assert summary["endpoints"]["POST /orders/add [won]"]["req_per_s"] == 5.0


def test_server_errors_are_counted_from_failure_messages(tmp_path):
    summary = report.summarize_requests(_sample(tmp_path), seconds=10)
    assert summary["server_errors_5xx"] == 2  # the connection error is a failure, not a 5xx


def test_totals_carry_percentiles(tmp_path):
    total = report.summarize_requests(_sample(tmp_path), seconds=10)["total"]
    assert total["requests"] == 317 and total["p99_ms"] is not None


def test_plots_are_written(tmp_path):
    prefix = _sample(tmp_path)
    made = report.plot_run(prefix, tmp_path, "sample")
    assert {p.name for p in made} == {"throughput.png", "latency.png"}
    assert all(p.stat().st_size > 1000 for p in made)
    summaries = {
        "cache on": report.summarize_requests(prefix, seconds=10),
        "cache off": report.summarize_requests(prefix, seconds=20),
    }
    out = report.plot_compare({"cache on": prefix, "cache off": prefix}, summaries, tmp_path / "c.png", "t")
    assert out.stat().st_size > 1000


def test_summary_prints_the_verdict(tmp_path):
    requests = report.summarize_requests(_sample(tmp_path), seconds=10)
    text = report.format_summary(
        {
            "scenario": "drop",
            "load_generator": {"description": "locust"},
            "requests": requests,
            "ok": False,
            "invariants": {
                "settled": True,
                "settle_seconds": 1.5,
                "checks": [{"name": "no oversell", "ok": True, "detail": []}],
            },
        }
    )
    assert "POST /orders/add [sold_out]" in text and "verdict: FAIL" in text


def test_loop_lag_is_summarized_over_every_process_from_the_opening(tmp_path):
    (tmp_path / "loop-lag-1.json").write_text(json.dumps([[99.0, 5.0]] + [[100.0 + i, 0.001] for i in range(98)]))
    (tmp_path / "loop-lag-2.json").write_text(json.dumps([[150.0, 0.250], [151.0, 0.002]]))
    lag = report.loop_lag(tmp_path, since=100.0)
    # the sample before the opening (5 s, while users waited for it) is left out
    assert lag == {"p50": 1.0, "p99": 250.0, "max": 250.0, "samples": 100}
    assert report.loop_lag(tmp_path / "missing", since=0) is None


def test_the_summary_says_how_late_the_load_generator_ran(tmp_path):
    requests = report.summarize_requests(_sample(tmp_path), seconds=10)
    lag = {"p50": 0.4, "p99": 61.0, "max": 240.5, "samples": 2000}
    text = report.format_summary(
        {"scenario": "drop", "load_generator": {"description": "locust", "loop_lag_ms": lag}, "requests": requests}
    )
    assert "load generator's own delay" in text and "p99 61.0 / max 240.5 ms" in text


def test_a_drops_total_says_it_leaves_the_page_views_out(tmp_path):
    requests = report.summarize_requests(_sample(tmp_path), seconds=10)
    summary = {"scenario": "drop", "load_generator": {"description": "locust"}, "requests": requests, "ok": True}
    assert "page views" not in report.format_summary(summary)  # a cold opening has none
    summary["load_generator"]["opening"] = "page view first"
    total = next(line for line in report.format_summary(summary).splitlines() if "total" in line)
    assert "without the page views before the opening" in total
