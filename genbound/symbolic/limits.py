"""The largest sizes the symbolic checks accept, so that a call finishes (each under about 10 s here).

Exact expansions grow fast: Delta for order d and rank R has R (2**d - 1) terms, and the entrywise checks
on explicit I x J x K filters grow with the square of the number of entries. A size above its maximum
raises a ValueError that names the argument and the maximum, instead of running for hours.

Maxima (measured on the 2-core development machine):

==============================  ===========================================================
``MAX_ORDER`` = 10              order d of :func:`factor_symbols`, :func:`expansion`,
                                :func:`derive_delta`, :func:`delta_elementary`,
                                :func:`lambdify_delta`, :func:`verify_order` (d = 10: ~3 s)
``MAX_RANK`` = 40               rank R of the same functions and :func:`verify_rank`
``MAX_TERMS`` = 2048            R * 2**d, the size of the expansion (d = 10, R = 2: ~3 s)
``MAX_ENTRIES["chain_rule"]``   I*J*K <= 216 (6 x 6 x 6: ~1 s)
``MAX_ENTRIES["eq2"]``          I*J*K <= 20 (2 x 2 x 5: ~6 s)
``MAX_ENTRIES["departure"]``    I*J*K <= 18 and I*J*K*rank <= 36 (2 x 3 x 3, rank 2: ~6 s)
``MAX_ENTRIES["rank1_dim"]``    I*J*K <= 512 (8 x 8 x 8: ~5 s)
==============================  ===========================================================
"""
from __future__ import annotations

from genbound._checks import check_int

__all__ = ["MAX_ORDER", "MAX_RANK", "MAX_TERMS", "MAX_ENTRIES"]

MAX_ORDER = 10
MAX_RANK = 40
MAX_TERMS = 2048
MAX_ENTRIES = {"chain_rule": 216, "eq2": 20, "departure": 18, "departure_with_rank": 36, "rank1_dim": 512}


def check_at_most(value, name, maximum):
    """``check_int(value, name, minimum=1)`` and at most ``maximum``."""
    value = check_int(value, name, minimum=1)
    if value > maximum:
        raise ValueError(f"{name}: expected an int <= {maximum} (the maximum this check runs in reasonable "
                         f"time), got {value}")
    return value


def check_order_rank(order, rank, order_name="order", rank_name="rank"):
    """Check an expansion's order and rank against MAX_ORDER, MAX_RANK and MAX_TERMS."""
    order = check_at_most(order, order_name, MAX_ORDER)
    rank = check_at_most(rank, rank_name, MAX_RANK)
    if rank * 2**order > MAX_TERMS:
        raise ValueError(f"{order_name}, {rank_name}: expected {rank_name} * 2**{order_name} <= {MAX_TERMS} (the "
                         f"size of the expansion), got {rank} * 2**{order} = {rank * 2**order}")
    return order, rank


def check_sizes(sizes, key, names="IJK"):
    """Check explicit index sizes (each an int >= 1) against ``MAX_ENTRIES[key]`` for their product."""
    sizes = tuple(check_int(v, n, minimum=1) for v, n in zip(sizes, names))
    entries = 1
    for s in sizes:
        entries *= s
    maximum = MAX_ENTRIES[key]
    if entries > maximum:
        shown = " * ".join(names)
        raise ValueError(f"{', '.join(names)}: expected {shown} <= {maximum} entries (the maximum this check runs "
                         f"in reasonable time), got {entries}")
    return sizes
