"""``python -m pdeopt.calibration DATABASE [--plot PNG]``: the table and the plot of a
calibration's evaluation database (:func:`pdeopt.calibration.report`)."""

import argparse

from pdeopt.calibration.database import report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pdeopt.calibration",
                                     description="Report on a calibration database.")
    parser.add_argument("database", help="the SQLite file of an EvaluationStore")
    parser.add_argument("--plot", default=None,
                        help="the PNG of best objective against evaluations "
                             "(default: DATABASE with the suffix .png)")
    args = parser.parse_args(argv)
    report(args.database, plot=args.plot)


if __name__ == "__main__":
    main()
