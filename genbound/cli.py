"""The ``genbound`` command: train, derive, bounds, reproduce, sweep."""
from __future__ import annotations

import argparse
import sys


def _cmd_train(args, parser):
    import numpy as np

    import genbound as gb

    if args.out:
        _checked_out(parser, args.out, "--out")
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

            from genbound._io import atomic_write_text

            path = os.path.join(args.out, f"history_{args.network}_{rank}.csv")
            atomic_write_text(path, hist.to_csv(index=False))
            print(f"wrote {path}")
    return 0


def _cmd_derive(args, parser):
    import os

    import pandas as pd

    from genbound import symbolic

    if args.latex:
        _checked_out(parser, os.path.dirname(os.path.abspath(args.latex)), "--latex")
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


def _cmd_bounds(args, parser):
    import dataclasses
    import os

    import pandas as pd

    import genbound as gb
    from genbound._io import atomic_write_text

    if args.csv:
        _checked_out(parser, os.path.dirname(os.path.abspath(args.csv)), "--csv")
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
        atomic_write_text(args.csv, out.to_csv(index=False))
        print(f"wrote {args.csv}")
    return 0


# ------------------------------------------------------------------------------------------------------
# reproduce and sweep
# ------------------------------------------------------------------------------------------------------

#: Experiments whose cells ``genbound sweep`` runs: name -> (module, cell function, its grid function
#: ``grid(data, grid, *, quick, config) -> (cells, key_extra)``).
SWEEPABLE = {
    "compression": ("genbound.experiments.compression", "compression_cell", "grid_cells"),
    "randomization": ("genbound.experiments.randomization", "randomization_cell", "grid_cells"),
    "batch_landscape": ("genbound.experiments.batch_claims", "batch_landscape_cell", "batch_landscape_grid_cells"),
    "escape": ("genbound.experiments.batch_claims", "escape_cell", "escape_grid_cells"),
    "rank1_update": ("genbound.experiments.rank1_update", "rank1_update_cell", "grid_cells"),
}


def _number(text, kind, what, ok):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def _positive_int(text):
    return _number(text, int, "a positive integer", lambda v: v >= 1)


def _seed(text):
    return _number(text, int, "a non-negative integer", lambda v: v >= 0)


def _positive_float(text):
    return _number(text, float, "a positive finite number", lambda v: 0 < v < float("inf"))


def _momentum(text):
    return _number(text, float, "a number in [0, 1)", lambda v: 0 <= v < 1)


def _rank(text):
    if text == "full":
        return text
    return str(_number(text, int, "'full' or a CP rank >= 1", lambda v: v >= 1))


def _data_arg(text):
    import os

    if text in ("digits", "mnist-subset") or os.path.isdir(text):
        return text
    raise argparse.ArgumentTypeError(f"expected digits, mnist-subset or a folder of MNIST IDX files, got {text!r}")


