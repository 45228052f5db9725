"""Notebook parameters: :func:`setup_report` (load the study, make the output folder) and
the checks of single parameters (:func:`check_number`, :func:`check_choice`)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config
from ..exceptions import ParameterError
from .panels import _preloaded

_NOTEBOOKS = ("client_report", "synthesis", "data_quality", "planning")


@dataclass
class ReportSetup:
    """What :func:`setup_report` returns: the loaded study, the client and the output folder."""

    study: object
    out: Path
    client_id: str | None = None


def _studies_under(folder: Path) -> list[str]:
    try:
        return sorted(p.name for p in folder.iterdir() if (p / "study.yml").is_file())
    except OSError:
        return []


def _resolve_study_path(study_path) -> Path:
    if not isinstance(study_path, str | Path) or str(study_path).strip() == "":
        raise ParameterError(
            "`study_path` must be the path of a study folder (a folder containing "
            f"study.yml), but {study_path!r} was passed"
        )
    p = Path(study_path).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, config.ROOT / p]
    for c in candidates:
        if (c / "study.yml").is_file():
            return c.resolve()
    found = _studies_under(config.DATA_DIR)
    hint = (f"; study folders in {config.DATA_DIR}: {found}" if found
            else f"; no study folder found in {config.DATA_DIR} (run `make demo`)")
    raise ParameterError(
        "`study_path` must be a folder containing study.yml, but "
        f"{str(study_path)!r} was passed (looked in {[str(c) for c in candidates]}){hint}"
    )


def setup_report(*, study_path, output_dir, notebook, client_id=None) -> ReportSetup:
    """Check a notebook's parameters, load the study and create the output folder.

    Parameters
    ----------
    study_path : str or pathlib.Path
        Study folder. A relative path is looked up from the working folder first, then
        from the repository root (so the default ``"data/demo"`` works both from the
        command line and from JupyterLab, whose working folder is ``notebooks/``).
    output_dir : str or pathlib.Path
        Folder for the CSV tables, created if needed. ``""`` means
        ``reports/tables/<notebook>[/<client_id>]`` in the repository.
    notebook : {"client_report", "synthesis", "data_quality", "planning"}
        Which notebook asks (names the default output folder).
    client_id : str, optional
        Required for ``"client_report"``: one of the study's clients, or ``""`` for the
        first client of the study (the notebook's default, so that the committed notebook
        names no client and runs on any study).

    Returns
    -------
    ReportSetup
        ``study`` (:class:`exresearch.study.Study`), ``out`` (the output folder, absolute)
        and ``client_id`` (resolved).

    Raises
    ------
    ParameterError
        One message naming the parameter, the allowed values and the value received.
    exresearch.StudyValidationError
        When the folder holds a study that breaks the input contract.

    Examples
    --------
    >>> from exresearch.report import setup_report
    >>> setup_report(study_path="no/such/study", output_dir="", notebook="synthesis")
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: `study_path` must be a folder containing study.yml, ...
    """
    from ..study import load_study

    if notebook not in _NOTEBOOKS:
        raise ParameterError(
            f"The value for `notebook` must be one of {list(_NOTEBOOKS)}, but {notebook!r} "
            "was passed"
        )
    path = _resolve_study_path(study_path)
    study = _preloaded(path) or load_study(path)
    if notebook == "client_report" and client_id == "":
        client_id = study.clients[0]  # the default: the study's first client
    if notebook == "client_report" or client_id is not None:
        if not isinstance(client_id, str) or client_id not in study.clients:
            raise ParameterError(
                f"`client_id` must be one of the study's clients {list(study.clients)}, but "
                f"{client_id!r} was passed"
            )
    if not isinstance(output_dir, str | Path):
        raise ParameterError(
            f"`output_dir` must be a folder path (or \"\" for the default), but {output_dir!r} "
            "was passed"
        )
    if str(output_dir).strip() == "":
        out = config.REPORTS_DIR / "tables" / notebook
        if client_id is not None:
            out = out / client_id
    else:
        out = Path(output_dir).expanduser()
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise ParameterError(
            f"`output_dir` must be a folder, but {str(output_dir)!r} is an existing file"
        )
    if out == path or path in out.parents:
        raise ParameterError(
            f"`output_dir` must be outside the study folder (inputs are never written), but "
            f"{str(out)!r} is inside {str(path)!r}"
        )
    out.mkdir(parents=True, exist_ok=True)
    from .. import style

    style.use()  # the house theme; in a notebook, figures carry alt text from their data
    return ReportSetup(study=study, out=out, client_id=client_id)


def check_number(name, value, *, lo=None, hi=None, integer=False):
    """Check a numeric notebook parameter and return it.

    Parameters
    ----------
    name : str
        The parameter's name (used in the message).
    value : object
        The value received.
    lo, hi : float, optional
        Inclusive bounds.
    integer : bool, default False
        Require an integer.

    Returns
    -------
    int or float

    Examples
    --------
    >>> check_number("n_boot", 500, lo=1, integer=True)
    500
    >>> check_number("n_boot", 0, lo=1, integer=True)
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: `n_boot` must be an integer >= 1, but 0 was passed
    """
    kind = "an integer" if integer else "a number"
    ok = (isinstance(value, int | np.integer) if integer
          else isinstance(value, int | float | np.integer | np.floating))
    ok = ok and not isinstance(value, bool) and math.isfinite(float(value))
    ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        rng = (f" >= {lo}" if hi is None else f" <= {hi}" if lo is None else f" in [{lo}, {hi}]"
               ) if (lo is not None or hi is not None) else ""
        raise ParameterError(f"`{name}` must be {kind}{rng}, but {value!r} was passed")
    return int(value) if integer else float(value)


def check_choice(name, value, allowed):
    """Check that a notebook parameter is one of the allowed values and return it.

    Examples
    --------
    >>> check_choice("method", "REML", ["REML", "DL", "FE"])
    'REML'
    >>> check_choice("method", "ML", ["REML", "DL", "FE"])
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: The value for `method` must be one of ['REML', 'DL', 'FE'], but 'ML' was passed
    """
    if value not in list(allowed):
        raise ParameterError(
            f"The value for `{name}` must be one of {list(allowed)}, but {value!r} was passed")
    return value


def check_int_list(name, value, *, lo=None, hi=None) -> tuple:
    """Check a notebook parameter holding integers separated by commas, e.g. ``"0, 1"``.

    Papermill parameters are plain values, so a list of integers is passed as text.

    Examples
    --------
    >>> check_int_list("lags", "0, 1", lo=0)
    (0, 1)
    >>> check_int_list("lags", "0, x", lo=0)
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: `lags` must be integers >= 0 separated by commas, such as "0, 1", but '0, x' was passed
    """
    return check_number_list(name, value, lo=lo, hi=hi, integer=True)


def check_number_list(name, value, *, lo=None, hi=None, integer=False) -> tuple:
    """Check a notebook parameter holding numbers separated by commas, e.g. ``"0.1, 0.2"``.

    Examples
    --------
    >>> check_number_list("effects", "0.1, 0.25", lo=0.01, hi=0.9)
    (0.1, 0.25)
    >>> check_number_list("effects", "", lo=0.01, hi=0.9)
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: `effects` must be numbers in [0.01, 0.9] separated by commas, such as "0, 1", but '' was passed
    """
    kind = int if integer else float
    rng = (f" >= {lo}" if hi is None else f" <= {hi}" if lo is None else f" in [{lo}, {hi}]"
           ) if (lo is not None or hi is not None) else ""
    try:
        out = tuple(kind(v) for v in str(value).split(","))
    except ValueError:
        out = ()
    if not out or isinstance(value, bool) or not all(math.isfinite(v) for v in out) or any(
            (lo is not None and v < lo) or (hi is not None and v > hi) for v in out):
        raise ParameterError(f"`{name}` must be {'integers' if integer else 'numbers'}{rng} "
                             f"separated by commas, such as \"0, 1\", but {value!r} was passed")
    return out


#: Warnings the reports silence, each one specific: (message regex, category, why).
#: Everything else still shows (on stderr, which the notebook tests forbid), so a new kind
#: of warning is seen and either fixed or added here with its reason.
KNOWN_WARNINGS = (
    (r".*(is undefined|undefined:|returning NaN|are NaN|is NaN)", UserWarning,
     "a statistic undefined for these data: shown as an empty cell with a note"),
    (r".*(row\(s\) with a missing value were left out|at least \d+ (are )?needed"
     r"|needs at least)", UserWarning,
     "too few clients or units for a statistic: shown as an empty cell with a note"),
    (r"benchmark withheld for", UserWarning,
     "the benchmark table says which measure is withheld and why"),
    (r"REML estimation of tau\^2 did not converge", UserWarning,
     "the last value is used; the table shows the estimate"),
    (r"IProgress not found", Warning,
     "tqdm (imported by exresearch.power) wants ipywidgets for notebook progress bars; the "
     "reports show none"),
)


def quiet_known_warnings() -> None:
    """Silence the specific warnings of :data:`KNOWN_WARNINGS` in this process.

    A report shows undefined statistics as empty cells with a note, so these warnings only
    repeat them (and, in a client report, could echo other clients' data). Call it in the
    notebook's first cell after the parameters; every other warning still shows.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     quiet_known_warnings()
    ...     warnings.warn("ICC of x is undefined: no values; returning NaN")
    ...     warnings.warn("something new")
    >>> [str(w.message) for w in seen]
    ['something new']
    """
    for message, category, _why in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def check_names(name, value, allowed) -> list:
    """Check a notebook parameter naming some of the allowed values, separated by commas.

    ``""`` means all of them, in their order.

    Examples
    --------
    >>> check_names("outcomes", "", ["nps", "sales"]), check_names("outcomes", "sales", ["nps", "sales"])
    (['nps', 'sales'], ['sales'])
    >>> check_names("outcomes", "nps, churn", ["nps", "sales"])
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: `outcomes` must name some of ['nps', 'sales'] separated by commas (or be "" for all), but 'nps, churn' was passed
    """
    allowed = list(allowed)
    if not isinstance(value, str):
        got = None
    else:
        got = [v.strip() for v in value.split(",") if v.strip()] or allowed
    if got is None or any(v not in allowed for v in got):
        raise ParameterError(f"`{name}` must name some of {allowed} separated by commas (or be "
                             f"\"\" for all), but {value!r} was passed")
    return got
