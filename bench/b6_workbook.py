"""B6, the workbooks: ``deliver.write_workbook`` of one checkout against another.

Times :func:`exresearch.deliver.write_workbook` alone (``time.process_time`` around the
call; the CSVs are read before) on the tables of a built site, as the build passes them
(``deliver._read_tables`` of the report's CSVs, the build's title and source line), in a
fresh process importing exresearch from each checkout (``PYTHONPATH``), the checkouts in
turn (before, after, before, after, ...) so that they share the machine's conditions; the
load average is recorded with each run.

``--compare`` writes every workbook of the site with each checkout and compares them as
openpyxl reads them back: the sheet names; per cell the value, type, number format,
font (bold, size, underline, colour, name), fill, alignment, named style and link; the
frozen panes and each column's width. It prints each kind of difference with its count
and two examples. ``--bytes`` compares them byte for byte instead, XlsxWriter's clock
fixed at one time in both (it stamps docProps/core.xml): every member of each .xlsx (a
zip: names, order, dates, compression, content; core.xml without its time), and how many
files are identical whole.

Usage::

    nice -n 10 .venv/bin/python bench/b6_workbook.py --site /tmp/f300/site \\
        --code before=/tmp/before --code after=. --keys synthesis client-client-001 \\
        --repeat 5
    nice -n 10 .venv/bin/python bench/b6_workbook.py --site /tmp/f300/site \\
        --code before=/tmp/before --code after=. --compare --scratch /tmp/wb
    nice -n 10 .venv/bin/python bench/b6_workbook.py --site /tmp/f300/site \\
        --code before=/tmp/before --code after=. --bytes --scratch /tmp/wb
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import VENV_BIN  # noqa: E402

SOURCE = ("Every table of the report, at full precision (the Columns sheet says what each "
          "column means).")


def _freeze_xlsxwriter_clock() -> None:
    """XlsxWriter stamps docProps/core.xml with the time of writing: a fixed time instead,
    so that two checkouts' workbooks can be compared as whole files (``--bytes``)."""
    import datetime

    import xlsxwriter.core

    class Fixed(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz)

    xlsxwriter.core.datetime = Fixed


def worker(site: Path, out: Path, keys: list) -> dict:
    """In a process importing the checkout's exresearch: CPU and wall time per workbook."""
    if os.environ.get("B6_WORKBOOK_FIXED_CLOCK"):
        _freeze_xlsxwriter_clock()
    from exresearch import deliver

    manifest = json.loads((site / "manifest.json").read_text(encoding="utf-8"))
    name = manifest["study"]["name"]
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    for rep in manifest["reports"]:
        if rep["status"] != "ok" or (keys and rep["key"] not in keys):
            continue
        tables = deliver._read_tables(site, rep["tables"])
        cpu, wall = time.process_time(), time.perf_counter()
        deliver.write_workbook(tables, out / f"{rep['key']}.xlsx",
                               title=f"{name}: {rep['name']}", source=SOURCE)
        times[rep["key"]] = (time.process_time() - cpu, time.perf_counter() - wall,
                             sum(df.size for df in tables.values()))
    return times


