"""Command line interface: ``exresearch validate | simulate | build | run``.

The CLI only parses arguments and calls library functions (as papermill's
``cli.py`` does over ``execute_notebook``); every behaviour lives in the library.
Exit codes: 0 success, 1 a build finished with failed reports, 2 invalid input or an
unusable ``--out``, 3 the machine failed (disk full, read-only); each with one line on
stderr, and a traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .exceptions import ExresearchError, StudyValidationError

__all__ = ["main", "make_parser"]


def make_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for the docs and the tests)."""
    parser = argparse.ArgumentParser(
        prog="exresearch",
        description=(
            "Multi-client studies linking employee experience (EX) to customer "
            "experience (CX) and business results: validate a study folder, simulate "
            "one with planted effects, and build a site of HTML reports."
        ),
    )
    parser.add_argument("--version", action="version", version=f"exresearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "validate",
        help="check a study folder against the input contract",
        description="Check a study folder; print every problem (exit 2) or a summary (exit 0).",
    )
    p.add_argument("study", type=Path, help="study folder holding study.yml and clients/")
    p.add_argument("--max-problems", type=int, default=50, metavar="N",
                   help="print at most N problems, then a count by kind (default 50; 0: all)")
    p.add_argument("--problems-csv", type=Path, default=None, metavar="FILE",
                   help="also write every problem (errors and warnings) to FILE, a new CSV "
                        "file outside the study folder")

    p = sub.add_parser(
        "import",
        help="write a study folder from a survey-platform export and a mapping file",
        description=("Read a survey-platform export (.csv, .xlsx, .sav or .dta, one row per "
                     "response) "
                     "and a mapping file (YAML: unit, period, respondent and item columns; "
                     "see docs/study.md), write a validated study folder in --out and list "
                     "the source columns left out. The source files are only read; on any "
                     "problem nothing is written."),
    )
    p.add_argument("export", type=Path, help="the platform export (.csv, .xlsx, .sav or .dta)")
    p.add_argument("--mapping", type=Path, required=True, help="the mapping file (YAML)")
    p.add_argument("--out", type=Path, required=True, help="study folder to create (new or empty)")
    p.add_argument("--outcomes", type=Path, required=True,
                   help="the client's outcomes file (any format validate reads), copied into "
                        "the study")
    p.add_argument("--max-problems", type=int, default=50, metavar="N",
                   help="print at most N problems, then a count by kind (default 50; 0: all)")

    p = sub.add_parser(
        "simulate",
        help="write a simulated study with planted effects",
        description="Write a simulated study folder (and truth.json) that passes validate.",
    )
    p.add_argument("out", type=Path, help="folder to create (must not exist or be empty)")
    p.add_argument("--clients", type=int, default=10, help="number of clients (default 10)")
    p.add_argument("--units", type=int, default=30, help="business units per client (default 30)")
    p.add_argument("--periods", type=int, default=4, help="number of periods (default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--preset", default="reciprocal",
                   choices=["reciprocal", "null", "ex_leads", "cx_leads", "classic"],
                   help="planted world (default reciprocal; null: stable unit traits, no "
                        "cross-lagged effect; see docs/simulation.md)")

    p = sub.add_parser(
        "build",
        help="execute the report notebooks and publish an HTML site",
        description="Validate STUDY, execute every report notebook and publish the site in --out.",
    )
    p.add_argument("study", type=Path, help="study folder")
    p.add_argument("--out", type=Path, required=True, help="site folder to publish into")
    p.add_argument("--jobs", type=int, default=None, help="parallel jobs (default: one per core)")
    p.add_argument("--force", action="store_true", help="re-execute every report")
    p.add_argument("--only", nargs="+", metavar="CLIENT", help="build only these clients' reports")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="where reports run (default local)")
    p.add_argument("--scheduler", default=None, help="dask scheduler address for --executor dask")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--cache", type=Path, default=None, metavar="DIR",
                       help="keep the result cache (study data) in DIR, outside --out "
                            "(default: $EXRESEARCH_CACHE_DIR, $XDG_CACHE_HOME/exresearch or "
                            "~/.cache/exresearch, one subfolder per site)")
    where.add_argument("--no-cache", action="store_true",
                       help="no result cache (same results, slower rebuilds)")
    p.add_argument("--pdf", action=argparse.BooleanOptionalAction, default=None,
                   help="print every report and brief to PDF with headless Chromium "
                        "(default: on when Chromium is installed)")

    p = sub.add_parser(
        "run",
        help="execute one notebook with parameters into a folder (notebook, offline HTML, tables)",
        description=("Execute one report notebook with papermill and write the executed "
                     "notebook, its offline HTML page (as the build renders it) and its "
                     "tables into --out, and nowhere else. Without --out, list the "
                     "notebook's parameters."),
    )
    p.add_argument("notebook", help="client_report, synthesis, data_quality, planning, or a path")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                   metavar=("NAME", "VALUE"),
                   help="set a parameter (repeatable); non-text values are read as YAML: "
                        "300, 0.8, true, [0, 1]")
    p.add_argument("--out", type=Path, default=None,
                   help="folder to write into (new, empty, or written by an earlier run)")
    p.add_argument("--timeout", type=float, default=None, help="seconds allowed per cell")
    for sp in sub.choices.values():
        sp.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (default: one line)")
    return parser


