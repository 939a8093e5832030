from decimal import Decimal as D

import pytest

from accounts import Account, InsufficientFunds


def test_debit_within_balance():
    acct = Account("a1", "Ann", D("10.00"))
    acct.debit(D("10.00"))
    assert acct.balance == D("0.00")


def test_debit_beyond_balance_raises_and_keeps_balance():
    acct = Account("a1", "Ann", D("10.00"))
    with pytest.raises(InsufficientFunds) as err:
        acct.debit(D("10.50"))
    assert acct.balance == D("10.00")
    assert err.value.account_id == "a1"
    assert err.value.requested == D("10.50")
    assert err.value.available == D("10.00")


def test_debit_uses_overdraft():
    acct = Account("a2", "Ben", D("5.00"), overdraft_limit=D("25.00"))
    acct.debit(D("30.00"))
    assert acct.balance == D("-25.00")
    assert acct.available() == D("0.00")
    with pytest.raises(InsufficientFunds) as err:
        acct.debit(D("1.00"))
    assert err.value.available == D("0.00")
    assert acct.balance == D("-25.00")


def test_amount_must_be_positive():
    acct = Account("a3", "Cy", D("5.00"))
    with pytest.raises(ValueError):
        acct.debit(D("-1.00"))
    with pytest.raises(ValueError):
        acct.credit(D("0"))
