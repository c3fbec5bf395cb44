"""Generalization bounds: Eq. 1 and VC (classical), PAC-Bayes, compression / Occam.

Each formula lives in one module and states the exact inequality it implements in its docstring.
"""
from genbound.bounds.classical import *  # noqa: F401,F403
from genbound.bounds.classical import __all__ as _classical_all
from genbound.bounds.compression import *  # noqa: F401,F403
from genbound.bounds.compression import __all__ as _compression_all
from genbound.bounds.pacbayes import *  # noqa: F401,F403
from genbound.bounds.pacbayes import __all__ as _pacbayes_all

__all__ = [*_classical_all, *_pacbayes_all, *_compression_all]
