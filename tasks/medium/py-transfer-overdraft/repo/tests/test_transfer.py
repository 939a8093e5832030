from decimal import Decimal as D

import pytest

from accounts import InsufficientFunds
from ledger import Ledger
from transfer import transfer


@pytest.fixture
def ledger():
    lg = Ledger()
    lg.open("alice", "Alice", D("100.00"))
    lg.open("bob", "Bob")
    lg.open("carol", "Carol", D("20.00"), overdraft_limit=D("50.00"))
    return lg


def test_normal_transfer(ledger):
    entry = transfer(ledger, "alice", "bob", D("40.00"), memo="rent")
    assert ledger.account("alice").balance == D("60.00")
    assert ledger.account("bob").balance == D("40.00")
    assert ledger.history == [entry]


def test_transfer_of_entire_balance_is_allowed(ledger):
    transfer(ledger, "alice", "bob", D("100.00"))
    assert ledger.account("alice").balance == D("0.00")


def test_transfer_over_balance_is_rejected(ledger):
    with pytest.raises(InsufficientFunds):
        transfer(ledger, "alice", "bob", D("150.00"))
    assert ledger.account("alice").balance == D("100.00")
    assert ledger.account("bob").balance == D("0.00")
    assert ledger.history == []


def test_one_cent_too_much_is_rejected(ledger):
    with pytest.raises(InsufficientFunds):
        transfer(ledger, "alice", "bob", D("100.01"))
    assert ledger.account("alice").balance == D("100.00")


def test_empty_account_cannot_send(ledger):
    with pytest.raises(InsufficientFunds):
        transfer(ledger, "bob", "alice", D("0.01"))


def test_overdraft_limit_is_honoured(ledger):
    transfer(ledger, "carol", "bob", D("70.00"))
    assert ledger.account("carol").balance == D("-50.00")
    with pytest.raises(InsufficientFunds):
        transfer(ledger, "carol", "bob", D("0.01"))
    assert ledger.account("carol").balance == D("-50.00")
    assert ledger.account("bob").balance == D("70.00")
    assert len(ledger.history) == 1


def test_invalid_transfers(ledger):
    with pytest.raises(ValueError):
        transfer(ledger, "alice", "alice", D("1.00"))
    with pytest.raises(ValueError):
        transfer(ledger, "alice", "bob", D("0"))
    with pytest.raises(KeyError):
        transfer(ledger, "alice", "nobody", D("1.00"))
