"""Combining configuration layers."""


def merge(base, override):
    """Returns `base` with the values of `override` applied on top.

    Neither argument is modified.
    """
    result = dict(base)
    result.update(override)
    return result
