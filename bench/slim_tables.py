"""The report pages' Styler-table pass (``site._slim_tables``) against the substring pass
it replaced (kept in tests/test_site.py as the reference), on a large gradient table like
the data-quality report's at 300 clients; CPU time, alternating, and the same page.

    .venv/bin/python bench/slim_tables.py [--rows 1500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main(argv=None) -> int:
    import numpy as np
    import pandas as pd
    from bs4 import BeautifulSoup
    from test_site import _slim_tables_by_substring

    from exresearch import site

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1500)
    args = p.parse_args(argv)
    df = pd.DataFrame(np.random.default_rng(1).random((args.rows, 8)))
    html = df.style.background_gradient().to_html()
    print(f"{args.rows} x 8 gradient table, {len(html):,} bytes of HTML")
    pages = {}
    for label, fn in (("substring", _slim_tables_by_substring),
                      ("bisect", site._slim_tables)) * 2:
        soup = BeautifulSoup(html, "html.parser")
        cpu = time.process_time()
        fn(soup, soup)
        cpu = time.process_time() - cpu
        pages[label] = str(soup)
        print(f"{label:9s} {cpu:6.2f} s CPU", flush=True)
    same = pages["substring"] == pages["bisect"]
    print("same page:", same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
