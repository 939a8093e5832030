from decimal import Decimal as D

import pytest

from accounts import InsufficientFunds
from ledger import Ledger
from payments import pay_bill


def test_bill_payment_within_balance():
    lg = Ledger()
    lg.open("dan", "Dan", D("80.00"))
    pay_bill(lg, "dan", "Power Co", D("79.99"))
    assert lg.account("dan").balance == D("0.01")
    assert lg.history[0].memo == "bill: Power Co"


def test_bill_payment_over_balance_is_rejected():
    lg = Ledger()
    lg.open("dan", "Dan", D("80.00"))
    with pytest.raises(InsufficientFunds):
        pay_bill(lg, "dan", "Power Co", D("120.00"))
    assert lg.account("dan").balance == D("80.00")
    assert lg.history == []
