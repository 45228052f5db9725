"""Fingerprints, build state and the plan: which reports run, which are reused."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import config
from .._hashing import TreeSnapshot, hash_study_tree, sha256_file, study_tree_stats
from ..exceptions import BuildError, ParameterError
from .records import (
    KEYS,
    NOTEBOOKS,
    SAFE_REL,
    STATE_FILE,
    STATE_VERSION,
    TITLES,
    BuildResult,
    ReportRecord,
)

__all__ = ["fingerprint", "source_hash", "read_state", "state_records", "study_token", "Plan",
           "make_plan"]

hash_tree = hash_study_tree


def _pkg():
    """The ``exresearch.build`` package: its attributes are the patchable seams."""
    from .. import build

    return build


def source_hash(*, package_dir=None) -> str:
    """Hash of the exresearch package source (every .py and template file); of the copy
    in ``package_dir`` when given."""
    h = hashlib.sha256()
    pkg = Path(package_dir or config.PACKAGE_DIR)
    files = sorted(
        p for p in pkg.rglob("*")
        if p.is_file() and (p.suffix == ".py" or "templates" in p.parts)
        and "__pycache__" not in p.parts
    )
    for p in files:
        h.update(p.relative_to(pkg).as_posix().encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def fingerprint(notebook) -> str:
    """sha256 of what a notebook *does*: its cells' type, source and tags, nothing else.

    Outputs, execution counts, widget state and notebook/cell metadata other than the
    cell tags (which decide what the page shows: ``parameters``, ``remove-cell``, ...)
    are ignored, so opening, running and saving a notebook in JupyterLab does not make
    every report stale; editing a code or markdown cell, or a tag, does.

    Parameters
    ----------
    notebook : str, pathlib.Path or dict
        Path of an ``.ipynb`` file, or the parsed notebook (``nbformat`` node or dict).

    Examples
    --------
    >>> nb = {"cells": [{"cell_type": "code", "source": "x = 1", "outputs": [],
    ...                  "execution_count": None, "metadata": {}}]}
    >>> ran = {"cells": [{"cell_type": "code", "source": ["x = 1"], "execution_count": 3,
    ...                   "outputs": [{"output_type": "stream", "text": "hi"}],
    ...                   "metadata": {"scrolled": True}}], "metadata": {"kernelspec": {}}}
    >>> fingerprint(nb) == fingerprint(ran)
    True
    >>> nb["cells"][0]["source"] = "x = 2"
    >>> fingerprint(nb) == fingerprint(ran)
    False
    """
    if isinstance(notebook, (str, Path)):
        notebook = json.loads(Path(notebook).read_text(encoding="utf-8"))
    cells = []
    for cell in notebook.get("cells", []):
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(src)
        tags = sorted((cell.get("metadata") or {}).get("tags", []) or [])
        cells.append([cell.get("cell_type"), src, tags])
    return digest({"nbformat-cells": cells})


def digest(payload) -> str:
    """sha256 of a JSON-serialisable payload (keys sorted)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def env_fingerprint(nb_dir: Path) -> dict:
    """Fingerprints of what every report depends on besides its inputs."""
    lock = config.ROOT / "requirements.lock"
    notebooks = {}
    for name in sorted(NOTEBOOKS.values()):
        try:
            notebooks[name] = fingerprint(nb_dir / name)
        except (OSError, ValueError):
            notebooks[name] = None
    return {
        "source": _pkg()._source_hash(),
        "lock": sha256_file(lock) if lock.is_file() else None,
        "notebooks": notebooks,
        "python": sys.version.split()[0],
    }


# --------------------------------------------------------------------------- state
#: What the build state writes for the study folder in the reports' parameters: the state
#: sits inside the published site, which holds no absolute path of the build machine.
STUDY_PLACEHOLDER = "<study>"


def study_token(study_path: Path) -> str:
    """sha256 of the study folder's absolute path: how the state names the study.

    Examples
    --------
    >>> study_token(Path("/a/study")) == study_token(Path("/a/study")), len(study_token(Path("/x")))
    (True, 64)
    """
    return hashlib.sha256(str(study_path).encode()).hexdigest()


