"""``numnet experiments``: run the reference experiments E1-E16 (:mod:`numnet.experiments`) and write
their report."""

import pathlib

from numnet import experiments

DEFAULT_EXPERIMENTS_OUTPUT = "numnet-experiments"


def command_experiments(args):
    """Run the reference experiments, write report.html and print a summary; exit 1 if one is not reproduced."""
    output = pathlib.Path(args.output)

    def announce(result):
        status = f"skipped: {result.skipped}" if result.skipped else f"done in {result.seconds:.1f} s"
        print(f"{result.id} {result.title}: {status}", flush=True)

    results = experiments.run_experiments(args.ids, output, quick=args.quick, progress=announce)
    report = experiments.write_report(results, output / "report.html")
    for result in results:
        print(f"\n{result.id}. {result.title}")
        for quantity, value, reference, verdict in result.rows:
            print(f"  {quantity}: numnet {value} | reference {reference} | {verdict}")
    print(f"\nreport written to {report}")
    failed = [result.id for result in results if not result.reproduced]
    if failed:
        print(f"not reproduced: {', '.join(failed)}")
        return 1
    return 0


def add_parser(commands):
    """Add ``numnet experiments`` and its options to the subparsers ``commands``."""
    runner = commands.add_parser("experiments", help="run the reference experiments E1-E16 and write a report",
                                 description="Run the reference experiments and write report.html.")
    runner.add_argument("ids", nargs="*", metavar="ID", help="experiments to run, e.g. E1 E3 (default: all)")
    runner.add_argument("--quick", action="store_true", help="shorten the long schedules (E3-E5, E8-E16)")
    runner.add_argument("--output", default=DEFAULT_EXPERIMENTS_OUTPUT, metavar="DIR",
                        help="folder for the figures and report.html (default %(default)s)")
    runner.set_defaults(run=command_experiments)
