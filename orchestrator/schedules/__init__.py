"""Schedules: cron-driven runs, stored in Redis and fired by every worker's ticker."""

from orchestrator.schedules.model import ScheduleSpec
from orchestrator.schedules.store import Schedules
from orchestrator.schedules.ticker import Fired

__all__ = ["Fired", "ScheduleSpec", "Schedules"]
