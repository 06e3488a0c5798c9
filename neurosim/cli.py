"""The ``neurosim`` command: a thin shell over the Python API (no logic lives here)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from pathlib import Path

from neurosim.errors import NeurosimError, NeurosimWarning


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurosim",
        description="Simulate Equilibrium Propagation learning (EP, BPTT baseline, Theorem-1 checks). "
                    "Every command is also a Python call: see README.md.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a network from a config (YAML path or experiment name)")
    train.add_argument("config", help="YAML file, or the name of a shipped experiment (e.g. mnist_fc1_ep)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    train.add_argument("--out", help="run folder (default: runs/<name>)")
    train.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    train.add_argument("--data-dir", help="dataset folder (same as --set data.dir=...)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")

    bench = sub.add_parser("bench", help="print training throughput (samples/s) of EP and BPTT")
    bench.add_argument("config", nargs="?", default="mnist_fc1_ep", help="config to time (default mnist_fc1_ep)")
    bench.add_argument("--batch-sizes", default="20,128,512", help="comma-separated batch sizes")
    bench.add_argument("--estimators", default=None,
                       help="comma-separated estimators (default ep,bptt; a Brian2 config: its own)")
    bench.add_argument("--samples", type=int, default=6000, help="training samples timed per measurement")
    bench.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    bench.add_argument("--data-dir", help="dataset folder")
    bench.add_argument("--json", help="also write the measurements to this JSON file")

    gdu = sub.add_parser("gdu", help="check Theorem 1: EP's updates against BPTT's gradients on one batch")
    gdu.add_argument("config", help="YAML file, or the name of a shipped experiment (e.g. gdu_fc1)")
    gdu.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set estimator.beta=1e-4 (repeatable)")
    gdu.add_argument("--out", help="output folder for gdu.json and gdu.png (default: runs/<name>)")
    gdu.add_argument("--etas", help="comma-separated C-EP rates (default: gdu.etas of the config)")
    gdu.add_argument("--data-dir", help="dataset folder (same as --set data.dir=...)")

    study = sub.add_parser("asymmetry", help="Fig. 1c: C-VF at several initial weight angles, "
                                             "Theorem-1 agreement before training vs final test error")
    study.add_argument("study", help="study YAML, or the name of a shipped study (e.g. fig1c_cvf)")
    study.add_argument("--out", help="study folder (default: runs/<name>); an existing one is resumed")
    study.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a key of every run, e.g. --set train.epochs=2 (repeatable)")
    study.add_argument("--data-dir", help="dataset folder (same as --set data.dir=...)")
    study.add_argument("--quiet", action="store_true", help="no progress bars")

    devices = sub.add_parser("devices", help="list the synaptic device presets, show one with its sources and "
                                             "pulse-response plot, or fit a preset to measured pulse responses")
    devices.add_argument("action", nargs="?", choices=["list", "show", "fit"], default="list")
    devices.add_argument("name", nargs="*", help="show: a preset name or YAML file; fit: the measurement files "
                                                 "(CSV/TSV, long or two-column form)")
    devices.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="show: override a device parameter, e.g. --set states=32")
    devices.add_argument("--plot", help="show: where to write the pulse-response PNG (default: <name>_pulses.png)")
    devices.add_argument("--name", dest="preset_name", metavar="NAME", help="fit: the new preset's name")
    devices.add_argument("--out", help="fit: the preset YAML to write (default: devices/NAME.yaml; its .fit.json "
                                       "and .png go beside it)")
    devices.add_argument("--units", help="fit: conductance unit where the files do not state it (S, mS, uS, nS, pS; au for normalised data)")
    devices.add_argument("--directions", help="fit: direction of each two-column file, comma-separated (up,down); "
                                              "default: each file's trend")
    devices.add_argument("--law", help="fit: use this response law instead of the best by --criterion")
    devices.add_argument("--laws", help="fit: comma-separated laws to fit (default: all)")
    devices.add_argument("--criterion", default="bic", choices=["bic", "aic"], help="fit: how the law is chosen")
    devices.add_argument("--table-points", type=int, help="fit: grid points of the 'measured' look-up table")

    sweep = sub.add_parser("sweep", help="run (or continue) a sweep: many training runs on local worker "
                                         "processes or a Dask cluster, resumable, with results.csv")
    sweep.add_argument("sweep", help="sweep YAML, or the name of a shipped sweep (neurosim list)")
    sweep.add_argument("--out", help="sweep folder (default: runs/<name>); an existing one is continued")
    sweep.add_argument("--workers", type=int, help="local worker processes (default: one per core; "
                                                   "0: run the points in this process)")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster, e.g. tcp://HOST:8786")
    sweep.add_argument("--threads", type=int, help="torch threads per point (default: cores // concurrent points)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a key of every point, e.g. --set train.epochs=2 (not a swept key)")
    sweep.add_argument("--data-dir", help="dataset folder (same as --set data.dir=...)")
    sweep.add_argument("--keep-failed", action="store_true", help="do not run points recorded as failed again")
    sweep.add_argument("--quiet", action="store_true", help="no progress line")

    chip = sub.add_parser("chip", help="what a chip built from a device would learn: a config on ideal synapses and "
                                       "on each device (and estimator), with pulses, energy and an HTML report")
    chip.add_argument("config", help="experiment name or YAML path; without --estimators, a comma list of them")
    chip.add_argument("--devices", required=True,
                      help="comma-separated device presets or YAML files ('all': every preset); ideal is always run")
    chip.add_argument("--estimators", help="comma-separated estimators, each picking the config's sibling "
                                           "<family>_<estimator> (e.g. ep,cep with mnist_fc1_ep); default: CONFIG's own")
    chip.add_argument("--epochs", type=int, help="train.epochs of every run (default: each config's own)")
    chip.add_argument("--subset", type=int, help="train on the first N training samples (data.train_subset)")
    chip.add_argument("--seeds", type=int, default=1, help="seeds per point (tables show mean ± std); default 1")
    chip.add_argument("--workers", type=int, help="local worker processes (default: one per core; 0: this process)")
    chip.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster, e.g. tcp://HOST:8786")
    chip.add_argument("--threads", type=int, help="torch threads per run (default: cores // concurrent runs)")
    chip.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a key of every run, e.g. --set data.test_subset=2000 (repeatable)")
    chip.add_argument("--data-dir", help="dataset folder (same as --set data.dir=...)")
    chip.add_argument("--out", help="study folder (default: runs/chip_<family>); an existing one is continued")
    chip.add_argument("--quiet", action="store_true", help="no progress lines")

    rep = sub.add_parser("report", help="print a sweep's results table and draw its plots")
    rep.add_argument("dir", help="the sweep folder (holding sweep.json)")
    rep.add_argument("--metric", help="plot this column instead of the sweep's metric (e.g. best_test_error)")
    rep.add_argument("--no-plots", action="store_true", help="print the table only")

    drift = sub.add_parser("drift", help="test error of a trained run as its device conductances drift "
                                         "(w (t/t0)^-nu per device), at several times after programming")
    drift.add_argument("run", help="run folder written by neurosim train (config.yaml, checkpoint.pt)")
    drift.add_argument("--times", default="1,60,3600,86400,2592000,31536000",
                       help="seconds after programming, comma-separated (default 1 s to 1 year)")
    drift.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="e.g. --set synapses.params.drift_nu=0.05 (the run's own device by default)")
    drift.add_argument("--compensate", action="store_true", help="rescale each layer by its mean decay")
    drift.add_argument("--out", help="where drift.json and drift.png go (default: the run folder)")
    drift.add_argument("--data-dir", help="dataset folder")

    show = sub.add_parser("config", help="print the resolved config (after --set overrides)")
    show.add_argument("config")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    sub.add_parser("list", help="list the shipped circuits and experiments")
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt so that the same clean-up runs as for Ctrl-C (a sweep closes
    its worker processes and releases its folder instead of leaving them to the resource tracker)."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", NeurosimWarning)
            warnings.showwarning = _show_warning(warnings.showwarning)
            return _run(args)
    except NeurosimError as exc:
        print(f"neurosim: error: {exc.cli_message()}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the output went to a pipe that closed early (e.g. `| head`)
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as exc:
        if args.command in ("sweep", "chip"):
            print("neurosim: interrupted; finished points and epochs are saved (run the same command again "
                  "to continue)", file=sys.stderr)
        else:
            print("neurosim: interrupted; finished epochs are saved (continue with --resume)", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _show_warning(show):  # type: ignore[no-untyped-def]
    """neurosim's warnings as one plain line (not ``file:line: NeurosimWarning: ...``), others as usual."""
    def showwarning(message, category, *rest, **kwargs):  # type: ignore[no-untyped-def]
        if issubclass(category, NeurosimWarning):
            print(f"neurosim: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *rest, **kwargs)
    return showwarning


def _run(args: argparse.Namespace) -> int:
    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "data_dir", None):
        overrides.append(f"data.dir={args.data_dir}")
    if args.command == "train":
        from neurosim.run.trainer import train

        result = train(args.config, out=args.out, resume=args.resume, overrides=overrides,
                       progress=not args.quiet)
        print(f"test error {result.test_error:.2%} (train error {result.train_error:.2%}) after "
              f"{result.epochs} epochs, {result.wall_seconds:.0f} s; results in {result.out_dir}")
    elif args.command == "bench":
        from neurosim.studies.bench import bench, format_table

        rows = bench(args.config, batch_sizes=[int(b) for b in args.batch_sizes.split(",")],
                     estimators=args.estimators.split(",") if args.estimators else None, samples=args.samples,
                     overrides=overrides)
        print(format_table(rows))
        if args.json:
            from neurosim.io import atomic_write_json

            atomic_write_json(args.json, rows)
    elif args.command == "gdu":
        from neurosim.studies.gdu import gdu

        etas = [float(e) for e in args.etas.split(",")] if args.etas else None
        result = gdu(args.config, out=args.out, overrides=overrides, etas=etas)
        print(result.table)
        print(f"total update vs total gradient (all weights, eta = 0): cosine {result.total_cosine:.6f}")
        print(f"free phase: |s_T - s_T-1| = {result.free_residual:.1e}; results in {result.out_dir}")
    elif args.command == "asymmetry":
        from neurosim.studies.asymmetry import asymmetry_study

        result = asymmetry_study(args.study, out=args.out, extra_overrides=overrides, progress=not args.quiet)
        print(result.table)
        print(f"results in {result.out_dir} (study.json, fig1c.png)")
    elif args.command == "sweep":
        from neurosim.sweeps.execution import sweep

        result = sweep(args.sweep, out=args.out, workers=args.workers, scheduler=args.scheduler,
                       overrides=overrides, threads=args.threads, retry_failed=not args.keep_failed,
                       progress=not args.quiet)
        print(result.table)
        counts = ", ".join(f"{n} {status}" for status, n in result.counts.items())
        print(f"{len(result.rows)} points ({counts}) in {result.wall_seconds:.0f} s; "
              f"results in {result.out_dir / 'results.csv'}")
        return 0 if all(row["status"] == "done" for row in result.rows) else 1
    elif args.command == "chip":
        from neurosim.studies.chip import chip

        result = chip(args.config, args.devices, estimators=args.estimators, epochs=args.epochs, subset=args.subset,
                      seeds=args.seeds, workers=args.workers, scheduler=args.scheduler, threads=args.threads,
                      out=args.out, overrides=overrides, progress=not args.quiet)
        print(result.table)
        counts = ", ".join(f"{n} {status}" for status, n in result.counts.items())
        print(f"{len(result.runs)} runs ({counts}), {result.trained} trained now, in {result.wall_seconds:.0f} s; "
              f"report: {result.report['html']} (and report.md, report.json)")
        return 0 if all(run["status"] == "done" for run in result.runs) else 1
    elif args.command == "report":
        from neurosim.sweeps.report import report

        result = report(args.dir, write_plots=not args.no_plots, metric=args.metric)
        print(result.table)
        for plot in result.plots:
            print(f"plot: {plot}")
    elif args.command == "devices":
        from neurosim.presets import available
        from neurosim.hardware.devices import describe, device_config, plot_pulse_response

        from neurosim.errors import ConfigError

        if args.action == "list":
            names = available("devices")
            width = max(map(len, names))
            for name in names:
                print(f"{name:<{width}}  {device_config(name).description}")
            return 0
        if args.action == "fit":
            from neurosim.hardware.fitting import fit_device, fit_summary, write_fit

            if not args.name:
                raise ConfigError("FILE", None, "measurement files: neurosim devices fit FILE... --name NAME")
            if not args.preset_name:
                raise ConfigError("--name", None, "the new preset's name: neurosim devices fit FILE... --name NAME")
            fit = fit_device(args.name, args.preset_name, laws=args.laws.split(",") if args.laws else None,
                             criterion=args.criterion, law=args.law, units=args.units,
                             directions=args.directions.split(",") if args.directions else None,
                             table_points=args.table_points)
            paths = write_fit(fit, args.out or Path("devices") / f"{args.preset_name}.yaml")
            print(fit_summary(fit))
            print(f"preset: {paths['preset']} (use it as --set synapses.device={paths['preset']})")
            print(f"fit record: {paths['record']}; plot: {paths['plot']}")
            return 0
        if len(args.name) != 1:
            raise ConfigError("name", args.name or None, "one device name: neurosim devices show NAME")
        from neurosim.config import parse_override

        config = device_config(args.name[0], dict(parse_override(item) for item in args.overrides), "device")
        print(describe(config))
        if not config.ideal:
            plot = args.plot or f"{config.name}_pulses.png"
            plot_pulse_response(config, plot)
            print(f"pulse response: {plot}")
    elif args.command == "drift":
        from neurosim.studies.drift import drift_study
        from neurosim.errors import ConfigError

        try:
            times = [float(t) for t in args.times.split(",")]
        except ValueError:
            raise ConfigError("--times", args.times, "comma-separated seconds, e.g. 1,3600,86400") from None
        result = drift_study(args.run, times, overrides=args.overrides, compensate=args.compensate,
                             out=args.out, data_dir=args.data_dir)
        for row in result["rows"]:
            print(f"t = {row['seconds']:>12g} s: test error {row['test_error']:.2%}")
        print(f"written: {Path(args.out or args.run) / ('drift_compensated' if args.compensate else 'drift')}.json/.png")
    elif args.command == "config":
        import yaml

        from neurosim.config import load_config

        print(yaml.safe_dump(load_config(args.config, overrides).to_dict(), sort_keys=False), end="")
    elif args.command == "list":
        from neurosim.presets import KINDS, available

        for kind in KINDS:
            print(f"{kind}: {', '.join(available(kind))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
