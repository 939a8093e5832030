"""Moving money between two accounts of the ledger."""


def transfer(ledger, src_id, dst_id, amount, memo=""):
    """Moves `amount` from `src_id` to `dst_id` and records it."""
    if src_id == dst_id:
        raise ValueError("cannot transfer to the same account")
    src = ledger.account(src_id)
    dst = ledger.account(dst_id)
    src.debit(amount)
    dst.credit(amount)
    return ledger.record(src_id, dst_id, amount, memo)
