"""Per-type rule settings: thresholds, active hours, checks, and seasonal profiles chosen by date.

Kept apart from `agent.config` so that the rule's knobs, their parsing (times, dates, zones) and
the merge of a season's overrides over the base rules sit in one place. Times of day and dates are
local to `cases.timezone`, because city rules ("no vending after 22:00", "winter from 12-01") are.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

CaseType = Literal["street_vending", "garbage_pile", "overflowing_bin", "cooking_fumes"]

_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")

# Defaults that differ by type, applied under what the file gives for the type (not under profiles).
TYPE_DEFAULTS: dict[str, dict[str, object]] = {
    "cooking_fumes": {"require_motion": True},  # a static grey patch is not smoke
    "street_vending": {"max_shift": 0.3},  # a stall stands still; a cart pushed past is not vending
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_hours(window: str) -> tuple[time, time | None]:
    """'HH:MM-HH:MM' -> (start, end); end None means midnight at the end of the day ('24:00')."""
    match = _HOURS.match(window)
    if match is None:
        raise ValueError(f"hours window {window!r} is not HH:MM-HH:MM, e.g. '06:00-22:00' or '20:00-02:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(
            f"hours window {window!r} has an impossible time; hours 00-23 (24:00 as an end), minutes 00-59"
        )
    start, end = time(h1, m1), None if h2 == 24 else time(h2, m2)
    if end == start or (end is None and start == time(0)):
        raise ValueError(f"hours window {window!r} is empty or the whole day; leave `hours` out for all day")
    return start, end


def in_window(window: str, local: time) -> bool:
    """True when `local` lies in the window; a window whose end is before its start wraps midnight."""
    start, end = parse_hours(window)
    if end is None:
        return local >= start
    if start < end:
        return start <= local < end
    return local >= start or local < end


def parse_month_day(value: str) -> tuple[int, int]:
    """'MM-DD' -> (month, day); 02-29 is accepted (it matches in leap years only)."""
    match = _MONTH_DAY.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not MM-DD, e.g. '12-01'")
    month, day = int(match.group(1)), int(match.group(2))
    try:
        date(2000, month, day)  # a leap year, so 02-29 passes
    except ValueError:
        raise ValueError(f"{value!r} is not a day of the year (month 01-12, day within the month)") from None
    return month, day


def parse_timezone(value: str) -> tzinfo:
    """'+08:00', 'UTC' or an IANA zone such as 'Asia/Shanghai'."""
    match = _OFFSET.match(value)
    if match is not None:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3))
        if hours > 14 or minutes > 59:
            raise ValueError(f"UTC offset {value!r} is out of range; give -12:00 … +14:00")
        offset = timedelta(hours=hours, minutes=minutes)
        return timezone(-offset if sign == "-" else offset)
    if value.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {value!r}; give a UTC offset like '+08:00' or a zone like 'Asia/Shanghai'"
        ) from None


def _valid_window(window: str) -> str:
    parse_hours(window)
    return window


HoursWindow = Annotated[str, AfterValidator(_valid_window)]


class RuleConfig(_Strict):
    """A case is raised when `min_detections` frames within `window_s` seconds show the type."""

    min_detections: int = Field(default=3, ge=1, le=1000)
    window_s: float = Field(default=10.0, gt=0)
    min_score: float = Field(default=0.35, ge=0, le=1, description="a frame counts when its best box scores this")
    close_after_s: float = Field(default=120.0, gt=0, description="an open case ends after this long unseen")
    max_distance_m: float = Field(
        default=50.0, gt=0, description="moving cameras: farther away is new, unless it is the case's own track"
    )
    enabled: bool = Field(default=True, description="false: the type never counts (e.g. switched off by a season)")
    hours: list[HoursWindow] = Field(
        default_factory=list, description="local 'HH:MM-HH:MM' windows when the type counts; empty: all day"
    )
    min_present_s: float = Field(
        default=0.0, ge=0, description="fixed cameras: seen this long (first hit to now) before a case; 0: off"
    )
    require_motion: bool = Field(default=False, description="the boxes must change over the confirming frames")
    motion_min_change: float = Field(
        default=0.15, gt=0, le=10, description="box area or position change, as a fraction of the box, that counts"
    )
    min_track_score: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="the min_detections frames must show one track with this mean score; null: any boxes count",
    )
    motion_min_pixel_diff: float = Field(
        default=6.0, gt=0, le=255, description="mean grey-level change inside the box between frames that counts"
    )
    max_shift: float | None = Field(
        default=None,
        gt=0,
        le=10,
        description="fixed cameras: frames count only while a box stays within this fraction of its size of where "
        "it was first seen; a move starts the count again. null: off",
    )

    clear_after_s: float | None = Field(
        default=300.0,
        gt=0,
        description="fixed cameras: an open case's box in view with no box of the type on it this long sends a "
        "`cleared` observation (问题核查); null: this type is never verified by the agent",
    )
    clear_min_frames: int = Field(
        default=3, ge=1, le=1000, description="analysed frames in view and clear a `cleared` observation needs"
    )
    clear_range_m: float = Field(
        default=30.0,
        gt=0,
        description="moving cameras: an open case counts as in view inside the camera's footprint up to this far",
    )

    def active_at(self, local: datetime) -> bool:
        """Whether frames at this local time count for the type."""
        if not self.enabled:
            return False
        return not self.hours or any(in_window(w, local.time()) for w in self.hours)


class ProfileConfig(_Strict):
    """A season: from `from` to `to` (inclusive, local dates; may wrap the year end) these overrides apply."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, description="short name for logs, e.g. winter")
    from_: str = Field(alias="from", description="first day, MM-DD")
    to: str = Field(description="last day, MM-DD; before `from` means the season wraps the year end")
    rules: dict[CaseType, RuleConfig] = Field(
        default_factory=dict, description="per type: only the keys given here replace the base rule's"
    )

    @field_validator("from_", "to")
    @classmethod
    def _valid_day(cls, value: str) -> str:
        parse_month_day(value)
        return value

    def covers(self, day: date) -> bool:
        """Whether the local date lies in the season."""
        start, end, here = parse_month_day(self.from_), parse_month_day(self.to), (day.month, day.day)
        if start <= end:
            return start <= here <= end
        return here >= start or here <= end


