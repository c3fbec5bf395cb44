"""Everything that trains as part of an analysis: the paper's experiments, prior training, trajectories,
sweeps and the report writer. ``genbound.landscape`` and ``genbound.bounds`` measure a given model; this
package composes them with training.
"""
from genbound.experiments.departure import DepartureRecorder
from genbound.experiments.sweep import sweep

__all__ = ["DepartureRecorder", "sweep"]
