import numpy as np
import pytest

import genbound as gb
from genbound.nn import Conv2d, CPConv2d, Dense, GlobalAvgPool, MaxPool2d, ReLU, Sequential


@pytest.fixture(scope="session")
def trained_tiny_cnn():
    """A small conv + rank-1 CP network trained on 400 digits: (model, initial parameters, data).

    Shared by the report and compression tests; the functions under test restore the model's parameters."""
    full = gb.data.load_digits(seed=0)
    data = full.subset(np.arange(400), np.arange(120))
    model = Sequential([Conv2d(1, 4, 3, padding=1), ReLU(), MaxPool2d(2), CPConv2d(4, 8, 3, rank=1, padding=1),
                        ReLU(), GlobalAvgPool(), Dense(8, 10)], seed=0, input_shape=(1, 8, 8))
    w0 = model.get_flat()
    gb.train(model, data, epochs=8, batch_size=32, optimizer=gb.nn.SGD(lr=0.02, momentum=0.9), seed=0,
             progress=False)
    return model, w0, data