def merged(base: RuleConfig, override: RuleConfig | None) -> RuleConfig:
    """`base` with the keys that `override` sets explicitly (unset keys keep the base's value)."""
    if override is None:
        return base
    return base.model_copy(update=override.model_dump(exclude_unset=True))


def base_rule(case_type: str, given: RuleConfig | None) -> RuleConfig:
    """The type's defaults (TYPE_DEFAULTS over RuleConfig's) with what the file gives over them."""
    defaults = RuleConfig.model_validate(TYPE_DEFAULTS.get(case_type, {}))
    return merged(defaults, given)


class ColocatedConfig(_Strict):
    """A case type made of several classes seen together: e.g. umbrella + table + goods is a stall."""

    case_type: CaseType = Field(description="the case type a group raises")
    objects: list[str] = Field(min_length=1, description="model class names that make up the thing, e.g. stall")
    people: list[str] = Field(default_factory=list, description="model class names that join a group, never alone")
    min_objects: int = Field(default=2, ge=1, le=50, description="a group needs this many boxes from `objects`")
    min_people: int = Field(default=1, ge=1, le=50, description="or one box from `objects` and this many from `people`")
    max_gap: float = Field(
        default=0.5, ge=0, le=10, description="boxes join when their gap is at most this times the taller one's height"
    )

    @model_validator(mode="after")
    def _names_once(self) -> ColocatedConfig:
        names = self.objects + self.people
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"{', '.join(map(repr, twice))} listed more than once in objects/people; "
                "give each class name once, in objects (makes a group) or people (joins one)"
            )
        return self


