from datetime import datetime as dt

import pytest

from cron import next_run


def test_daily():
    assert next_run("30 8 * * *", dt(2024, 5, 1, 8, 29, 59)) == dt(2024, 5, 1, 8, 30)
    assert next_run("30 8 * * *", dt(2024, 5, 1, 7, 0)) == dt(2024, 5, 1, 8, 30)


def test_strictly_after():
    assert next_run("30 8 * * *", dt(2024, 5, 1, 8, 30)) == dt(2024, 5, 2, 8, 30)
    assert next_run("30 8 * * *", dt(2024, 5, 1, 8, 30, 0, 1)) == dt(2024, 5, 2, 8, 30)
    assert next_run("* * * * *", dt(2024, 5, 1, 12, 0, 30, 500)) == dt(2024, 5, 1, 12, 1)


def test_stepped_ranges_and_names():
    expr = "*/15 9-17/2 * * mon-fri"
    assert next_run(expr, dt(2024, 5, 3, 17, 50)) == dt(2024, 5, 6, 9, 0)    # Fri evening -> Mon
    assert next_run(expr, dt(2024, 5, 6, 9, 50)) == dt(2024, 5, 6, 11, 0)    # hours 9,11,13,15,17
    assert next_run(expr, dt(2024, 5, 6, 17, 45)) == dt(2024, 5, 7, 9, 0)
    assert next_run(expr, dt(2024, 5, 6, 13, 14)) == dt(2024, 5, 6, 13, 15)


def test_value_with_step():
    assert next_run("10/20 * * * *", dt(2024, 5, 1, 12, 50)) == dt(2024, 5, 1, 13, 10)
    assert next_run("10/20 * * * *", dt(2024, 5, 1, 12, 10)) == dt(2024, 5, 1, 12, 30)
    assert next_run("0 0-23/6 * * *", dt(2024, 5, 1, 18, 0)) == dt(2024, 5, 2, 0, 0)


def test_day_of_month_or_day_of_week():
    # 1st, 15th, and every Friday.
    assert next_run("0 0 1,15 * 5", dt(2024, 5, 1, 0, 0)) == dt(2024, 5, 3)
    assert next_run("0 0 1,15 * 5", dt(2024, 5, 11)) == dt(2024, 5, 15)
    assert next_run("0 0 1,15 * 5", dt(2024, 5, 15)) == dt(2024, 5, 17)
    assert next_run("0 9 13 * fri", dt(2024, 9, 1)) == dt(2024, 9, 6, 9)


def test_only_the_restricted_day_field_counts():
    assert next_run("0 9 * * 1-5", dt(2024, 5, 4, 10)) == dt(2024, 5, 6, 9)    # Sat -> Mon
    assert next_run("0 0 31 * *", dt(2024, 4, 1)) == dt(2024, 5, 31)
    assert next_run("0 0 31 * *", dt(2024, 5, 31)) == dt(2024, 7, 31)


def test_sunday_is_0_and_7():
    assert next_run("0 12 * * 7", dt(2024, 5, 1)) == dt(2024, 5, 5, 12)
    assert next_run("0 12 * * 0", dt(2024, 5, 1)) == dt(2024, 5, 5, 12)
    assert next_run("0 12 * * sun", dt(2024, 5, 5, 12)) == dt(2024, 5, 12, 12)
    assert next_run("0 12 * * 5-7", dt(2024, 5, 4, 13)) == dt(2024, 5, 5, 12)


def test_month_names_any_case():
    assert next_run("5 4 * jan,JUL *", dt(2024, 2, 1)) == dt(2024, 7, 1, 4, 5)
    assert next_run("0 0 1 Mar-May *", dt(2024, 5, 2)) == dt(2025, 3, 1)


def test_rollovers():
    assert next_run("0 0 1 1 *", dt(2024, 12, 31, 23, 59)) == dt(2025, 1, 1)
    assert next_run("59 23 31 12 *", dt(2024, 12, 31, 23, 59)) == dt(2025, 12, 31, 23, 59)


def test_leap_day_far_away():
    assert next_run("0 0 29 2 *", dt(2024, 3, 1)) == dt(2028, 2, 29)
    assert next_run("0 0 29 2 *", dt(2097, 3, 1)) == dt(2104, 2, 29)


def test_never_fires():
    with pytest.raises(ValueError):
        next_run("0 0 30 2 *", dt(2024, 1, 1))
    with pytest.raises(ValueError):
        next_run("0 0 31 4,6,9,11 *", dt(2024, 1, 1))


@pytest.mark.parametrize(
    "expr",
    [
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 8",
        "*/0 * * * *",
        "5-1 * * * *",
        "* * * foo *",
        "* * * * funday",
        "1,,2 * * * *",
        "a * * * *",
        "-1 * * * *",
        "1-2-3 * * * *",
        "*/x * * * *",
        "1/ * * * *",
    ],
)
def test_invalid(expr):
    with pytest.raises(ValueError):
        next_run(expr, dt(2024, 1, 1))


def test_fast_enough_for_sparse_schedules():
    after = dt(2024, 1, 1)
    for _ in range(50):
        after = next_run("0 0 29 2 *", after)
    assert after == dt(2024 + 4 * 50 + 4, 2, 29)  # 2100, 2200 are not leap years
