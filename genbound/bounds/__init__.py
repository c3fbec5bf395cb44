"""Generalization bounds: Eq. 1 and VC (classical), PAC-Bayes, compression / Occam, and their application
to trained networks (capacity measures, posterior optimization, quantized models, the report table), and
the declaration of a PAC-Bayes protocol (run by :func:`genbound.experiments.run_protocol`).

Each formula lives in one module and states the exact inequality it implements in its docstring.
"""
from genbound.bounds.classical import *  # noqa: F401,F403
from genbound.bounds.classical import __all__ as _classical_all
from genbound.bounds.compression import *  # noqa: F401,F403
from genbound.bounds.compression import __all__ as _compression_all
from genbound.bounds.pacbayes import *  # noqa: F401,F403
from genbound.bounds.pacbayes import __all__ as _pacbayes_all
from genbound.bounds.capacity import *  # noqa: F401,F403
from genbound.bounds.capacity import __all__ as _capacity_all
from genbound.bounds.heldout import *  # noqa: F401,F403
from genbound.bounds.heldout import __all__ as _heldout_all
from genbound.bounds.posterior import *  # noqa: F401,F403
from genbound.bounds.posterior import __all__ as _posterior_all
from genbound.bounds.compress_model import *  # noqa: F401,F403
from genbound.bounds.compress_model import __all__ as _compress_model_all
from genbound.bounds.protocol import *  # noqa: F401,F403
from genbound.bounds.protocol import __all__ as _protocol_all
from genbound.bounds.report import *  # noqa: F401,F403
from genbound.bounds.report import __all__ as _report_all

__all__ = [*_classical_all, *_pacbayes_all, *_compression_all, *_capacity_all, *_heldout_all, *_posterior_all,
           *_compress_model_all, *_protocol_all, *_report_all]