def _run(code: Path, site: Path, out: Path, keys: list, *, fixed_clock: bool = False) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code))
    if fixed_clock:
        env["B6_WORKBOOK_FIXED_CLOCK"] = "1"
    res = subprocess.run([str(VENV_BIN / "python"), __file__, "--worker", "--site", str(site),
                          "--scratch", str(out), "--keys", *keys], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(res.stdout.splitlines()[-1])


def _color(c):
    if c is None:
        return None
    return (c.type, c.rgb if c.type == "rgb" else c.theme if c.type == "theme" else c.indexed)


def read(path: Path) -> dict:
    """A workbook as openpyxl reads it (see the module's docstring)."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    wb = openpyxl.load_workbook(path)
    out = {"sheets": wb.sheetnames}
    for ws in wb.worksheets:
        cells = {}
        for row in ws.iter_rows():
            for c in row:
                if c.value is None and not c.has_style:
                    continue
                cells[c.coordinate] = {
                    "value": c.value, "type": c.data_type, "number format": c.number_format,
                    "bold": c.font.b, "size": c.font.sz, "underline": c.font.u,
                    "font colour": _color(c.font.color), "font": c.font.name,
                    "fill": c.fill.fill_type, "fill colour": _color(c.fill.fgColor),
                    "wrap": c.alignment.wrap_text, "vertical": c.alignment.vertical,
                    "style": c.style,
                    "link": (c.hyperlink.location, c.hyperlink.ref) if c.hyperlink else None}
        widths = {}
        for d in ws.column_dimensions.values():
            for j in range(d.min or 1, (d.max or d.min or 1) + 1):
                widths[get_column_letter(j)] = d.width
        out[ws.title] = (cells, ws.freeze_panes, widths)
    return out


def compare(a_path: Path, b_path: Path, diffs: dict) -> None:
    a, b = read(a_path), read(b_path)
    if a["sheets"] != b["sheets"]:
        diffs["sheet names"].append((a_path.name, a["sheets"], b["sheets"]))
        return
    for sheet in a["sheets"]:
        (ca, fa, wa), (cb, fb, wb) = a[sheet], b[sheet]
        if fa != fb:
            diffs["frozen panes"].append((a_path.name, sheet, fa, fb))
        if wa != wb:
            diffs["widths"].append((a_path.name, sheet, wa, wb))
        for ref in sorted(set(ca) | set(cb)):
            if ref not in ca or ref not in cb:
                diffs["cell written in one only"].append((a_path.name, sheet, ref))
                continue
            for k, x in ca[ref].items():
                y = cb[ref][k]
                if x != y:
                    what = k if k in ("value", "link") else f"{k}: {x!r} -> {y!r}"
                    diffs[what].append((a_path.name, sheet, ref, x, y))


def members(path: Path) -> list:
    """Each member of an .xlsx: name, date, compression, bytes (core.xml's times left out)."""
    import re
    import zipfile

    with zipfile.ZipFile(path) as z:
        out = []
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"<dcterms:(created|modified)[^<]*<", b"", data)
            out.append((info.filename, info.date_time, info.compress_type, data))
    return out


def compare_bytes(a: Path, b: Path) -> None:
    pairs = sorted(a.glob("*.xlsx"))
    differ, whole = [], 0
    for path in pairs:
        ma, mb = members(path), members(b / path.name)
        if ma != mb:
            names = (["(other members)"] if len(ma) != len(mb)
                     else [x[0] for x, y in zip(ma, mb, strict=True) if x != y])
            differ.append((path.name, names))
        whole += path.read_bytes() == (b / path.name).read_bytes()
    print(f"{len(pairs)} workbooks ({a.name} -> {b.name}): {len(pairs) - len(differ)} with every "
          f"member identical, {len(differ)} differ{', e.g. ' + str(differ[:3]) if differ else ''}; "
          f"{whole} identical files (XlsxWriter's clock fixed in both)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--site", type=Path, required=True)
    ap.add_argument("--code", action="append", default=[], help="NAME=DIR (repeatable)")
    ap.add_argument("--keys", nargs="*", default=[], help="report keys (default: all)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/b6_workbook"))
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--bytes", action="store_true", help="compare member by member")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.site, args.scratch, args.keys)))
        return
    codes = [(c.split("=", 1)[0], Path(c.split("=", 1)[1]).resolve()) for c in args.code]
    if args.compare or args.bytes:
        outs = {}
        for name, code in codes:
            outs[name] = args.scratch / name
            _run(code, args.site, outs[name], args.keys, fixed_clock=args.bytes)
        (first, a), (second, b) = list(outs.items())[:2]
        if args.bytes:
            compare_bytes(a, b)
            return
        diffs = collections.defaultdict(list)
        pairs = sorted(a.glob("*.xlsx"))
        for path in pairs:
            compare(path, b / path.name, diffs)
        print(f"{len(pairs)} workbooks, {first} -> {second}")
        for k, v in sorted(diffs.items()):
            print(f"- {k}: {len(v)} cells, e.g. {v[:2]}")
        print("no difference" if not diffs else "")
        return
    # without --keys: every workbook of the site, their sums
    heads = [f"{k} CPU s | {k} wall s" for k in args.keys] or [
        "workbooks | cells | CPU s, sum | wall s, sum"]
    print("| run | code | load avg 1/5/15 | " + " | ".join(heads) + " |")
    print("|---|---|---|" + "---|" * sum(h.count("|") + 1 for h in heads))
    for i in range(args.repeat):
        for name, code in codes:
            load = "/".join(f"{x:.1f}" for x in os.getloadavg())
            t = _run(code, args.site, args.scratch / name, args.keys)
            cols = [f"{t[k][0]:.3f} | {t[k][1]:.3f}" for k in args.keys] or [
                f"{len(t)} | {sum(v[2] for v in t.values())} | "
                f"{sum(v[0] for v in t.values()):.2f} | {sum(v[1] for v in t.values()):.2f}"]
            print(f"| {i + 1} | {name} | {load} | " + " | ".join(cols) + " |", flush=True)


if __name__ == "__main__":
    main()
