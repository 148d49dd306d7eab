"""Due times count working hours of the city's calendar: weekends, evenings and holidays do not count."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cityplatform.config import WorkingHours
from cityplatform.dispatch import due_at
from cityplatform.export import file_name

SHANGHAI = WorkingHours()  # 08:30-17:30, Monday to Friday, Asia/Shanghai (UTC+8)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in November 2026, Shanghai time."""
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.mark.parametrize(
    ("filed", "hours", "due", "why"),
    [
        (local(20, 10, 30), 4, local(20, 14, 30), "Friday morning: the same afternoon"),
        (local(20, 16), 4, local(23, 11), "Friday 16:00: 1.5 h on Friday, 2.5 h on Monday"),
        (local(21, 12), 4, local(23, 12, 30), "Saturday: from Monday 08:30"),
        (local(23, 7), 4, local(23, 12, 30), "Monday before work: from 08:30"),
        (local(23, 20), 9, local(24, 17, 30), "Monday evening: a whole Tuesday"),
    ],
)
def test_due_time_in_working_hours(filed: datetime, hours: float, due: datetime, why: str) -> None:
    assert due_at(filed, hours, SHANGHAI) == due, why


def test_holidays_are_skipped() -> None:
    calendar = WorkingHours(holidays=("2026-11-23",))
    assert due_at(local(20, 16), 4, calendar) == local(24, 11)


def test_a_calendar_without_working_days_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"platform\.working_hours"):
        due_at(local(20, 10), 4, WorkingHours(weekdays=()))


def test_street_office_names_become_safe_file_names() -> None:
    assert file_name("示例西街道（虚构）") == "street-示例西街道_虚构.json"
    assert file_name("../../etc/passwd") == "street-etc_passwd.json"
    assert file_name("...") == "street-unnamed.json"
