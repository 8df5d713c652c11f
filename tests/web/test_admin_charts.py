"""The admin overview's sparklines: points placed by time and scaled to the peak."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC

from web.admin.charts import sparkline

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_sparklines_place_samples_by_time_and_scale_to_the_peak() -> None:
    spark = sparkline([(T0 - timedelta(minutes=60), 0.0), (T0 - timedelta(minutes=30), 10.0), (T0, 5.0)], end=T0)
    assert spark.points == "0.0,27.0 60.0,1.0 120.0,14.0" and spark.peak == 10 and spark.last == 5
    assert sparkline([], end=T0).points == "" and sparkline([(T0, 3.0)], end=T0).points.count(",") == 2
