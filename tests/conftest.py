import os

os.environ.setdefault("MPLBACKEND", "Agg")

from hypothesis import settings

settings.register_profile("genbound", deadline=None, max_examples=25, derandomize=True)
settings.load_profile("genbound")
