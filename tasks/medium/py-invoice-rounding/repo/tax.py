"""VAT rates and per-line tax."""

from decimal import Decimal

from money import round_money

RATES = {
    "standard": Decimal("0.20"),
    "reduced": Decimal("0.05"),
    "zero": Decimal("0"),
}


def line_tax(net, rate_name):
    """VAT on one invoice line, rounded per line."""
    try:
        rate = RATES[rate_name]
    except KeyError:
        raise ValueError(f"unknown VAT rate {rate_name}") from None
    return round_money(net * rate)