def _print_problems(table, limit: int, file) -> None:
    """Print the problem table, capped at ``limit`` rows plus a count by kind."""
    from .study import format_problems, summarize_problems

    if limit <= 0 or len(table) <= limit:
        print(format_problems(table), file=file)
        return
    print(format_problems(table.head(limit)), file=file)
    rest = len(table) - limit
    print(f"... {rest:,} more not shown (--max-problems {limit}; --problems-csv FILE writes "
          "them all). All problems by kind:", file=file)
    summary = summarize_problems(table)
    print(summary.rename(columns={"first_row": "first row"}).to_string(index=False), file=file)


def _check_problems_csv(target: Path, study: Path) -> None:
    """--problems-csv must be a new file outside the study folder (checked before reading)."""
    from .exceptions import ParameterError

    try:
        Path(target).resolve().relative_to(Path(study).resolve())
        inside = True
    except ValueError:
        inside = False
    if inside:
        raise ParameterError(f"--problems-csv must be outside the study folder (nothing is "
                             f"written into a study), but {str(target)!r} was passed")
    if Path(target).exists() or Path(target).is_symlink():
        raise ParameterError(f"--problems-csv must name a new file (an existing file is never "
                             f"overwritten), but {str(target)!r} exists")


def _validate(args) -> int:
    from .study import load_study

    if args.problems_csv is not None:
        _check_problems_csv(args.problems_csv, args.study)
    try:
        study = load_study(args.study)
        table = study.warnings
    except StudyValidationError as exc:
        study, table = None, exc.problems
    if args.problems_csv is not None:
        with open(args.problems_csv, "x", newline="", encoding="utf-8") as fh:  # never overwrite
            table.to_csv(fh, index=False)
        print(f"{len(table):,} problem{'s' if len(table) != 1 else ''} written to "
              f"{args.problems_csv}", file=sys.stderr if study is None else sys.stdout)
    if study is None:
        errors = int((table["severity"] == "error").sum())
        warnings = len(table) - errors
        print(f"{args.study}: INVALID ({errors:,} error{'s' if errors != 1 else ''}, "
              f"{warnings:,} warning{'s' if warnings != 1 else ''})", file=sys.stderr)
        _print_problems(table, args.max_problems, sys.stderr)
        return 2
    if len(study.warnings):
        n = len(study.warnings)
        print(f"{n:,} warning{'s' if n != 1 else ''}:")
        _print_problems(study.warnings, args.max_problems, sys.stdout)
    summary = study.summary()
    counts = [(len(summary), "client"), (int(summary["units"].sum()), "unit"),
              (int(summary["respondents"].sum()), "respondent"),
              (len(study.config.periods), "period")]
    text = ", ".join(f"{n} {word}{'s' if n != 1 else ''}" for n, word in counts)
    print(f"{args.study}: valid ({text})")
    print(summary.to_string(index=False))
    return 0


