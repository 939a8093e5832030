"""Money helpers shared by invoicing, tax and the payment export."""

from decimal import Decimal

CENT = Decimal("0.01")


def to_decimal(value):
    """Accepts Decimal, int or str (floats are refused: they cannot hold cents)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise TypeError("use Decimal or str for money, not float")
    return Decimal(str(value))


def round_money(value):
    """Rounds to whole cents, halves away from zero (what accounting uses)."""
    return Decimal(str(round(float(value), 2))).quantize(CENT)


def format_money(value, currency="EUR"):
    """`1234.5` -> `1,234.50 EUR`."""
    amount = round_money(to_decimal(value))
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount):,.2f} {currency}"
