"""The one list of symbolic checks, shared by ``genbound derive``, :func:`all_verifications` and ``derivations/``.

Each :class:`Check` names the derivation script that reports it, the ``verify_*`` function and its
arguments. ``derivations/<script>.py`` runs ``run_checks("<script>")`` (plus its own float64 checks),
``genbound derive`` and :func:`all_verifications` run them all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from genbound.symbolic import verifications

__all__ = ["Check", "REGISTRY", "registered", "run_checks", "all_verifications"]


@dataclass(frozen=True)
class Check:
    """One registered check: ``verifications.<function>(*args, **kwargs)``, reported by ``derivations/<script>.py``.

    Plain data (printable, comparable, ``dataclasses.asdict``-able); the function is looked up by name when
    the check runs.
    """

    script: str
    function: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def run(self):
        """Run the check; returns a :class:`~genbound.symbolic.verifications.Verification`."""
        return getattr(verifications, self.function)(*self.args, **self.kwargs)


#: Every symbolic check, in the order ``genbound derive`` prints them.
REGISTRY = (
    Check("eq1_samples", "verify_eq1_samples"),
    Check("eq2", "verify_eq2", (2, 2, 2)),
    Check("eq2", "verify_eq2", (1, 2, 3)),
    Check("eq3_rank1", "verify_eq3", kwargs={"printed": False}),
    Check("eq3_rank1", "verify_eq3", kwargs={"printed": True}),
    Check("eq3_rank1", "verify_eq3_misprint"),
    *(Check("eq3_rank_r", "verify_rank", (R,)) for R in (1, 2, 3, 4)),
    *(Check("eq3_order_d", "verify_order", (d,)) for d in (1, 2, 3, 4, 5, 6)),
    *(Check("chain_rule", "verify_chain_rule", s) for s in ((2, 2, 2), (1, 3, 2), (3, 2, 2))),
    Check("first_order_departure", "verify_first_order_departure", (2, 2, 2)),
    Check("first_order_departure", "verify_first_order_departure", (2, 1, 2), {"rank": 2}),
    *(Check("rank1_dimension", "verify_rank1_dimension", s) for s in ((2, 2, 2), (1, 3, 3), (2, 3, 4), (3, 3, 3))),
)


def registered(script=None):
    """The registered checks, all of them or those of one derivation script (its file name without ``.py``)."""
    if script is None:
        return REGISTRY
    found = tuple(c for c in REGISTRY if c.script == script)
    if not found:
        known = sorted({c.script for c in REGISTRY})
        raise ValueError(f"script: expected one of {known}, got {script!r}")
    return found


def run_checks(script=None):
    """Run the registered checks (all, or one script's).

    Returns
    -------
    list of Verification
    """
    return [check.run() for check in registered(script)]


def all_verifications():
    """Run every registered check (what ``genbound derive`` prints).

    Returns
    -------
    list of Verification
        Eq. 1, Eq. 2, Eq. 3 (derived; as printed, expected to fail; the misprint located), ranks 1-4,
        orders 1-6, the chain rule, the first-order departure, the rank-1 dimension.
    """
    return run_checks()