def state_records(records, study_path: Path) -> list[dict]:
    """The records as the state stores them: ``parameters["study_path"]`` replaced by
    :data:`STUDY_PLACEHOLDER` (:func:`read_state` puts the path back)."""
    from dataclasses import asdict

    out = []
    for r in records:
        d = asdict(r)
        params = dict(d.get("parameters") or {})
        if params.get("study_path") == str(study_path):
            params["study_path"] = STUDY_PLACEHOLDER
        d["parameters"] = params
        out.append(d)
    return out


def read_state(out: Path, study_path: Path | None = None) -> dict | None:
    """The previous build's state in ``out``, or None when absent or not trustworthy.

    With ``study_path``, and when the state was written for that study (its
    ``study`` token, :func:`study_token`), the reports' parameters get the study folder
    back in place of :data:`STUDY_PLACEHOLDER`.
    """
    try:
        state = json.loads((out / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return None
    try:  # a state file we cannot read back is treated as no state: everything re-runs
        state["reports"] = [ReportRecord(**r) for r in state.get("reports", [])]
    except TypeError:
        return None
    for r in state["reports"]:  # paths are reused for copying: only our own layout
        if not all(SAFE_REL.fullmatch(rel) for rel in [r.html, r.notebook, *r.tables] if rel):
            return None
    if study_path is not None and state.get("study") == study_token(study_path):
        for r in state["reports"]:
            if isinstance(r.parameters, dict) and \
                    r.parameters.get("study_path") == STUDY_PLACEHOLDER:
                r.parameters = {**r.parameters, "study_path": str(study_path)}
    files = state.get("files")
    if files is not None and (not isinstance(files, list)
                              or not all(isinstance(f, str) for f in files)):
        return None
    return state


def state_snapshot(state: dict | None) -> TreeSnapshot | None:
    """The study files' signatures and hashes the previous build recorded (``stats`` and
    ``tree`` of its state), so that files whose signature (size, mtime, ctime, inode,
    device) is unchanged are not read again; None when it recorded none (older sites).
    Only the build that recorded them for this study folder uses them (the caller has
    checked the state's ``study`` token or reads the state with ``study_path``)."""
    if not state or not isinstance(state.get("stats"), dict) or \
            not isinstance(state.get("tree"), dict):
        return None
    stats = {}
    for rel, sig in state["stats"].items():
        ok = isinstance(sig, list) and len(sig) == 5 and all(isinstance(x, int) for x in sig)
        stats[rel] = tuple(sig) if ok else None
    return TreeSnapshot(stats, state["tree"])


def check_only(only, clients) -> list[str] | None:
    if only is None:
        return None
    if isinstance(only, str):
        only = [only]
    only = [str(c) for c in only]
    for cid in only:
        if cid not in clients:
            raise ParameterError(
                f"`only` must name clients of the study, one of {list(clients)}, but "
                f"{cid!r} was passed"
            )
    return only


def fast_path(study_path: Path, out: Path, force: bool, only, t0: float) -> BuildResult | None:
    """Return the current site's result when no input changed at all, else None."""
    if force:
        return None
    state = read_state(out, study_path)
    if state is None or not (out / "index.html").is_file():
        return None
    if state.get("study") != study_token(study_path):
        return None
    reports = state["reports"]
    if not reports or any(r.status != "ok" for r in reports):
        return None
    if any(not (out / r.html).is_file() for r in reports if r.html):
        return None
    check_only(only, state.get("clients", []))
    if state.get("env") != env_fingerprint(config.notebooks_dir()):
        return None
    if state.get("tree") != hash_tree(study_path, known=state_snapshot(state)):
        return None
    return BuildResult(index=out / "index.html", exit_code=0, reports=reports, executed=[],
                       duration=time.perf_counter() - t0)


# --------------------------------------------------------------------------- plan
@dataclass
class Plan:
    """Every report of the site, and the ones this build executes (longest first)."""

    records: list[ReportRecord]
    to_run: list[ReportRecord]
    prev: dict
    env: dict
    tree: dict
    clients: list
    stats: dict | None = None  # the files' signatures when ``tree`` was hashed


def check_notebooks(nb_dir: Path) -> None:
    missing = [n for n in NOTEBOOKS.values() if not (nb_dir / n).is_file()]
    if missing:
        raise BuildError(
            f"notebooks missing in {nb_dir}: {missing}; run from a source checkout "
            "(pip install -e .) or set EXRESEARCH_NOTEBOOKS to the folder holding them")


def inputs_by_client(hashes: dict, clients) -> dict:
    """Each client's input files: ``study.yml`` and the files under ``clients/<id>/``,
    in the order of ``hashes``; one pass over the files (not one per client).

    Examples
    --------
    >>> inputs_by_client({"study.yml": "a", "clients/x/s.csv": "b", "clients/xy/s.csv": "c",
    ...                   "clients/stray.csv": "d"}, ["x", "xy"])
    {'x': {'study.yml': 'a', 'clients/x/s.csv': 'b'}, 'xy': {'study.yml': 'a', 'clients/xy/s.csv': 'c'}}
    """
    per = {cid: {} for cid in clients}
    for k, v in hashes.items():
        if k == "study.yml":
            for d in per.values():
                d[k] = v
            continue
        parts = k.split("/", 2)
        if len(parts) == 3 and parts[0] == "clients" and parts[1] in per:
            per[parts[1]][k] = v
    return per


def _records(study, study_path: Path, clients, hashes: dict, env_fp: dict):
    cfg = study.config
    per_client = inputs_by_client(hashes, clients)
    for kind in ("synthesis", "data_quality", "client"):
        for cid in (clients if kind == "client" else [None]):
            key = f"client-{cid}" if cid else KEYS[kind]
            params = {"study_path": str(study_path)}
            if cid:
                params["client_id"] = cid
                inputs = per_client[cid]
                spec = cfg.client(cid) if hasattr(cfg, "client") else None
                name = getattr(spec, "name", None) or cid
                industry = getattr(spec, "industry", None)
            else:
                inputs = dict(hashes)
                name, industry = TITLES[kind], None
            fp = digest({
                "kind": kind, "notebook": env_fp["notebooks"][NOTEBOOKS[kind]],
                "parameters": params, "inputs": inputs, "source": env_fp["source"],
                "lock": env_fp["lock"], "python": env_fp["python"],
            })
            yield ReportRecord(key=key, kind=kind, client_id=cid, name=str(name),
                               industry=industry, parameters=params, inputs=inputs,
                               fingerprint=fp)


def make_plan(study, study_path: Path, out: Path, *, force: bool, only) -> Plan:
    """Fingerprint every report and decide which ones run (nothing is written)."""
    clients = list(study.clients)
    for cid in clients:
        if not re.fullmatch(config.CLIENT_ID_PATTERN, str(cid)):
            raise BuildError(f"client id {cid!r} does not match {config.CLIENT_ID_PATTERN}")
    only = check_only(only, clients)
    nb_dir = config.notebooks_dir()
    check_notebooks(nb_dir)
    env_fp = env_fingerprint(nb_dir)
    state = read_state(out, study_path) or {}
    stats = study_tree_stats(study_path)  # before hashing: a file written meanwhile is racy
    tree = hash_tree(study_path, known=state_snapshot(state))
    hashes = dict(getattr(study, "hashes", None) or tree)
    prev = {r.key: r for r in state.get("reports", [])}
    records = list(_records(study, study_path, clients, hashes, env_fp))

    def wanted(r: ReportRecord) -> bool:
        return only is None or (r.kind == "client" and r.client_id in only)

    def reusable(r: ReportRecord) -> bool:
        p = prev.get(r.key)
        return (p is not None and p.status == "ok" and p.fingerprint == r.fingerprint
                and p.html is not None and (out / p.html).is_file())

    to_run = [r for r in records if wanted(r) and (force or not reusable(r))]
    # longest first (by the previous build's run time; unknown ones first), so the
    # slowest report does not start last and leave the other workers idle
    to_run.sort(key=lambda r: -(getattr(prev.get(r.key), "duration", None) or float("inf")))
    return Plan(records=records, to_run=to_run, prev=prev, env=env_fp, tree=tree,
                clients=clients, stats=stats)
