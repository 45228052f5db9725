"""Compare two built sites file by file, leaving out what differs between any two builds.

A checksum listing of every file of each site (the build's own ``.exresearch/`` left
out), each file's sha256 taken after removing what two builds of the same inputs never
share: the build time, each report's run time and the git commit (provenance footers,
index, manifest), pandas' random Styler table ids (``T_1a2b3``), papermill's timing
metadata and injected cell's random id in executed notebooks, the memory addresses in
objects' reprs (``<... Styler at 0x7f...>``), the manifest's fingerprints and extras keys (hashes of
the source and of the pages), and the workbooks' zip and document properties (a
workbook is compared by its sheets' cells: values and number formats). Prints the files
only one site has and the files whose normalised checksums differ.

Usage::

    .venv/bin/python bench/site_diff.py SITE_A SITE_B [--list A.txt B.txt]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

_STYLER_ID = re.compile(r"T_[0-9a-f]{5}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?")
_RUN_TIME = re.compile(r"\d+\.\d s\b")
_COMMIT = re.compile(r"(git commit</dt><dd>)[^<]*")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")
_DROP_KEYS = {"built", "built_at", "duration", "fingerprint", "git_commit", "extra_keys",
              "pdf_keys", "start_time", "end_time", "papermill", "execution", "executed"}


def _text(s: str) -> str:
    s = _TIME.sub("T", _STYLER_ID.sub("T_X", s))
    return _ADDRESS.sub(" at 0x>", _COMMIT.sub(r"\1C", _RUN_TIME.sub("R s", s)))


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in _DROP_KEYS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    if isinstance(obj, str):
        return _text(obj)
    return obj


def digest(path: Path) -> str:
    suffix = path.suffix
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True)
        h = hashlib.sha256()
        for ws in wb.worksheets:
            h.update(ws.title.encode())
            for row in ws.iter_rows():
                h.update(repr([(c.value, getattr(c, "number_format", None)) for c in row])
                         .encode())
        return h.hexdigest()
    data = path.read_bytes()
    if suffix in (".json", ".ipynb"):
        try:
            obj = json.loads(data)
            if suffix == ".ipynb" and isinstance(obj, dict):
                for cell in obj.get("cells", []):  # papermill's injected cell: a random id
                    cell.pop("id", None)
            data = json.dumps(_strip(obj), sort_keys=True).encode()
        except ValueError:
            pass
    elif suffix in (".html", ".csv", ".txt", ".css"):
        data = _text(data.decode("utf-8")).encode()
    return hashlib.sha256(data).hexdigest()


def listing(site: Path, only: str = "") -> dict:
    out = {}
    for p in sorted(site.rglob("*")):
        rel = p.relative_to(site).as_posix()
        if p.is_file() and not rel.startswith(".exresearch/") and rel.startswith(only):
            out[rel] = digest(p)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--list", nargs=2, type=Path, help="write each site's checksum listing")
    ap.add_argument("--only", default="", help="only the files whose path starts so")
    args = ap.parse_args(argv)
    a, b = listing(args.a, args.only), listing(args.b, args.only)
    if args.list:
        for d, path in zip((a, b), args.list, strict=True):
            path.write_text("".join(f"{v}  {k}\n" for k, v in d.items()))
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    differ = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    print(f"{len(a)} / {len(b)} files; only in A: {len(only_a)}, only in B: {len(only_b)}, "
          f"different: {len(differ)}")
    for label, items in (("only in A", only_a), ("only in B", only_b), ("different", differ)):
        for k in items[:50]:
            print(f"  {label}: {k}")
    return 1 if only_a or only_b or differ else 0


if __name__ == "__main__":
    sys.exit(main())
