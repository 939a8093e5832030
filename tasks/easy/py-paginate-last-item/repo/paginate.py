"""Pagination helpers for the order listing endpoint."""

import math


def page_count(total, per_page):
    """Number of pages needed for `total` items; an empty listing has one page."""
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    return max(1, math.ceil(total / per_page))


def paginate(items, page, per_page):
    """Returns the items shown on the 1-based `page`."""
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    if page < 1:
        raise ValueError("page must be >= 1")
    start = (page - 1) * per_page
    end = start + per_page - 1
    return items[start:end]


def page_info(total, page, per_page):
    """Metadata returned alongside a page."""
    pages = page_count(total, per_page)
    return {
        "page": page,
        "pages": pages,
        "has_prev": page > 1,
        "has_next": page < pages,
    }
