"""Free/busy computation for the meeting scheduler.

Times are integers (minutes since midnight). An interval (start, end) is
half-open: it covers start <= t < end, so (540, 600) is 09:00-10:00 and
does not overlap (600, 660).
"""


def merge_busy(intervals):
    """Combines busy intervals into a sorted list of disjoint tuples.

    Intervals that overlap or touch are merged; empty intervals
    (start == end) are dropped; an interval with start > end is a
    ValueError. The input is not modified and may be in any order.
    """
    result = []
    for start, end in intervals:
        if result and start < result[-1][1]:
            result[-1] = (result[-1][0], end)
        else:
            result.append((start, end))
    return result


def free_slots(busy, window_start, window_end, min_length=1):
    """Free (start, end) slots inside [window_start, window_end).

    Busy intervals may extend beyond the window or lie entirely outside
    it. Only slots at least `min_length` minutes long are returned.
    """
    if window_start > window_end:
        raise ValueError("window_start is after window_end")
    slots = []
    cursor = window_start
    for start, end in merge_busy(busy):
        if start > cursor:
            slots.append((cursor, start))
        cursor = end
    if cursor < window_end:
        slots.append((cursor, window_end))
    return [s for s in slots if s[1] - s[0] >= min_length]


def hhmm(minutes):
    """540 -> '09:00'."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