def _grid_value(text):
    """One grid value from the command line: none/full/null -> None, true/false, int, float, else the text."""
    low = text.strip().lower()
    if low in ("none", "full", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def _grid_arg(text):
    name, sep, values = text.partition("=")
    if not sep or not name.strip().isidentifier() or not values.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=V1,V2,..., got {text!r}")
    return name.strip(), [_grid_value(v) for v in values.split(",")]


def _sweep_options(parser, args):
    """The backend from --backend/--scheduler (a scheduler implies dask), checked before anything runs."""
    backend = args.backend or ("dask" if args.scheduler else "local")
    if args.scheduler and backend != "dask":
        parser.error("--scheduler needs --backend dask (or no --backend)")
    if args.scheduler and args.workers:
        parser.error("--workers: the cluster at --scheduler has its own workers; leave --workers out")
    return backend


def _checked_out(parser, out, option="--out"):
    """``out`` as a writable folder (created if needed) before any work, else a usage error naming the option."""
    from genbound._io import check_writable_folder

    try:
        return check_writable_folder(out, option)
    except ValueError as exc:
        parser.error(str(exc))


def _cmd_reproduce(args, parser):
    import genbound as gb

    backend = _sweep_options(parser, args)
    out = _checked_out(parser, args.out)
    gb.experiments.reproduce(out, quick=args.quick, seeds=args.seeds, data=args.data, backend=backend,
                             scheduler=args.scheduler, workers=args.workers, progress=not args.quiet)
    print(f"report: {out / 'report.md'}")
    return 0


def _cmd_sweep(args, parser):
    import importlib

    import pandas as pd

    import genbound as gb

    backend = _sweep_options(parser, args)
    grid = {}
    for name, values in args.grid or []:
        if name in grid:
            parser.error(f"--grid: {name} given twice")
        grid[name] = values
    module_name, cell_name, grid_name = SWEEPABLE[args.experiment]
    module = importlib.import_module(module_name)
    try:
        cells, key_extra = getattr(module, grid_name)(args.data, grid, quick=args.quick)
    except ValueError as exc:
        parser.error(str(exc))
    out = _checked_out(parser, args.out or f"sweep-{args.experiment}")
    table = gb.experiments.sweep(getattr(module, cell_name), cells, backend=backend, scheduler=args.scheduler,
                                 workers=args.workers, out=out, key_extra=key_extra, progress=not args.quiet)
    from genbound._io import atomic_write_text

    atomic_write_text(out / "table.csv", table.to_csv(index=False))
    shown = [c for c in table.columns if c in grid] + [c for c in ("condition", "filters", "start", "label",
                                                                   "train_loss", "train_error", "test_error", "gap",
                                                                   "final_train_error", "final_test_error",
                                                                   "steps_to_fit", "full_top_eig", "fraction_passing",
                                                                   "status")
                                                      if c in table.columns and c not in grid]
    # one line per cell (its last row), or per optimizer run of an escape cell
    params = [c for c in cells[0] if c in table.columns] + [c for c in ("label", "method") if c in table.columns]
    view = table.groupby(params, sort=False, dropna=False).tail(1)[shown]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(view.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"{len(cells)} cells; records in {out / 'cells'}, index {out / 'index.csv'}, table {out / 'table.csv'}")
    return 0 if (table["status"] == "ok").all() else 1


def build_parser():
    parser = argparse.ArgumentParser(prog="genbound", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def training_options(p, epochs, network):
        p.add_argument("--network", default=network, choices=["digits", "digits_gap"],
                       help="reference network (default %(default)s)")
        p.add_argument("--rank", type=_rank, action="append", help="CP rank or 'full'; repeat for several")
        p.add_argument("--epochs", type=_positive_int, default=epochs)
        p.add_argument("--batch-size", type=_positive_int, default=64)
        p.add_argument("--lr", type=_positive_float, default=0.05)
        p.add_argument("--momentum", type=_momentum, default=0.0)
        p.add_argument("--seed", type=_seed, default=0, help="seed of initialization and batch order")
        p.add_argument("--data-seed", type=_seed, default=0, help="seed of the train/test split")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("train", help="train reference CNNs on the bundled digits and print their history")
    training_options(p, 30, "digits")
    p.add_argument("--float32", action="store_true")
    p.add_argument("--out", help="folder for history CSV files (checked writable before training)")
    p.set_defaults(func=_cmd_train, parser=p)

    p = sub.add_parser("derive", help="run the symbolic derivations (Eq. 1-3 and generalizations)")
    p.add_argument("--latex", help="write the verified identities as LaTeX to this file")
    p.set_defaults(func=_cmd_derive, parser=p)

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
    p.set_defaults(func=_cmd_bounds, momentum=0.9, parser=p)

    def cluster_options(p):
        p.add_argument("--backend", choices=["local", "threads", "dask"],
                       help="local process pool, threads of this process, or dask.distributed (default local; "
                            "dask with --scheduler)")
        p.add_argument("--scheduler", metavar="ADDRESS",
                       help="address of a running Dask scheduler, e.g. tcp://10.0.0.1:8786")
        p.add_argument("--workers", type=_positive_int, help="worker processes or threads (default: one per core)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("reproduce", help="run the paper's experiments over seeds and write report.md, figures "
                                         "and tables (resumable)")
    p.add_argument("--quick", action="store_true",
                   help="digits only, full and rank-1 filters, one width, 2 seeds, <= 30 epochs (a few minutes)")
    p.add_argument("--out", default="report", help="output folder (default %(default)s); rerun to resume")
    p.add_argument("--seeds", type=_positive_int, help="number of seeds (default 2 with --quick, else 5)")
    p.add_argument("--data", type=_data_arg, action="append",
                   help="digits, mnist-subset or a folder of MNIST IDX files; repeat for several "
                        "(default digits with --quick, else digits and mnist-subset; without --quick each data set "
                        "has its own full-run settings, docs/scaling.md)")
    cluster_options(p)
    p.set_defaults(func=_cmd_reproduce, parser=p)

    p = sub.add_parser("sweep", help="run one experiment's cells over a grid of parameters (resumable)")
    p.add_argument("experiment", choices=sorted(SWEEPABLE), help="the experiment whose cell function runs")
    p.add_argument("--grid", type=_grid_arg, action="append", metavar="NAME=V1,V2",
                   help="a cell parameter and its values (none/full: None); repeat for several; parameters "
                        "not given keep the experiment's defaults")
    p.add_argument("--data", type=_data_arg, default="digits", help="data set (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="start from the experiment's quick setting")
    p.add_argument("--out", help="output folder (default sweep-EXPERIMENT)")
    cluster_options(p)
    p.set_defaults(func=_cmd_sweep, parser=p)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if getattr(args, "parser", None) is not None:  # commands whose own checks print their usage
        return args.func(args, args.parser)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
