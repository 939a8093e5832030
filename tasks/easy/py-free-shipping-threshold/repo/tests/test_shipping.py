from decimal import Decimal

import pytest

from shipping import shipping_cost


@pytest.mark.parametrize("country", ["US", "CA", "MX"])
def test_exactly_at_threshold_is_free(country):
    assert shipping_cost(Decimal("50.00"), country, "standard") == Decimal("0.00")


def test_above_threshold_is_free():
    assert shipping_cost(Decimal("50.01"), "US") == Decimal("0.00")
    assert shipping_cost(Decimal("250"), "CA") == Decimal("0.00")


def test_just_below_threshold_pays():
    assert shipping_cost(Decimal("49.99"), "US") == Decimal("4.95")
    assert shipping_cost(Decimal("0"), "MX") == Decimal("9.00")


def test_express_is_never_free():
    assert shipping_cost(Decimal("50.00"), "US", "express") == Decimal("14.95")
    assert shipping_cost(Decimal("500.00"), "CA", "express") == Decimal("19.00")


def test_errors():
    with pytest.raises(ValueError):
        shipping_cost(Decimal("10"), "FR")
    with pytest.raises(ValueError):
        shipping_cost(Decimal("10"), "US", "drone")
    with pytest.raises(ValueError):
        shipping_cost(Decimal("-1"), "US")
