from decimal import Decimal as D

import pytest

from invoice import Invoice
from money import format_money, round_money


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2.675", "2.68"),
        ("0.125", "0.13"),
        ("0.375", "0.38"),
        ("1.005", "1.01"),
        ("0.005", "0.01"),
        ("2.5", "2.50"),
        ("2.674", "2.67"),
        ("2.6749999", "2.67"),
        ("-0.125", "-0.13"),
        ("-2.675", "-2.68"),
        ("123456789012.345", "123456789012.35"),
        ("0.30000000000000004", "0.30"),
    ],
)
def test_round_money_half_away_from_zero(value, expected):
    assert round_money(D(value)) == D(expected)
    assert str(round_money(D(value))) == expected


def test_single_line_invoice():
    inv = Invoice("INV-1").add("Cable clip pack", 1, "2.675", vat="zero")
    assert inv.total() == D("2.68")


def test_quantity_times_half_cent_price():
    inv = Invoice("INV-2").add("Screws", 5, "0.025", vat="zero")
    assert inv.net_total() == D("0.13")


def test_tax_is_rounded_half_up_per_line():
    inv = Invoice("INV-3")
    inv.add("Labels", 1, "0.25", vat="reduced")   # tax 0.0125 -> 0.01
    inv.add("Tape", 1, "0.50", vat="reduced")     # tax 0.025  -> 0.03
    inv.add("Box", 3, "4.175", vat="standard")    # net 12.525 -> 12.53, tax 2.506 -> 2.51
    assert [line.tax for line in inv.lines] == [D("0.01"), D("0.03"), D("2.51")]
    assert inv.net_total() == D("13.28")
    assert inv.total() == D("13.28") + D("2.55")


def test_credit_note_rounds_symmetrically():
    inv = Invoice("CN-1").add("Refund", -1, "2.675", vat="zero")
    assert inv.total() == D("-2.68")
    assert inv.summary()["total"] == "-2.68 EUR"


def test_large_amounts_keep_every_cent():
    inv = Invoice("INV-4").add("Licence", 1, "98765432102.055", vat="zero")
    assert inv.total() == D("98765432102.06")
    assert format_money(inv.total()) == "98,765,432,102.06 EUR"


def test_summary_formatting():
    inv = Invoice("INV-5").add("Desk", 2, "612.345", vat="standard")
    # net 1224.69 (1224.690), tax 244.938 -> 244.94
    assert inv.summary() == {"net": "1,224.69 EUR", "vat": "244.94 EUR", "total": "1,469.63 EUR"}
