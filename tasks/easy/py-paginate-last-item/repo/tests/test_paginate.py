import pytest

from paginate import page_count, page_info, paginate

ORDERS = list(range(1, 26))


def test_first_page_is_full():
    assert paginate(ORDERS, 1, 10) == list(range(1, 11))


def test_middle_page():
    assert paginate(ORDERS, 2, 10) == list(range(11, 21))


def test_last_partial_page():
    assert paginate(ORDERS, 3, 10) == [21, 22, 23, 24, 25]


def test_every_item_appears_exactly_once():
    for per_page in (1, 3, 7, 10, 25, 30):
        seen = []
        for page in range(1, page_count(len(ORDERS), per_page) + 1):
            seen.extend(paginate(ORDERS, page, per_page))
        assert seen == ORDERS, per_page


def test_page_past_the_end_is_empty():
    assert paginate(ORDERS, 4, 10) == []


def test_single_item_pages():
    assert paginate(ORDERS, 25, 1) == [25]


def test_invalid_arguments():
    with pytest.raises(ValueError):
        paginate(ORDERS, 0, 10)
    with pytest.raises(ValueError):
        paginate(ORDERS, 1, 0)


def test_page_info():
    assert page_info(25, 3, 10) == {"page": 3, "pages": 3, "has_prev": True, "has_next": False}
    assert page_info(0, 1, 10)["pages"] == 1
