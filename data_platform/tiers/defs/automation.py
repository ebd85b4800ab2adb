"""When the tiers run, the Dagster way: a hot tier every 10 minutes (today's partition), its warm
tier as soon as a hot day of the month lands, both with a freshness policy so Dagit shows a tier
that fell behind."""

from datetime import timedelta

import dagster as dg

from data_platform.dagster_common import after_upstream_update, on_cron_latest

HOT_CRON = "2-59/10 * * * *"  # 2 minutes past each 10-minute slot
HOT_CONDITION = on_cron_latest(HOT_CRON)
WARM_CONDITION = after_upstream_update()
# Hot runs every 10 minutes and warm follows each: an hour without either is a stalled tier.
HOT_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=1), warn_window=timedelta(minutes=30)
)
WARM_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=2), warn_window=timedelta(hours=1)
)
