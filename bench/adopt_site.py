"""Make a copy of a built site current for this checkout's code (benchmarks only).

A build runs every report again when the exresearch source changed (each report's
fingerprint holds the source's hash), and the result cache's keys hold the source of
the modules that compute each entry. To time a one-client-changed rebuild of changed
code at 300 clients without a full build (15 minutes or more) per code version, this
script, run with the checkout to measure (``PYTHONPATH=CHECKOUT``):

1. copies ``SITE`` (built by another checkout from ``STUDY``) to ``NEW`` (``cp -a``);
2. rewrites ``NEW``'s build state: every report's fingerprint becomes the one this
   checkout computes for the same inputs and parameters (``plan._records``' formula),
   so the next build of ``NEW`` runs only what the study's changes make stale;
3. rewrites the manifest's ``extra_keys`` and ``pdf_keys`` as this checkout computes them;
4. fills the result cache ``CACHE`` (the one the build of ``NEW`` will get with
   ``--cache CACHE``) as a build of this checkout would: the validation of every file,
   every client's panel, synthesis and data-quality parts, computed by this checkout's
   library calls (entries already there are read, not computed).

Valid only for code changes that leave every report's output the same, which is what
such a before/after comparison checks anyway (compare the rebuilt sites' files).

Usage::

    PYTHONPATH=$PWD .venv/bin/python bench/adopt_site.py --study STUDY --site SITE \\
        --new NEW --cache CACHE [--n-boot 500]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path


def adopt_state(new: Path, study: Path) -> int:
    """Rewrite ``new``'s state with this checkout's fingerprints; return the reports."""
    from exresearch import config
    from exresearch.build.plan import STUDY_PLACEHOLDER, digest, env_fingerprint
    from exresearch.build.records import NOTEBOOKS, STATE_FILE

    path = new / STATE_FILE
    state = json.loads(path.read_text())
    env = env_fingerprint(config.notebooks_dir())
    for r in state["reports"]:
        params = dict(r["parameters"])
        if params.get("study_path") == STUDY_PLACEHOLDER:
            params["study_path"] = str(study)
        r["fingerprint"] = digest({
            "kind": r["kind"], "notebook": env["notebooks"][NOTEBOOKS[r["kind"]]],
            "parameters": params, "inputs": r["inputs"], "source": env["source"],
            "lock": env["lock"], "python": env["python"]})
    state["env"] = env
    path.write_text(json.dumps(state, indent=1, sort_keys=True))
    return len(state["reports"])


def adopt_extras(new: Path, cfg) -> int:
    """The manifest's ``extra_keys`` as this checkout's ``deliver`` computes them (they
    hold ``deliver.py``'s source), so that unchanged reports' workbooks stay reused."""
    from exresearch import deliver
    from exresearch.site import dumps_manifest

    path = new / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    keys = manifest.get("extra_keys") or {}
    name, labels = str(getattr(cfg, "name", "") or "Study"), deliver._labels(cfg)
    for rep in manifest["reports"]:
        if rep["key"] in keys:
            keys[rep["key"]] = deliver._extras_key(new, rep, name, labels)
    manifest["extra_keys"] = keys
    # the PDFs' keys too (they hold deliver.py's source): a code change that prints the
    # same pages must not reprint all 600 PDFs of a 300-client site
    pdf_keys, extras = manifest.get("pdf_keys") or {}, manifest.get("extras") or {}
    for rep in manifest["reports"]:
        ex = extras.get(rep["key"]) or {}
        for dst, src in ((ex.get("pdf"), rep.get("html")),
                         (ex.get("brief_pdf"), ex.get("brief"))):
            if dst in pdf_keys and src and (new / src).is_file():
                pdf_keys[dst] = deliver._print_key(new / src)
    manifest["pdf_keys"] = pdf_keys
    path.write_text(dumps_manifest(manifest), encoding="utf-8")
    return len(keys)


def fill_cache(study_path: Path, cache: Path, n_boot: int) -> dict:
    """The result cache entries a build of this checkout reads, computed where missing."""
    from exresearch import report
    from exresearch.build.cache import ResultCache
    from exresearch.study import load_study

    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.process_time()
    study = load_study(study_path, cache=ResultCache(cache, "validation"))
    roles = report.measure_roles(study.config)
    store = ResultCache(cache, "summaries")
    panels = report.client_panels(study, roles=roles, cache=store)
    report.synthesis_inputs(study, roles=roles, n_boot=n_boot, seed=study.config.seed,
                            panels=panels, cache=store)
    report.quality_inputs(study, roles=roles, panels=panels, cache=store)
    return {"hits": store.hits, "misses": store.misses, "cpu": time.process_time() - t0,
            "config": study.config}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", type=Path, required=True)
    ap.add_argument("--site", type=Path, required=True)
    ap.add_argument("--new", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--n-boot", type=int, default=500, help="the synthesis' n_boot (its "
                    "notebook's default)")
    args = ap.parse_args()
    study = args.study.resolve()
    if args.new.exists():
        shutil.rmtree(args.new)
    subprocess.run(["cp", "-a", str(args.site), str(args.new)], check=True)
    n = adopt_state(args.new.resolve(), study)
    got = fill_cache(study, args.cache.resolve(), args.n_boot)
    adopt_extras(args.new.resolve(), got["config"])
    print(f"{args.new}: {n} reports adopted; cache {args.cache}: {got['hits']} entries read, "
          f"{got['misses']} computed ({got['cpu']:.1f} s CPU)")


if __name__ == "__main__":
    main()
