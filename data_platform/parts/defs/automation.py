"""When parts runs: every stage of today's partition for every supplier at 02:00 Asia/Seoul
(declarative automation; a missed day is not caught up, as the seed's `catchup=False`), a
freshness policy on the prices table, and a run-failure sensor posting the run's Dagit link."""

from collections.abc import Collection
from datetime import timedelta

import dagster as dg

from data_platform.dagster_common import on_cron_latest
from data_platform.parts.defs.resources import PartsResource

TIMEZONE = "Asia/Seoul"
CRON = "0 2 * * *"
SENSOR_NAME = "parts_run_failure_to_slack"
# All six stages share the condition: requested in the same tick, they run as one run per
# supplier-day, in dependency order.
CONDITION = on_cron_latest(CRON, TIMEZONE)
# Today's prices are expected between 02:00 and 06:00 Seoul time.
PRICES_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=4), timezone=TIMEZONE
)


def failure_sensor(keys: Collection[dg.AssetKey]) -> dg.SensorDefinition:
    """Any failed run that materializes a parts asset (automation, job or Dagit), after retries."""

    @dg.run_failure_sensor(
        name=SENSOR_NAME,
        description="Posts a failed parts run (after its retries) to Slack with its Dagit link.",
    )
    def parts_failure(context: dg.RunFailureSensorContext, parts: PartsResource) -> None:
        from data_platform.parts.notify import Fanout

        run = context.dagster_run
        planned = context.instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ).records
        if not {r.event_log_entry.dagster_event.asset_key for r in planned} & set(keys):
            return  # not a parts run
        partition = run.tags.get("dagster/partition", "")
        text = (
            f"[parts] run {run.run_id[:8]} of {run.job_name} {partition} failed: "
            f"{context.failure_event.message or 'see the run'}\n{parts.run_link(run.run_id)}"
        )
        Fanout(context.log.warning, parts.slack()).send(text)

    return parts_failure
