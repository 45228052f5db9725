"""Two ways of printing a page, interleaved print by print in one browser (issue 20).

Whole runs of ``print_lanes.py`` a minute apart differ by more than a print option is
worth on a shared machine (the same 16 reports: 8.9 to 14.8 s of CPU): this script
prints each page once per way per round, in one browser, alternating which way goes
first, and takes the CPU of the whole process tree around each print: every live
descendant's ``utime + stime + cutime + cstime`` (/proc/PID/stat; ``cutime`` holds the
children its parent reaped, such as the print compositor Chromium starts per PDF) + this
process's CPU + ``RUSAGE_CHILDREN`` (this process is a subreaper, so orphans count),
``--settle`` seconds after each print included. Each way prints in a tab of its own.

Ways (``--way``, two of them):

- ``as-is``: what :func:`exresearch.deliver.render_pdfs` does (``goto``, print media,
  ``_BEFORE_PRINT`` with the page numbers' stylesheet, ``page.pdf``);
- ``template``: the page numbers printed by Chromium's header/footer template instead of
  the margin box (main before i20-pdfcss);
- ``media-first``: as-is, in a tab that emulates print media once, before its first
  ``goto``, instead of after each.

Usage::

    cd /tmp && nice -n 10 /work/main/.venv/bin/python /work/main/bench/print_interleaved.py \\
        --site SITE --only reports --pages 4 --rounds 20 --way template --way as-is

Prints a table per page kind (reports, briefs, other): CPU per print of each way (mean,
sd), their paired difference, its standard error, and in how many pairs the second way
was cheaper. The PDFs of the last round are kept in ``--out`` (``<way>-<kind>-<page>.pdf``).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import print_lanes  # noqa: E402

WAYS = ("as-is", "template", "media-first")


def tree_cpu(root: int | None = None) -> float:
    """CPU seconds of ``root`` (default this process) and every descendant, as above."""
    root = os.getpid() if root is None else root
    parent, cpu = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parent[int(name)] = int(fields[1])
        cpu[int(name)] = sum(int(x) for x in fields[11:15]) / tick
    total, todo, seen = 0.0, [root], {root}
    while todo:
        pid = todo.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in seen:
                seen.add(child)
                total += cpu[child]
                todo.append(child)
    if root == os.getpid():
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += usage.ru_utime + usage.ru_stime + time.process_time()
    return total


def summary(a: list[float], b: list[float]) -> dict:
    """Paired comparison of CPU per print: way A's ``a`` against way B's ``b``."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two equal lists of at least 2 prints, got {len(a)} and "
                         f"{len(b)}")
    diff = [y - x for x, y in zip(a, b, strict=True)]
    return {"n": len(a), "a": statistics.mean(a), "a_sd": statistics.stdev(a),
            "b": statistics.mean(b), "b_sd": statistics.stdev(b),
            "diff": statistics.mean(diff),
            "se": statistics.stdev(diff) / len(diff) ** 0.5,
            "pct": 100 * statistics.mean(diff) / statistics.mean(a),
            "cheaper": sum(d < 0 for d in diff)}


async def _run(pages: list[Path], ways: list[str], rounds: int, out: Path,
               settle: float) -> dict:
    from playwright.async_api import async_playwright

    from exresearch import deliver

    cpu: dict = {w: {p: [] for p in pages} for w in ways}
    async with async_playwright() as p:
        browser = await p.chromium.launch(  # deliver._print_all's switches
            executable_path=deliver.find_chromium(),
            args=["--no-sandbox", "--disable-gpu", "--in-process-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"])
        context = await browser.new_context(bypass_csp=True)
        tabs = {w: await context.new_page() for w in ways}
        for w in ways:
            if w == "media-first":
                await tabs[w].emulate_media(media="print")

        async def one(way, html):
            tab = tabs[way]
            await tab.goto(html.resolve().as_uri(), wait_until="load")
            if way != "media-first":
                await tab.emulate_media(media="print")
            pdf = out / f"{way}-{html.parent.name}-{html.stem}.pdf"
            if way == "template":  # what deliver does with a Chromium before 131
                await tab.evaluate(deliver._BEFORE_PRINT, "")
                await tab.pdf(path=str(pdf), **deliver._PDF_OPTIONS,
                              **deliver._page_numbers("130")[1])
            else:
                await tab.evaluate(deliver._BEFORE_PRINT, deliver._PAGE_NUMBERS_CSS)
                await tab.pdf(path=str(pdf), **deliver._PDF_OPTIONS)

        for w in ways:  # warm up: each tab's first print
            await one(w, pages[0])
        for r in range(rounds):
            for html in pages:
                for w in (ways if r % 2 == 0 else ways[::-1]):
                    c0 = tree_cpu()
                    await one(w, html)
                    await asyncio.sleep(settle)  # the print compositor ends, is reaped
                    cpu[w][html].append(tree_cpu() - c0)
        await browser.close()
    return cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", required=True, type=Path)
    ap.add_argument("--pages", type=int, default=4)
    ap.add_argument("--only", choices=["reports", "briefs"])
    ap.add_argument("--include", action="append", default=[])
    ap.add_argument("--way", action="append", choices=WAYS, default=[])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--settle", type=float, default=0.3)
    ap.add_argument("--out", type=Path, default=Path("/tmp/print-interleaved"))
    args = ap.parse_args(argv)
    ways = args.way or ["template", "as-is"]
    if len(ways) != 2:
        ap.error(f"--way twice (two ways to compare), got {ways!r}")
    pages = [Path(p) for p in print_lanes._site_pages(args.site, n=args.pages,
                                                      only=args.only, include=args.include)]
    args.out.mkdir(parents=True, exist_ok=True)
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    load0 = os.getloadavg()[0]
    cpu = asyncio.run(_run(pages, ways, args.rounds, args.out, args.settle))
    print(f"load 1 min {load0:.2f} -> {os.getloadavg()[0]:.2f}; {args.rounds} rounds; "
          f"CPU s per print, {ways[1]} - {ways[0]}")
    print(f"| pages | pairs | {ways[0]} (sd) | {ways[1]} (sd) | difference (se) | %"
          f" | {ways[1]} cheaper |\n|---|---|---|---|---|---|---|")
    kinds: dict = {}
    for html in pages:
        kind = html.parent.name if html.parent.name in ("reports", "briefs") else "other"
        a, b = kinds.setdefault(kind, ([], []))
        a.extend(cpu[ways[0]][html])
        b.extend(cpu[ways[1]][html])
    for kind, (a, b) in kinds.items():
        s = summary(a, b)
        print(f"| {kind} | {s['n']} | {s['a']:.3f} ({s['a_sd']:.3f}) | {s['b']:.3f} "
              f"({s['b_sd']:.3f}) | {s['diff']:+.4f} ({s['se']:.4f}) | {s['pct']:+.1f} | "
              f"{s['cheaper']}/{s['n']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