class OverflowConfig(_Strict):
    """Which boxes raise an overflowing bin (agent.cases.overflow; measured in docs/overflow.md)."""

    evidence: Literal["model", "garbage_at_bin", "either"] = Field(
        default="model",
        description="model: the model's overflow boxes (best measured, docs/overflow.md); "
        "garbage_at_bin: a garbage box at a bin's top or foot; either: both",
    )
    case_type: CaseType = Field(default="overflowing_bin", description="the case type the evidence raises")
    garbage: list[str] = Field(default=["garbage"], min_length=1, description="model classes that are garbage")
    bins: list[str] = Field(default=["garbage_bin", "overflow"], min_length=1, description="model classes of bins")
    band: float = Field(
        default=0.25, ge=0, le=2, description="top and foot bands: this times the bin's height (and width aside)"
    )
    min_score: float = Field(default=0.30, ge=0, le=1, description="composed boxes scoring less are dropped")
    same_iou: float = Field(
        default=0.5, gt=0, le=1, description="either: a composed box overlapping a model box more is the same bin"
    )


class CaseCode(_Strict):
    standard: str
    code: str
    name: str


DEFAULT_CODES: dict[str, list[dict[str, str]]] = {
    "garbage_pile": [
        {"standard": "GB/T 30428.2-2013", "code": "01-10", "name": "暴露垃圾"},
        {"standard": "GB/T 47678.5-2026", "code": "06010", "name": "暴露垃圾"},
    ],
    "overflowing_bin": [{"standard": "GB/T 47678.5-2026", "code": "06042", "name": "垃圾站(箱)满溢"}],
    "street_vending": [
        {"standard": "GB/T 30428.2-2013", "code": "04-06", "name": "占道经营"},
        {"standard": "GB/T 47678.5-2026", "code": "09006", "name": "占道经营"},
    ],
    "cooking_fumes": [{"standard": "CJ/T 214-2007", "code": "16", "name": "油烟污染"}],
}


class CasesConfig(_Strict):
    """How detections become cases: per-type rules, seasons, the platform's codes."""

    rules: dict[CaseType, RuleConfig] = Field(default_factory=dict, description="per type; missing types use defaults")
    codes: dict[CaseType, list[CaseCode]] = Field(
        default_factory=lambda: {k: [CaseCode(**c) for c in v] for k, v in DEFAULT_CODES.items()},
        description="the platform's case codes for each type",
    )
    remember_days: float = Field(
        default=7.0, gt=0, description="a sighting within max_distance_m of a case this recent updates that case"
    )
    timezone: str = Field(default="+08:00", description="local time for `hours` and profile dates: +08:00 or a zone")
    profiles: list[ProfileConfig] = Field(
        default_factory=list, description="seasons [{name, from, to, rules}]; the first covering the date applies"
    )
    colocated: list[ColocatedConfig] = Field(
        default_factory=list, description="case types raised by groups of co-located boxes (agent.cases.colocated)"
    )
    overflow: OverflowConfig = Field(
        default_factory=OverflowConfig, description="which evidence raises an overflowing bin (agent.cases.overflow)"
    )

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        parse_timezone(value)
        return value

    @property
    def tz(self) -> tzinfo:
        """The zone of `hours` and profile dates."""
        return parse_timezone(self.timezone)

    def profile_for(self, utc: datetime) -> int:
        """Index of the first profile covering the local date of `utc`; -1 for none."""
        if not self.profiles:
            return -1
        day = utc.astimezone(self.tz).date()
        return next((i for i, p in enumerate(self.profiles) if p.covers(day)), -1)

    def rule(self, case_type: str, utc: datetime | None = None) -> RuleConfig:
        """The rule for the type; with a time, merged with the first profile covering its local date."""
        rule = base_rule(case_type, self.rules.get(case_type))  # type: ignore[call-overload]
        index = -1 if utc is None else self.profile_for(utc)
        if index >= 0:
            rule = merged(rule, self.profiles[index].rules.get(case_type))  # type: ignore[call-overload]
        return rule
