"""The files of the site besides the report pages: index, manifest, share bundles."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from .. import config
from ..exceptions import BuildError
from .publish import link_or_copy
from .records import SAFE_REL, ReportRecord

__all__ = ["combined_hash", "page_provenance", "common_provenance", "write_share_bundles",
           "write_site_files", "read_headline", "inside"]

#: Versions shown in every report's provenance footer.
LIBRARIES = (
    "numpy", "pandas", "scipy", "statsmodels", "pingouin", "seaborn", "matplotlib",
    "papermill", "nbconvert", "nbclient", "ipykernel",
)


def inside(root: Path, rel: str) -> Path:
    """``root / rel``, refusing any path that would leave ``root`` (``..``, absolute)."""
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()) or target == root.resolve():
        raise BuildError(f"refusing to write {rel!r} outside the site folder {root}")
    return root / rel


def combined_hash(inputs: dict) -> str:
    """One sha256 over every ``path -> sha256`` pair of ``inputs`` (sorted by path).

    Lets a page shared with clients prove which inputs it was built from without
    naming them (the study team's ``manifest.json`` keeps the hash of every file).

    Examples
    --------
    >>> combined_hash({"b": "2", "a": "1"}) == combined_hash({"a": "1", "b": "2"})
    True
    """
    h = hashlib.sha256()
    for path in sorted(inputs):
        h.update(f"{path}\0{inputs[path]}\n".encode())
    return h.hexdigest()


def library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def git_commit() -> str:
    try:
        res = subprocess.run(
            ["git", "-C", str(config.ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else "unknown"


def exresearch_version() -> str:
    from .. import __version__

    return __version__


def common_provenance(cfg, built_at: str) -> dict:
    """The footer lines every report of one build shares."""
    return {
        "study": cfg.name,
        "seed": getattr(cfg, "seed", None),
        "exresearch version": exresearch_version(),
        "git commit": git_commit(),
        "python": sys.version.split()[0],
        "libraries": library_versions(),
        "built": built_at,
    }


def page_provenance(r: ReportRecord, study_path: Path) -> dict:
    """The footer lines specific to one report: no absolute path, no other client.

    A client report lists its own input files (``study.yml`` and its own folder); a
    study-wide report (synthesis, data quality) gives one combined hash of all inputs,
    because its file names would name every client.
    """
    params = {k: v for k, v in r.parameters.items() if k != "study_path"}
    out = {"study folder": study_path.name}
    if params:
        out["parameters"] = params
    if r.kind == "client":
        out["input files (sha256)"] = dict(r.inputs)
    else:
        out["inputs (combined sha256)"] = (
            f"{combined_hash(r.inputs)} ({len(r.inputs)} files; each listed in the study "
            "team's manifest.json)")
    return out


def write_share_bundles(staging: Path, cfg, records) -> dict:
    """``share/<client_id>/``: what may be handed to one client, self-contained.

    Holds an index page, the client's report, its CSV tables and the synthesis page
    (clients under pseudonyms unless ``publish_client_names``), laid out as on the site
    (``reports/``, ``tables/client-<id>/``) so every link works offline. Nothing else:
    no other client's report or tables, no data-quality report, no executed notebook, no
    manifest. Returns ``{client_id: "share/<id>/index.html"}`` for the bundles written.
    """
    from ..site import render_share_index

    syn = next((r for r in records if r.kind == "synthesis"), None)
    syn_ok = bool(syn is not None and syn.status == "ok" and syn.html
                  and (staging / syn.html).is_file())
    made: set = set()  # folders created so far: one mkdir each, not one per file

    def target(base: str, rel: str) -> Path:
        # a path of the site's own form (reports/<key>.html, tables/<key>/<name>) in the
        # bundle of a checked client id cannot leave ``staging``: no need for ``inside``'s
        # resolve() (three per file: 7,200 files and 150,000 lstat calls at 300 clients)
        return staging / base / rel if SAFE_REL.fullmatch(rel) else inside(staging,
                                                                           f"{base}/{rel}")

    def link(src: Path, dst: Path) -> None:
        if dst.parent not in made:
            dst.parent.mkdir(parents=True, exist_ok=True)
            made.add(dst.parent)
        try:
            os.link(src, dst)
        except OSError:
            link_or_copy(src, dst)

    shares = {}
    for r in records:
        if r.kind != "client" or r.status != "ok" or not r.html:
            continue
        if not (staging / r.html).is_file() or not re.fullmatch(config.CLIENT_ID_PATTERN,
                                                                str(r.client_id)):
            continue
        base = f"share/{r.client_id}"
        tables = [t for t in r.tables if (staging / t).is_file()]
        for rel in [r.html, *tables] + ([syn.html] if syn_ok else []):
            link(staging / rel, target(base, rel))
        page = render_share_index(
            study_name=cfg.name, client_name=r.name, report=r.html, tables=tables,
            synthesis=syn.html if syn_ok else None)
        (staging / base / "index.html").write_text(page, encoding="utf-8")  # (made above)
        shares[r.client_id] = f"{base}/index.html"
    return shares


def write_site_files(staging, study, cfg, clients, records, headline, prov,
                     shares=None) -> None:
    """``index.html`` and ``manifest.json`` of the site being assembled in ``staging``."""
    from ..site import dumps_manifest, render_index

    shares = shares or {}
    periods = list(getattr(cfg, "periods", []) or [])
    overview = {
        "name": cfg.name,
        "Clients": len(clients),
        "Periods": ", ".join(map(str, periods)),
        "Seed": getattr(cfg, "seed", ""),
        "Built": prov["built"],
    }
    reports = [asdict(r) for r in records]
    for rep in reports:
        if rep["kind"] == "client" and rep["client_id"] in shares:
            rep["share"] = shares[rep["client_id"]]
    page = render_index(study=overview, reports=reports, headline=headline, provenance={
        "exresearch version": prov["exresearch version"], "git commit": prov["git commit"],
        "built": prov["built"], "libraries": prov["libraries"],
    })
    (staging / "index.html").write_text(page, encoding="utf-8")
    manifest = {
        "study": {"name": cfg.name, "path": str(Path(study.path).resolve()),
                  "seed": getattr(cfg, "seed", None), "clients": clients},
        "built": prov["built"],
        "exresearch_version": prov["exresearch version"],
        "git_commit": prov["git commit"],
        "headline": headline,
        "share": dict(shares),
        "reports": [
            {k: r[k] for k in ("key", "kind", "client_id", "name", "status", "error",
                               "duration", "html", "notebook", "tables", "parameters",
                               "inputs", "executed", "built_at", "fingerprint")}
            for r in reports
        ],
    }
    (staging / "manifest.json").write_text(dumps_manifest(manifest), encoding="utf-8")


def read_headline(tables_dir: Path) -> list[dict]:
    """The synthesis' headline rows (``headline.csv``, else ``headline.json``)."""
    path = tables_dir / "headline.csv"
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return [{k: (v or "").lstrip("'") if k else v for k, v in r.items()}
                for r in rows if r.get("label")]
    path = tables_dir / "headline.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return []
        if isinstance(data, list):
            return [d for d in data if isinstance(d, dict) and "label" in d]
    return []
