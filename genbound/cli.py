"""The ``genbound`` command: train, derive, bounds."""
from __future__ import annotations

import argparse
import sys


def _cmd_train(args):
    import numpy as np

    import genbound as gb

    data = gb.data.load_digits(seed=args.data_seed)
    ranks = args.rank if args.rank else ["1", "full"]
    dtype = np.float32 if args.float32 else np.float64
    for rank in ranks:
        r = None if rank == "full" else int(rank)
        model = gb.nn.reference_cnn(args.network, rank=r, seed=args.seed, dtype=dtype)
        label = "full filters" if r is None else f"rank-{r} CP filters"
        print(f"\n== {args.network} reference CNN, {label}: {model.n_params} parameters, m = {data.m} ==")
        hist = gb.train(model, data, epochs=args.epochs, batch_size=args.batch_size,
                        optimizer=gb.nn.SGD(lr=args.lr, momentum=args.momentum), seed=args.seed,
                        progress=not args.quiet)
        print(hist.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        acc = 1 - hist["test_error"].iloc[-1]
        print(f"final test accuracy {acc:.4f}")
        if args.out:
            import os

            os.makedirs(args.out, exist_ok=True)
            path = os.path.join(args.out, f"history_{args.network}_{rank}.csv")
            hist.to_csv(path, index=False)
            print(f"wrote {path}")
    return 0


def _cmd_derive(args):
    import pandas as pd

    from genbound import symbolic

    # the one registry of checks, as run by derivations/ (genbound.symbolic.REGISTRY)
    results = symbolic.all_verifications()
    table = symbolic.derivation_table(results)
    with pd.option_context("display.max_colwidth", 90, "display.width", 200):
        print(table.to_string(index=False))
    if args.latex:
        symbolic.write_latex(args.latex, results)
        print(f"wrote {args.latex}")
    # the printed Eq. 3 is expected to fail: "ok" means every result came out as expected
    return 0 if bool(table["ok"].all()) else 1


def _cmd_bounds(args):
    import pandas as pd

    import genbound as gb

    data = gb.data.load_digits(seed=args.data_seed)
    ranks = args.rank if args.rank else ["full", "1"]
    tables = []
    for rank in ranks:
        r = None if rank == "full" else int(rank)
        model = gb.nn.reference_cnn(args.network, rank=r, seed=args.seed)
        w0 = model.get_flat()
        gb.train(model, data, epochs=args.epochs, batch_size=args.batch_size,
                 optimizer=gb.nn.SGD(lr=args.lr, momentum=args.momentum), seed=args.seed, progress=not args.quiet)
        config = gb.bounds.ReportConfig(pac_bayes=not args.no_pac_bayes, hessian=args.hessian,
                                        compression=not args.no_compression, n_samples=args.pac_bayes_samples,
                                        max_iter=args.posterior_steps, n_configs=args.n_configs)
        table = gb.experiments.bounds_report(model, data, w0=w0, config=config,
                                             data_dependent=not args.no_data_dependent, seed=args.seed)
        table.insert(0, "model", f"{args.network} rank={rank} ({model.n_params} params)")
        tables.append(table)
    out = pd.concat(tables, ignore_index=True)
    shown = out[["model", "bound", "bounds_what", "train_error", "test_error", "value", "N", "kl", "m", "vacuous",
                 "worse_than_chance"]]
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("value: the bound on what bounds_what names; Gibbs rows bound a stochastic network drawn from Q, "
          "not the trained one.")
    if args.csv:
        out.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="genbound", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def training_options(p, epochs, network):
        p.add_argument("--network", default=network, choices=["digits", "digits_gap"],
                       help="reference network (default %(default)s)")
        p.add_argument("--rank", action="append", help="CP rank or 'full'; repeat for several")
        p.add_argument("--epochs", type=int, default=epochs)
        p.add_argument("--batch-size", type=int, default=64)
        p.add_argument("--lr", type=float, default=0.05)
        p.add_argument("--momentum", type=float, default=0.0)
        p.add_argument("--seed", type=int, default=0, help="seed of initialization and batch order")
        p.add_argument("--data-seed", type=int, default=0, help="seed of the train/test split")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("train", help="train reference CNNs on the bundled digits and print their history")
    training_options(p, 30, "digits")
    p.add_argument("--float32", action="store_true")
    p.add_argument("--out", help="folder for history CSV files")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("derive", help="run the symbolic derivations (Eq. 1-3 and generalizations)")
    p.add_argument("--latex", help="write the verified identities as LaTeX to this file")
    p.set_defaults(func=_cmd_derive)

    p = sub.add_parser("bounds", help="train the bound network and print every generalization bound")
    training_options(p, 40, "digits_gap")
    p.add_argument("--csv", help="write the full table (every column) to this CSV file")
    p.add_argument("--pac-bayes-samples", type=int, default=150,
                   help="Monte-Carlo weight draws for the Gibbs training error (default %(default)s)")
    p.add_argument("--posterior-steps", type=int, default=400,
                   help="optimization steps of the PAC-Bayes posterior (default %(default)s)")
    p.add_argument("--n-configs", type=int, default=1,
                   help="prior configurations searched, paid for by a union bound (default %(default)s)")
    p.add_argument("--no-pac-bayes", action="store_true", help="skip the PAC-Bayes rows (the slow part)")
    p.add_argument("--no-data-dependent", action="store_true", help="skip the data-dependent-prior rows")
    p.add_argument("--no-compression", action="store_true", help="skip the quantized-network Occam row")
    p.add_argument("--hessian", action="store_true", help="add Eq. 1 with the Hessian effective dimension (slow)")
    p.set_defaults(func=_cmd_bounds, momentum=0.9)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
