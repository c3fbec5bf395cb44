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
    import dataclasses
    import os

    import pandas as pd

    import genbound as gb

    # preprocessing is part of the hypothesis: fixed scaling (pixels / 16), which no sample statistic enters
    data = gb.data.load_digits(seed=args.data_seed, scaling="fixed")
    protocol = None
    if not (args.no_pac_bayes or args.no_data_dependent):
        # the protocol is declared here, before any training or bound: from a file or the default one
        if args.protocol:
            protocol = gb.bounds.Protocol.load(args.protocol)
        else:
            protocol = gb.bounds.Protocol(priors=(gb.bounds.PriorConfig("default", epochs=args.epochs),),
                                          name="cli-default")
        changes = {}
        if args.pac_bayes_samples is not None:
            changes["n_samples"] = args.pac_bayes_samples
        if args.posterior_steps is not None:
            changes["posterior"] = dataclasses.replace(protocol.posterior, max_iter=args.posterior_steps)
        protocol = dataclasses.replace(protocol, **changes)
    ranks = args.rank if args.rank else ["full", "1"]
    tables = []
    for rank in ranks:
        r = None if rank == "full" else int(rank)
        model = gb.nn.reference_cnn(args.network, rank=r, seed=args.seed)
        init = model.copy()
        gb.train(model, data, epochs=args.epochs, batch_size=args.batch_size,
                 optimizer=gb.nn.SGD(lr=args.lr, momentum=args.momentum), seed=args.seed, progress=not args.quiet)
        config = gb.bounds.ReportConfig(pac_bayes=not args.no_pac_bayes, hessian=args.hessian,
                                        compression=not args.no_compression,
                                        n_samples=args.pac_bayes_samples or 150,
                                        max_iter=args.posterior_steps or 400)
        result = None
        if protocol is not None:
            result = gb.experiments.run_protocol(protocol, data, init, progress=not args.quiet)
            if args.csv:
                stem = os.path.splitext(os.path.basename(args.csv))[0] + f"_rank-{rank}_protocol"
                for path in result.save(os.path.dirname(os.path.abspath(args.csv)), stem=stem).values():
                    print(f"wrote {path}")
        table = gb.bounds.report(model, data, w0=init, prior=result, config=config, seed=args.seed)
        table.insert(0, "model", f"{args.network} rank={rank} ({model.n_params} params)")
        tables.append(table)
        if result is not None:
            head = result.headline
            print(f"{args.network} rank={rank}: protocol minimum {head['value']:.4f} ({head['family']}, config "
                  f"{head['config']}, K = {protocol.n_configs}, F = {protocol.n_families}, confidence "
                  f"{1 - protocol.delta:.3f}); Gibbs test error {head['test_error_mc']:.4f}")
    out = pd.concat(tables, ignore_index=True)
    shown = out[["model", "bound", "bounds_what", "train_error", "test_error", "value", "N", "kl", "m", "vacuous",
                 "worse_than_chance"]]
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("value: the bound on what bounds_what names; Gibbs rows bound a stochastic network drawn from Q, "
          "not the trained one; images scaled to [0, 1] by a fixed divisor.")
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

    p = sub.add_parser("bounds", help="train the bound network, run the PAC-Bayes protocol and print every bound")
    training_options(p, 40, "digits_gap")
    p.add_argument("--csv", help="write the full table (every column) to this CSV file, and each protocol run "
                                 "(protocol JSON, its table, its result) beside it")
    p.add_argument("--protocol", help="JSON file of a genbound.bounds.Protocol (default: one prior configuration, "
                                      "fixed scaling, half of the training set for the prior)")
    p.add_argument("--pac-bayes-samples", type=int, default=None,
                   help="Monte-Carlo weight draws for Gibbs training errors (default: the protocol's; 150 for the "
                        "data-independent rows)")
    p.add_argument("--posterior-steps", type=int, default=None,
                   help="optimization steps of the PAC-Bayes posteriors (default: the protocol's; 400 for the "
                        "data-independent rows)")
    p.add_argument("--no-pac-bayes", action="store_true", help="skip the PAC-Bayes rows (the slow part)")
    p.add_argument("--no-data-dependent", action="store_true", help="skip the protocol (data-dependent rows)")
    p.add_argument("--no-compression", action="store_true", help="skip the quantized-network Occam row")
    p.add_argument("--hessian", action="store_true", help="add Eq. 1 with the Hessian effective dimension (slow)")
    p.set_defaults(func=_cmd_bounds, momentum=0.9)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
