import random

import pytest

from busy import free_slots, hhmm, merge_busy


def t(s):
    h, m = s.split(":")
    return int(h) * 60 + int(m)


def iv(a, b):
    return (t(a), t(b))


def test_disjoint_sorted_input_is_unchanged():
    assert merge_busy([iv("09:00", "10:00"), iv("11:00", "12:00")]) == [iv("09:00", "10:00"), iv("11:00", "12:00")]


def test_overlap_and_nesting():
    assert merge_busy([iv("09:00", "12:00"), iv("10:00", "11:00")]) == [iv("09:00", "12:00")]
    assert merge_busy([iv("09:00", "10:30"), iv("10:00", "11:00")]) == [iv("09:00", "11:00")]
    assert merge_busy([iv("09:00", "12:00"), iv("10:00", "11:00"), iv("11:30", "12:30")]) == [iv("09:00", "12:30")]


def test_touching_intervals_merge():
    assert merge_busy([iv("13:00", "14:00"), iv("14:00", "15:00")]) == [iv("13:00", "15:00")]


def test_unsorted_input():
    got = merge_busy([iv("15:00", "16:00"), iv("09:00", "10:00"), iv("09:30", "09:45"), iv("10:00", "10:15")])
    assert got == [iv("09:00", "10:15"), iv("15:00", "16:00")]


def test_empty_and_duplicate_intervals():
    assert merge_busy([]) == []
    assert merge_busy([(600, 600)]) == []
    assert merge_busy([(600, 600), (540, 600), (540, 600)]) == [(540, 600)]
    # An empty interval inside a gap does not bridge it.
    assert merge_busy([(0, 10), (15, 15), (20, 30)]) == [(0, 10), (20, 30)]


def test_invalid_interval():
    with pytest.raises(ValueError):
        merge_busy([(600, 540)])


def test_input_not_modified_and_lists_accepted():
    data = [[600, 660], [540, 610]]
    assert merge_busy(data) == [(540, 660)]
    assert data == [[600, 660], [540, 610]]


def test_matches_brute_force():
    rng = random.Random(1234)
    for _ in range(300):
        ivs = []
        for _ in range(rng.randint(0, 8)):
            a = rng.randint(0, 60)
            ivs.append((a, a + rng.randint(0, 12)))
        covered = {m for a, b in ivs for m in range(a, b)}
        merged = merge_busy(ivs)
        assert {m for a, b in merged for m in range(a, b)} == covered, ivs
        for (a1, b1), (a2, b2) in zip(merged, merged[1:]):
            assert b1 < a2, merged  # disjoint and not touching
        assert all(a < b for a, b in merged)


DAY = (t("09:00"), t("17:00"))


def test_free_slots_basic():
    busy = [iv("09:00", "12:00"), iv("10:00", "11:00"), iv("13:00", "14:00")]
    assert free_slots(busy, *DAY) == [iv("12:00", "13:00"), iv("14:00", "17:00")]


def test_free_slots_busy_outside_window():
    busy = [iv("07:00", "08:00"), iv("08:30", "09:30"), iv("16:30", "18:00"), iv("19:00", "20:00")]
    assert free_slots(busy, *DAY) == [iv("09:30", "16:30")]


def test_free_slots_early_meeting_does_not_move_the_day_start():
    assert free_slots([iv("06:00", "07:00")], *DAY) == [DAY]


def test_free_slots_fully_booked_and_empty_calendar():
    assert free_slots([iv("08:00", "18:00")], *DAY) == []
    assert free_slots([], *DAY) == [DAY]
    assert free_slots([iv("09:00", "17:00")], *DAY) == []


def test_free_slots_min_length():
    busy = [iv("09:10", "10:00"), iv("10:20", "16:45")]
    assert free_slots(busy, *DAY, min_length=15) == [iv("10:00", "10:20"), iv("16:45", "17:00")]
    assert free_slots(busy, *DAY, min_length=20) == [iv("10:00", "10:20")]
    assert free_slots(busy, *DAY) == [iv("09:00", "09:10"), iv("10:00", "10:20"), iv("16:45", "17:00")]


def test_free_slots_unsorted_back_to_back():
    busy = [iv("14:00", "15:00"), iv("13:00", "14:00"), iv("09:00", "09:30")]
    assert free_slots(busy, *DAY) == [iv("09:30", "13:00"), iv("15:00", "17:00")]


def test_free_slots_window_errors_and_zero_window():
    with pytest.raises(ValueError):
        free_slots([], 600, 540)
    assert free_slots([], 600, 600) == []


def test_hhmm():
    assert hhmm(540) == "09:00"
    assert hhmm(t("23:59")) == "23:59"
