"""Shipping price rules for the storefront checkout."""

from decimal import Decimal

FREE_STANDARD_SHIPPING_FROM = Decimal("50.00")

RATES = {
    "US": {"standard": Decimal("4.95"), "express": Decimal("14.95")},
    "CA": {"standard": Decimal("7.50"), "express": Decimal("19.00")},
    "MX": {"standard": Decimal("9.00"), "express": Decimal("24.00")},
}


def shipping_cost(subtotal, country, method="standard"):
    """Shipping charged for a cart `subtotal` (Decimal) sent to `country`."""
    if country not in RATES:
        raise ValueError(f"we do not ship to {country}")
    if method not in RATES[country]:
        raise ValueError(f"unknown shipping method {method}")
    if subtotal < 0:
        raise ValueError("subtotal cannot be negative")
    if method == "standard" and subtotal > FREE_STANDARD_SHIPPING_FROM:
        return Decimal("0.00")
    return RATES[country][method]
