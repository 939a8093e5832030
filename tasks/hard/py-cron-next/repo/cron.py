"""Next fire time of a crontab(5) schedule, for the job runner.

An expression has five fields: minute (0-59), hour (0-23), day of month
(1-31), month (1-12 or jan-dec) and day of week (0-7 or sun-sat; 0 and 7
are both Sunday). Each field is `*`, or a comma-separated list of items;
an item is a value `a`, a range `a-b`, or a stepped range `a-b/n`, `*/n`
or `a/n` (from a to the field's maximum). Names are case-insensitive.

As in Vixie cron, when both day of month and day of week are restricted
(neither is `*`), a day matches if EITHER matches; when one of them is
`*`, only the other one counts.
"""

from datetime import datetime, timedelta

MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}

FIELDS = [
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 6, DAYS),
]


def _value(text, lo, hi, names, field):
    if not text.isdigit():
        raise ValueError(f"{field}: bad value {text!r}")
    n = int(text)
    if not lo <= n <= hi:
        raise ValueError(f"{field}: {n} is out of range {lo}-{hi}")
    return n


def parse_field(text, lo, hi, names, field):
    """The set of values a field allows."""
    values = set()
    for item in text.split(","):
        if item.startswith("*"):
            step = 1
            if "/" in item:
                step = int(item.split("/", 1)[1])
            values.update(range(lo, hi + 1, step))
        elif "-" in item:
            a, b = item.split("-", 1)
            b = b.split("/", 1)[0]
            values.update(range(_value(a, lo, hi, names, field), _value(b, lo, hi, names, field) + 1))
        else:
            values.add(_value(item, lo, hi, names, field))
    return values


class Schedule:
    def __init__(self, expr):
        parts = expr.split()
        if len(parts) != 5:
            raise ValueError(f"expected 5 fields, got {len(parts)}")
        sets = [parse_field(p, lo, hi, names, f) for p, (f, lo, hi, names) in zip(parts, FIELDS)]
        self.minutes, self.hours, self.days, self.months, self.weekdays = sets

    def matches(self, dt):
        cron_weekday = (dt.weekday() + 1) % 7  # Python: Monday = 0; cron: Sunday = 0
        return (
            dt.minute in self.minutes
            and dt.hour in self.hours
            and dt.month in self.months
            and dt.day in self.days
            and cron_weekday in self.weekdays
        )


def next_run(expr, after):
    """The first time strictly after `after` (a naive datetime) at which
    `expr` fires. Seconds are always zero. ValueError for an invalid
    expression or one that can never fire (such as 30 February)."""
    schedule = Schedule(expr)
    t = after.replace(second=0, microsecond=0)
    for _ in range(366 * 24 * 60):
        if schedule.matches(t):
            return t
        t += timedelta(minutes=1)
    raise ValueError(f"{expr!r} does not fire within a year")
