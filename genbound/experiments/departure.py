"""Recording the departure w'' - w' of the factored step from plain SGD during training (Eq. 2-3)."""
from __future__ import annotations

from genbound._checks import check_int, check_positive
from genbound.factor import departure


class DepartureRecorder:
    """Records the departure ``w'' - w'`` of every CP layer at every training step, split by order in lr.

    Pass it as ``step_callback`` to :func:`genbound.train`; it receives the weight-space gradient G of each
    CP layer (``needs_weight_grads``) and stores :func:`genbound.factor.departure` ``(p, q, t, G, lr)`` as norms. The split
    describes plain factor-space SGD steps with learning rate ``lr`` (no momentum or weight decay: with those,
    pass the step direction instead, see :func:`genbound.nn.sgd_direction`).

    Parameters
    ----------
    lr : float
        The optimizer's learning rate.
    layers : sequence of int, optional
        Layer indices to record (default: every layer with CP factors p, q, t).
    every : int
        Record every ``every``-th step.

    Examples
    --------
    >>> rec = DepartureRecorder(lr=0.05)                                  # doctest: +SKIP
    >>> gb.train(model, data, optimizer=gb.nn.SGD(lr=0.05), step_callback=rec)  # doctest: +SKIP
    >>> rec.table()                                                       # doctest: +SKIP
    """

    needs_weight_grads = True

    def __init__(self, lr, layers=None, every=1):
        self.lr = check_positive(lr, "lr")
        self.layers = None if layers is None else [check_int(i, "layers", minimum=0) for i in layers]
        self.every = check_int(every, "every", minimum=1)
        self.rows = []

    def __call__(self, model, step, grads, weight_grads):
        if step % self.every:
            return
        indices = self.layers
        if indices is None:
            indices = [i for i, layer in enumerate(model.layers) if hasattr(layer, "rank")]
        for i in indices:
            layer = model.layers[i]
            dep = departure(layer.p, layer.q, layer.t, weight_grads[i], self.lr)
            self.rows.append({"step": step, "layer": i, **dep.norms()})

    def table(self):
        """DataFrame: step, layer, lr, grad_norm, order_1 .. order_3, total, remainder, ratio_2_1."""
        import pandas as pd

        df = pd.DataFrame(self.rows)
        if len(df):
            df["ratio_2_1"] = df["order_2"] / df["order_1"].where(df["order_1"] > 0)
        return df
