"""Cron expressions read as the scheduler reads them, and the run a trigger is making now.

Imports nothing of the gateway: the configuration checks its cron expressions with it, and the
scheduler runs them.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """A trigger from crontab's five fields, or six with seconds first; ValueError if invalid."""
    fields = expression.split()
    zone = ZoneInfo(timezone)
    if len(fields) == 5:
        return CronTrigger.from_crontab(expression, timezone=zone)
    if len(fields) == 6:
        second, minute, hour, day, month, dow = fields
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=dow,
            timezone=zone,
        )
    raise ValueError(f"{expression!r}: a cron expression has 5 fields (or 6 with seconds first)")


def latest_fire_time(trigger: CronTrigger, now: dt.datetime, grace: dt.timedelta) -> dt.datetime:
    """The trigger's latest fire time in (now - grace, now]: the run being made now. A run
    started by hand, outside any fire time, is its own time (truncated to the second)."""
    fire: dt.datetime | None = trigger.get_next_fire_time(None, now - grace)
    if fire is None or fire > now:
        return now.replace(microsecond=0)
    while True:
        later: dt.datetime | None = trigger.get_next_fire_time(
            fire, fire + dt.timedelta(microseconds=1)
        )
        if later is None or later > now:
            return fire.astimezone(dt.UTC)
        fire = later
