"""Cron events. PreCronJob asks for a full reconcile so that VIP removals land before the
cron's suspension step; DailyCronJob re-checks everyone after the cron's own changes."""

from hooks.registry import Subjects, on


@on("PreCronJob", "DailyCronJob")
def daily_cron() -> Subjects:
    return Subjects(everyone=True)


@on("AfterCronJob")
def cron_tick() -> Subjects:
    # Every few minutes; the stub flushes its spool on it. Nothing to reconcile.
    return Subjects()