def _import(args) -> int:
    from .importer import import_export
    from .study import format_problems

    try:
        result = import_export(args.export, mapping=args.mapping, out=args.out,
                               outcomes=args.outcomes)
    except StudyValidationError as exc:
        print(str(exc).split(":\n", 1)[0], file=sys.stderr)
        _print_problems(exc.problems, args.max_problems, sys.stderr)
        return 2
    print(f"imported {result.responses:,} responses from {args.export} into {result.study}"
          + (f" ({result.dropped:,} rows left out by export.keep)" if result.dropped else ""))
    for path in result.files:
        print(f"  wrote {path}")
    print(f"{len(result.unmapped)} source column{'s' if len(result.unmapped) != 1 else ''} "
          f"not imported: {', '.join(result.unmapped) or 'none'}")
    if result.warnings is not None and len(result.warnings):
        print(f"{len(result.warnings)} warning{'s' if len(result.warnings) != 1 else ''}:")
        print(format_problems(result.warnings))
    return 0


def _simulate(args) -> int:
    from .simulate import simulate_study

    path = simulate_study(
        args.out, n_clients=args.clients, n_units=args.units, n_periods=args.periods,
        seed=args.seed, preset=args.preset,
    )
    print(f"simulated study written to {path}")
    return 0


def _build(args) -> int:
    import time

    from .build import build_site

    start_cpu = time.process_time()  # the CLI's start-up: Python, imports, arguments
    result = build_site(
        args.study, out=args.out, jobs=args.jobs, force=args.force, only=args.only,
        executor=args.executor, scheduler=args.scheduler, pdf=args.pdf,
        cache=False if args.no_cache else args.cache,
    )
    if args.debug:
        from .build.records import Phases

        ph = Phases()
        ph.add("CLI start (CPU only)", wall=0.0, cpu=start_cpu)
        for name, t in result.phases.items():
            ph.add(name, wall=t["wall"], cpu=t["cpu"])
        print(ph.text(), file=sys.stderr)
    print(result.index)
    return result.exit_code


def _run(args) -> int:
    from .run import (
        describe_parameters,
        notebook_parameters,
        parse_parameters,
        resolve_notebook,
        run_notebook,
    )

    path = resolve_notebook(args.notebook)
    declared = notebook_parameters(path)
    params = parse_parameters([tuple(p) for p in args.parameter], declared=declared)
    if args.out is None:
        print(describe_parameters(path))
        return 0
    result = run_notebook(path, out=args.out, parameters=params, timeout=args.timeout)
    for f in [result.notebook, result.html]:
        if f is not None:
            print(f)
    if result.tables:
        print(f"{result.tables[0].parent} ({len(result.tables)} tables)")
    if result.status != "ok":
        print(f"failed: {result.error}", file=sys.stderr)
        return 1
    return 0


_COMMANDS = {"validate": _validate, "import": _import, "simulate": _simulate, "build": _build, "run": _run}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    debug = getattr(args, "debug", False)
    try:
        return _COMMANDS[args.command](args)
    except StudyValidationError as exc:
        if debug:
            raise
        print(exc, file=sys.stderr)
        return 2
    except ExresearchError as exc:
        if debug:
            raise
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted (KeyboardInterrupt); nothing was published", file=sys.stderr)
        return 130
    except OSError as exc:  # the machine: disk full, read-only, permissions
        if debug:
            raise
        print(f"error: {exc.strerror or exc} (errno {exc.errno}); rerun with --debug for "
              "the traceback", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001 - a bug: still one line, exit 3
        if debug:
            raise
        print(f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
              " (rerun with --debug for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
