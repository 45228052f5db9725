"""Run one report notebook for a researcher: ``exresearch run NOTEBOOK -p NAME VALUE --out DIR``.

The single-report path next to the batch build: it executes one notebook with
papermill and renders its page exactly as ``exresearch build`` does (the build's
:func:`exresearch.build.execute_report`: a kernel in a private temporary folder,
figures inline, offline HTML from :func:`exresearch.site.render_report` with no code,
no CDN script and a provenance footer). Everything it writes goes into ``DIR``:

* ``DIR/<notebook>.ipynb``: the executed notebook, outputs included;
* ``DIR/<notebook>.html``: the offline page, and ``DIR/assets/site.css``, the site's
  stylesheet it links (as a site's pages do);
* ``DIR/tables/<notebook>/``: the CSV/JSON tables the notebook wrote (its ``output_dir``);
* ``DIR/.exresearch-run.json``: per notebook, what its last run was and wrote (so a
  re-run of that notebook replaces exactly those files; other notebooks' runs and any
  other file in ``DIR`` are left alone).

``DIR`` must be new, empty, or written by an earlier ``exresearch run``; it may not
lie inside the study folder (raw data is never written). The repository is never
written: the kernel runs in a temporary folder that is removed afterwards.

Parameters on the command line are checked against the notebook's ``parameters``
cell before anything runs: an unknown name, or a value that does not parse as the
declared type, is reported (all of them at once) with the allowed names and types.

Examples
--------
>>> from exresearch.run import parse_parameters
>>> declared = {"client_id": "str", "n_boot": "int", "lags": "tuple[int, ...]"}
>>> parse_parameters([("n_boot", "300"), ("lags", "[0, 1]")], declared=declared)
{'n_boot': 300, 'lags': [0, 1]}
>>> run_notebook("client_report", out="/tmp/exr-run-demo",
...              parameters={"client_id": "client-01"})  # doctest: +SKIP
RunResult(status='ok', ...)
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import config
from .exceptions import ParameterError

__all__ = ["RunResult", "run_notebook", "notebook_parameters", "parse_parameters",
           "resolve_notebook", "describe_parameters"]

#: Marker file written into ``--out``: what the last run wrote there.
MARKER = ".exresearch-run.json"
#: Parameters set by the command itself, not by ``-p``.
_RESERVED = {"output_dir": "the tables go to DIR/tables/<notebook>/ (set by --out)"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class RunResult:
    """What ``run_notebook`` did: ``status`` is ``"ok"`` or ``"failed"`` (with ``error``)."""

    status: str
    error: str | None
    notebook: Path | None
    html: Path
    tables: list[Path] = field(default_factory=list)
    duration: float = 0.0
    parameters: dict = field(default_factory=dict)


def resolve_notebook(notebook) -> Path:
    """Return the notebook file for a path or a project notebook's name.

    ``client_report``, ``client_report.ipynb`` and ``notebooks/client_report.ipynb``
    all name the same file; an existing path is used as it is.

    Examples
    --------
    >>> resolve_notebook("planning").name
    'planning.ipynb'
    >>> resolve_notebook("nope")
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: `notebook` must be an .ipynb file or one of ['client_report', 'data_quality', 'planning', 'synthesis'], but 'nope' was passed
    """
    p = Path(notebook)
    if p.suffix == ".ipynb" and p.is_file():
        return p.resolve()
    nb_dir = config.notebooks_dir()
    cand = nb_dir / (p.name if p.suffix == ".ipynb" else f"{p.name}.ipynb")
    if p.parent in (Path("."), Path("notebooks")) and cand.is_file():
        return cand
    names = sorted(q.stem for q in nb_dir.glob("*.ipynb")) if nb_dir.is_dir() else []
    raise ParameterError(
        f"`notebook` must be an .ipynb file or one of {names}, but {str(notebook)!r} "
        "was passed")


def notebook_parameters(notebook) -> dict:
    """The parameters a notebook declares: name -> declared type name (papermill's).

    Examples
    --------
    >>> params = notebook_parameters("client_report")
    >>> params["client_id"], params["study_path"]
    ('str', 'str')
    """
    found = _inspect(resolve_notebook(notebook))
    return {name: (spec.get("inferred_type_name") or "None") for name, spec in found.items()}


def describe_parameters(notebook, *, width: int = 88) -> str:
    """The notebook's parameters as text: ``name: type = default`` and the comment, wrapped.

    Examples
    --------
    >>> print(describe_parameters("planning").splitlines()[0])
    planning.ipynb: parameters (set with -p NAME VALUE; add --out DIR to run)
    """
    import textwrap

    path = resolve_notebook(notebook)
    lines = [f"{path.name}: parameters (set with -p NAME VALUE; add --out DIR to run)"]
    for name, spec in _inspect(path).items():
        lines.append(f"  {name}: {spec.get('inferred_type_name') or 'None'} = "
                     f"{spec.get('default')}" + ("  (set by --out)" if name in _RESERVED else ""))
        if spec.get("help"):
            lines += textwrap.wrap(spec["help"], width=width, initial_indent="      ",
                                   subsequent_indent="      ")
    return "\n".join(lines)


def _inspect(path: Path) -> dict:
    import papermill as pm

    return pm.inspect_notebook(str(path))


def _convert(name: str, text: str, declared: str):
    """Convert one ``-p`` value to the declared type; raise ValueError naming it."""
    import yaml

    base = declared.split("[", 1)[0].strip().lower()
    if base in ("str", "none", ""):
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ValueError(f"{name}: expected {declared}, but {text!r} does not parse") from None
    if base == "bool":
        ok = isinstance(value, bool)
    elif base == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base in ("list", "tuple", "sequence"):
        ok = isinstance(value, list)
    elif base == "dict":
        ok = isinstance(value, dict)
    elif "|" in declared or base in ("optional", "union"):  # e.g. float | None
        ok = True
    else:
        ok = True  # a type papermill reports that we do not check: passed as parsed
    if not ok:
        raise ValueError(f"{name}: expected {declared}, but {text!r} was passed")
    return value


def parse_parameters(pairs, *, declared: dict) -> dict:
    """Check ``-p NAME VALUE`` pairs against the declared parameters; convert the values.

    Parameters
    ----------
    pairs : list of (str, str)
        Names and values as typed on the command line (values as text).
    declared : dict
        name -> declared type name, from :func:`notebook_parameters`.

    Returns
    -------
    dict
        name -> value, typed: ``str`` parameters keep the text as it is, other types
        are parsed as YAML (``300``, ``0.8``, ``true``, ``[0, 1]``, ``null``).

    Raises
    ------
    ParameterError
        Listing every unknown name and every value that does not fit its type.

    Examples
    --------
    >>> parse_parameters([("nboot", "3"), ("client_id", "x")], declared={"client_id": "str"})
    Traceback (most recent call last):
    ...
    exresearch.exceptions.ParameterError: 1 problem with -p: nboot: not a parameter of the notebook; its parameters are ['client_id']
    """
    out, problems = {}, []
    for name, text in pairs:
        if name in _RESERVED:
            problems.append(f"{name}: cannot be set with -p: {_RESERVED[name]}")
        elif name not in declared:
            problems.append(f"{name}: not a parameter of the notebook; its parameters are "
                            f"{sorted(n for n in declared if n not in _RESERVED)}")
        else:
            try:
                out[name] = _convert(name, text, declared[name])
            except ValueError as exc:
                problems.append(str(exc))
    if problems:
        n = len(problems)
        raise ParameterError(f"{n} problem{'s' if n != 1 else ''} with -p: "
                             + "; ".join(problems))
    return out


def _check_out(out: Path, study: Path | None) -> None:
    if study is not None:
        if out == study or study in out.parents:
            raise ParameterError(
                f"`out` must be outside the study folder (inputs are never written), but "
                f"{str(out)!r} is inside {str(study)!r}")
    if out.exists():
        if not out.is_dir():
            raise ParameterError(f"`out` must be a folder, but {str(out)!r} is a file")
        if not (out / MARKER).is_file() and any(out.iterdir()):
            raise ParameterError(
                f"`out` must be a new or empty folder, or one an earlier `exresearch run` "
                f"wrote, but {str(out)!r} holds other files; choose another folder")


def _absolute_paths(params: dict) -> dict:
    """``*_path`` parameters given relative to where the command runs become absolute.

    The kernel runs in a temporary folder, so a relative path would otherwise be
    looked up there (and then in the repository root, as the notebooks do).
    """
    fixed = dict(params)
    for name, value in params.items():
        if name.endswith("_path") and isinstance(value, str) and value:
            p = Path(value).expanduser()
            if not p.is_absolute() and p.exists():
                fixed[name] = str(p.resolve())
    return fixed


def run_notebook(notebook, *, out, parameters=None, timeout=None) -> RunResult:
    """Execute one notebook with parameters; write it, its page and tables into ``out``.

    Parameters
    ----------
    notebook : str or os.PathLike
        A project notebook's name (``client_report``) or an ``.ipynb`` path.
    out : str or os.PathLike
        Folder to write into (see the module docstring); created if absent.
    parameters : dict, optional
        Parameter values (already typed); names must be declared by the notebook.
    timeout : float, optional
        Seconds allowed per cell (default: no limit).

    Returns
    -------
    RunResult
        ``status`` ``"ok"`` or ``"failed"``; on failure the executed notebook (up to the
        failing cell) and an HTML page showing the error are still written.
    """
    from .build import execute_report
    from .build.sitefiles import exresearch_version, git_commit, library_versions
    from .kernel import kernel_for_batch
    from .site import CSS_PATH

    path = resolve_notebook(notebook)
    specs = _inspect(path)
    declared = {n: (sp.get("inferred_type_name") or "None") for n, sp in specs.items()}
    params = dict(parameters or {})
    bad = [n for n in params if n in _RESERVED or n not in declared or not _NAME.fullmatch(n)]
    if bad:
        parse_parameters([(n, "") for n in bad], declared=declared)  # raises, listing all
    params = _absolute_paths(params)
    out = Path(out).expanduser().resolve()
    _check_out(out, _study_folder(params.get("study_path", _default(specs, "study_path"))))

    stem = path.stem
    nb = json.loads(path.read_text(encoding="utf-8"))
    title = str(nb.get("metadata", {}).get("title") or stem.replace("_", " ").capitalize())
    if params.get("client_id"):
        title = f"{title}: {params['client_id']}"
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    shown = path.relative_to(config.ROOT) if path.is_relative_to(config.ROOT) else path
    provenance = {
        "notebook": shown.as_posix(),
        "parameters": {k: json.dumps(v) if not isinstance(v, str) else v
                       for k, v in params.items()} or "defaults",
        "exresearch version": exresearch_version(),
        "git commit": git_commit(),
        "libraries": library_versions(),
        "run": f"{started} with `exresearch run`",
    }
    task = {"key": stem, "kind": "run", "title": title,
            "notebook_json": path.read_text(encoding="utf-8"), "parameters": params,
            "provenance": provenance, "timeout": timeout, "kernel_name": kernel_for_batch(),
            # a page on its own: no link to a site index; the stylesheet beside it
            "index_href": None, "css_href": CSS_PATH}
    t0 = time.perf_counter()
    res = execute_report(task, kernels="subprocess")

    record = {"notebook": str(path), "parameters": provenance["parameters"], "run": started,
              "status": res["status"], "error": res.get("error")}
    nb_file, html_file, tables = _write_outputs(out, stem, res, record)
    return RunResult(status=res["status"], error=res.get("error"), notebook=nb_file,
                     html=html_file, tables=tables, duration=time.perf_counter() - t0,
                     parameters=params)


def _write_outputs(out: Path, stem: str, res: dict, record: dict):
    """Write one run's files into ``out``, replacing only the last run of the same notebook.

    The marker keeps, per notebook, what its last run wrote; those files are removed
    first (a table the new run no longer writes must not linger), nothing else is
    touched: other notebooks' runs and the researcher's own files stay.
    """
    from .site import write_assets

    out.mkdir(parents=True, exist_ok=True)
    runs = _read_marker(out)
    for rel in runs.get(stem, {}).get("files", []):
        p = out / rel
        if p.is_file() and p.resolve().is_relative_to(out):
            p.unlink()
    written, nb_file = [], None
    if res.get("notebook") is not None:
        nb_file = out / f"{stem}.ipynb"
        nb_file.write_text(res["notebook"], encoding="utf-8")
        written.append(nb_file)
    html_file = out / f"{stem}.html"
    html_file.write_text(res["html"], encoding="utf-8")
    written += [html_file, out / write_assets(out)]
    tables = []
    if res.get("tables"):
        tdir = out / "tables" / stem
        tdir.mkdir(parents=True, exist_ok=True)
        for name, data in sorted(res["tables"].items()):
            (tdir / name).write_bytes(data)
            tables.append(tdir / name)
    written += tables
    runs[stem] = dict(record, files=[p.relative_to(out).as_posix() for p in written])
    (out / MARKER).write_text(json.dumps({"runs": runs}, indent=1) + "\n", encoding="utf-8")
    return nb_file, html_file, tables


def _default(specs: dict, name: str):
    """A declared string default (``"data/demo"``), without its quotes; else None."""
    text = (specs.get(name) or {}).get("default")
    if isinstance(text, str) and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return None


def _study_folder(value) -> Path | None:
    """The study folder as the notebooks find it: as given, else in the repository root."""
    if not isinstance(value, str) or not value:
        return None
    p = Path(value).expanduser()
    for cand in ([p] if p.is_absolute() else [p, config.ROOT / p]):
        if cand.is_dir():
            return cand.resolve()
    return None


def _read_marker(out: Path) -> dict:
    """notebook stem -> its last run (``files`` limited to relative paths inside ``out``)."""
    try:
        runs = json.loads((out / MARKER).read_text(encoding="utf-8")).get("runs", {})
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(runs, dict):
        return {}
    clean = {}
    for stem, run in runs.items():
        if not isinstance(run, dict):
            continue
        files = [f for f in run.get("files", []) if isinstance(f, str)
                 and ".." not in Path(f).parts and not Path(f).is_absolute()]
        clean[stem] = dict(run, files=files)
    return clean
