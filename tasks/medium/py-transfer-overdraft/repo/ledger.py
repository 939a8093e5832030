"""The ledger: all accounts plus the history of movements."""

from dataclasses import dataclass
from decimal import Decimal

from accounts import Account


@dataclass(frozen=True)
class Entry:
    src: str
    dst: str
    amount: Decimal
    memo: str = ""


class Ledger:
    def __init__(self):
        self._accounts = {}
        self.history = []

    def open(self, account_id, owner, balance=Decimal("0.00"), overdraft_limit=Decimal("0.00")):
        if account_id in self._accounts:
            raise ValueError(f"account {account_id} already exists")
        self._accounts[account_id] = Account(account_id, owner, balance, overdraft_limit)

    def account(self, account_id):
        try:
            return self._accounts[account_id]
        except KeyError:
            raise KeyError(f"no account {account_id}") from None

    def record(self, src, dst, amount, memo=""):
        entry = Entry(src, dst, amount, memo)
        self.history.append(entry)
        return entry
