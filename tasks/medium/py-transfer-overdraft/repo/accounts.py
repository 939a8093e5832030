"""Customer accounts."""

from decimal import Decimal


class InsufficientFunds(Exception):
    """A debit would take an account below its overdraft limit."""

    def __init__(self, account_id, requested, available):
        super().__init__(
            f"account {account_id}: cannot debit {requested}, only {available} available"
        )
        self.account_id = account_id
        self.requested = requested
        self.available = available


class Account:
    """One account; `overdraft_limit` is how far below zero it may go."""

    def __init__(self, account_id, owner, balance=Decimal("0.00"), overdraft_limit=Decimal("0.00")):
        if overdraft_limit < 0:
            raise ValueError("overdraft_limit cannot be negative")
        self.account_id = account_id
        self.owner = owner
        self.balance = Decimal(balance)
        self.overdraft_limit = Decimal(overdraft_limit)

    def available(self):
        """Money that can still be taken out, overdraft included."""
        return self.balance + self.overdraft_limit

    def credit(self, amount):
        if amount <= 0:
            raise ValueError("amount must be positive")
        self.balance += amount

    def debit(self, amount):
        if amount <= 0:
            raise ValueError("amount must be positive")
        self.balance -= amount

    def __repr__(self):
        return f"Account({self.account_id!r}, balance={self.balance})"
