"""Invoices: lines, per-line rounding, totals."""

from dataclasses import dataclass, field
from decimal import Decimal

from money import format_money, round_money, to_decimal
from tax import line_tax


@dataclass
class Line:
    description: str
    quantity: int
    unit_price: Decimal
    vat: str = "standard"

    @property
    def net(self):
        return round_money(self.quantity * to_decimal(self.unit_price))

    @property
    def tax(self):
        return line_tax(self.net, self.vat)


@dataclass
class Invoice:
    number: str
    lines: list = field(default_factory=list)

    def add(self, description, quantity, unit_price, vat="standard"):
        if quantity == 0:
            raise ValueError("quantity cannot be zero")
        self.lines.append(Line(description, quantity, to_decimal(unit_price), vat))
        return self

    def net_total(self):
        return sum((line.net for line in self.lines), Decimal("0.00"))

    def tax_total(self):
        return sum((line.tax for line in self.lines), Decimal("0.00"))

    def total(self):
        return self.net_total() + self.tax_total()

    def summary(self):
        return {
            "net": format_money(self.net_total()),
            "vat": format_money(self.tax_total()),
            "total": format_money(self.total()),
        }
