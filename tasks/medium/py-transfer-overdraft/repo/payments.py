"""Bill payments to external payees."""

EXTERNAL = "__external__"


def pay_bill(ledger, account_id, payee, amount):
    """Pays `amount` from the account to an external `payee`."""
    ledger.account(account_id).debit(amount)
    return ledger.record(account_id, EXTERNAL, amount, memo=f"bill: {payee}")
