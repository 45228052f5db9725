"""Moderators of the EX-outcome link that can show a result without exposing a client.

With a handful of clients per industry, a moderator table under the privacy rule (no
group of fewer than ``MIN_BENCHMARK_CONTRIBUTORS`` clients is shown) is all blanks. This
module gives moderator analyses a design that can show something:

- :func:`merge_groups` - merges industries, smallest first, until every group has at
  least the benchmark minimum of clients (the merge looks at client counts only, never
  at the correlations, so it cannot bias the test);
- :func:`meta_regression` - mixed-effects meta-regression on continuous client
  characteristics (revenue, headcount, number of units, from ``study.yml`` and the
  data) and/or a categorical one, with a permutation test (as metafor's ``permutest``)
  which keeps its level when there are few clients;
- :func:`moderator_tests` - one row per moderator with the plain-words verdict, saying
  so when there are too few clients for any test;
- :func:`moderator_error_rates` - the false-positive rate and power of that verdict,
  measured on simulated sets of clients with a known moderator effect (and none).

The mixed-effects fit is :func:`exresearch.meta._fit_rma` (metafor's ``rma.uni``,
checked against metafor in ``tests/r/psychometric.R``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import check_choice, check_seed
from ._checks import check_column_args as _check_columns
from .config import MIN_BENCHMARK_CONTRIBUTORS
from .exceptions import ParameterError
from .meta import _fit_rma, _fit_rma_batch

__all__ = ["client_characteristics", "merge_groups", "meta_regression", "moderator_tests",
           "moderator_error_rates", "MIN_CLIENTS_FOR_MODERATORS"]

#: Fewest clients for which a moderator is tested at all. The Cochrane Handbook (Deeks,
#: Higgins & Altman 2022, 10.11.5.1) advises against meta-regression with fewer than ten
#: studies per characteristic; below this the synthesis says so instead of testing.
MIN_CLIENTS_FOR_MODERATORS = 10

_COMPTOL = math.sqrt(np.finfo(float).eps)  # metafor's permutest comptol


def client_characteristics(study, *, panels, names=None, headcount="headcount",
                           min_clients=MIN_BENCHMARK_CONTRIBUTORS) -> pd.DataFrame:
    """Client-level characteristics to test as moderators, one row per client.

    Parameters
    ----------
    study : exresearch.study.Study
    panels : dict
        client id -> unit panel (:func:`exresearch.report.client_panel`).
    names : dict, optional
        client id -> shown name (the ``client`` column); default the ids.
    headcount : str, default "headcount"
        Unit-level covariate summed over units (latest period) when ``study.yml`` gives
        no client ``headcount``.
    min_clients : int, default 3
        Industries are merged to groups of at least this many clients
        (:func:`merge_groups`).

    Returns
    -------
    pandas.DataFrame
        ``client, industry_group`` (merged), ``revenue``, ``headcount`` (``study.yml``,
        else the sum of the unit covariate in the latest period, else the respondents
        of the latest period), ``units`` (units with a reported period),
        ``log_revenue``, ``log_headcount`` (natural logs: sizes are skewed). The
        original industry is not included (with pseudonyms it could single out a
        client).
    """
    cfg = study.config
    names = names or {c: c for c in panels}
    rows = []
    for c, p in panels.items():
        spec = cfg.client(c)
        hc = getattr(spec, "headcount", None)
        order = {q: i for i, q in enumerate(cfg.periods)}
        latest = p
        if len(p):
            last = max(p["period"], key=lambda q: order.get(q, -1))
            latest = p[p["period"] == last]
        if hc is None and headcount in p.columns and latest[headcount].notna().any():
            hc = float(latest[headcount].sum())
        if hc is None and len(latest):
            hc = float(latest["n_respondents"].sum())
        shown = p[~p["suppressed"].astype(bool)]
        rows.append({"client": names.get(c, c), "industry": spec.industry,
                     "revenue": spec.revenue, "headcount": hc,
                     "units": float(shown["unit_id"].nunique())})
    out = pd.DataFrame(rows)
    m = merge_groups(out, group="industry", min_clients=min_clients)
    out.insert(1, "industry_group",
               out["industry"].fillna("unknown").map(dict(zip(m["group"], m["merged"], strict=True))))
    out = out.drop(columns="industry")
    for col in ("revenue", "headcount"):
        v = pd.to_numeric(out[col], errors="coerce")
        out[f"log_{col}"] = np.log(v.where(v > 0))
    return out


def merge_groups(data, *, group="industry", min_clients=MIN_BENCHMARK_CONTRIBUTORS,
                 client=None) -> pd.DataFrame:
    """Merge small groups (industries) until each has at least ``min_clients`` clients.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client (or several rows per client with ``client`` given).
    group : str, default "industry"
        Column with each client's group; missing values count as their own group
        "unknown".
    min_clients : int, default MIN_BENCHMARK_CONTRIBUTORS (3)
        Fewest clients a group may have.
    client : str, optional
        Column identifying clients, when ``data`` has several rows per client.

    Returns
    -------
    pandas.DataFrame
        One row per original group: ``group`` (original), ``merged`` (the label of the
        group it ends up in, its members joined by " + "), ``clients`` (in the original
        group), ``merged_clients``. A single merged group (every client) means no
        between-group comparison is possible.

    Notes
    -----
    Rule (deterministic, blind to the outcomes): while the smallest group has fewer
    than ``min_clients`` clients and more than one group is left, merge the smallest
    group with the next smallest (ties broken by name).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"industry": ["a", "a", "b", "b", "c", "c", "c"]})
    >>> merge_groups(d)[["group", "merged", "merged_clients"]].values.tolist()
    [['a', 'a + b', 4], ['b', 'a + b', 4], ['c', 'c', 3]]
    """
    _check_columns(data, group=group)
    if isinstance(min_clients, bool) or not isinstance(min_clients, (int, np.integer)) \
            or min_clients < 1:
        raise ParameterError(
            f"`min_clients` must be a positive integer, but {min_clients!r} was passed")
    g = data[group].astype(object).where(data[group].notna(), "unknown").astype(str)
    if client is not None:
        _check_columns(data, client=client)
        counts = pd.DataFrame({"g": g, "c": data[client]}).drop_duplicates()["g"].value_counts()
    else:
        counts = g.value_counts()
    groups = {name: [name] for name in sorted(counts.index)}
    size = {name: int(counts[name]) for name in groups}
    while len(groups) > 1:
        order = sorted(groups, key=lambda key: (size[key], key))
        if size[order[0]] >= min_clients:
            break
        a, b = order[0], order[1]
        label = " + ".join(sorted(groups[a] + groups[b]))
        groups[label] = sorted(groups.pop(a) + groups.pop(b))
        size[label] = size.pop(a) + size.pop(b)
    rows = []
    for label, members in groups.items():
        for m in members:
            rows.append({"group": m, "merged": label, "clients": int(counts[m]),
                         "merged_clients": size[label]})
    return pd.DataFrame(rows).sort_values("group").reset_index(drop=True)


def _design(d, continuous, categorical):
    cols, names = [np.ones(len(d))], ["intercept"]
    for c in continuous:
        x = d[c].to_numpy(float)
        sd = x.std(ddof=1)
        if not np.isfinite(sd) or sd == 0:
            raise ParameterError(f"moderator {c!r} does not vary across the clients")
        cols.append((x - x.mean()) / sd)  # per SD, centred: the intercept is the mean
        names.append(c)
    if categorical is not None:
        levels = sorted(d[categorical].astype(str).unique())
        if len(levels) < 2:
            raise ParameterError(
                f"moderator {categorical!r} needs at least 2 groups, but {levels} were found")
        for lev in levels[1:]:
            cols.append((d[categorical].astype(str) == lev).to_numpy(float))
            names.append(f"{categorical}[{lev}]")
    return np.column_stack(cols), names


def _wald(yi, vi, X, method):
    fit = _fit_rma(yi, vi, X, method)
    beta, vb = fit["beta"], fit["vb"]
    se = np.sqrt(np.diag(vb))
    b1 = beta[1:]
    qm = float(b1 @ np.linalg.solve(vb[1:, 1:], b1))
    return fit, beta, se, beta / se, qm


def _batch_wald(yi, vi, Xs, method):
    """:func:`_wald` for a stack of design matrices ``Xs`` (B, k, p) at once.

    The same Fisher scoring as :func:`exresearch.meta._fit_rma`, vectorised over the
    stack by :func:`exresearch.meta._fit_rma_batch` (p x p algebra only, no k x k
    matrix), so a permutation test costs about one fit's loop. Returns ``z`` (B, p) and
    ``qm`` (B,).
    """
    fit = _fit_rma_batch(yi, vi, Xs, method)
    beta, vb = fit["beta"], fit["vb"]
    se = np.sqrt(np.diagonal(vb, axis1=1, axis2=2))
    b1 = beta[:, 1:]
    qm = np.einsum("bp,bp->b", b1, np.linalg.solve(vb[:, 1:, 1:], b1[..., None])[..., 0])
    return beta / se, qm


def _arrangements(counts):
    """Every distinct arrangement of a multiset given as counts per group (recursive)."""
    k = int(sum(counts))
    out, prefix, left = [], [], list(counts)

    def place():
        if len(prefix) == k:
            out.append(list(prefix))
            return
        for g, c in enumerate(left):
            if c:
                left[g] -= 1
                prefix.append(g)
                place()
                prefix.pop()
                left[g] += 1

    place()
    return np.array(out, dtype=int)


def _permutations(k, X, iterations, rng):
    """Row orders of X: every distinct one if there are no more than ``iterations``.

    Rows with equal moderator values are interchangeable, so an exact test enumerates
    the distinct arrangements of the rows' value groups (as metafor's ``.genuperms``)
    rather than all k! orders.
    """
    _, inv = np.unique(X[:, 1:], axis=0, return_inverse=True)
    inv = np.asarray(inv).ravel()
    ties = np.bincount(inv)
    n_unique = math.factorial(k) // math.prod(math.factorial(int(t)) for t in ties)
    if n_unique <= iterations:
        arr = _arrangements(ties)                 # (n_unique, k) group of each position
        first = np.array([np.flatnonzero(inv == g)[0] for g in range(len(ties))])
        return first[arr], True                   # a row of the right group per position
    perms = [np.arange(k)] + [rng.permutation(k) for _ in range(iterations - 1)]
    return np.array(perms), False


def meta_regression(data, *, r="r", n="n", continuous=(), categorical=None, method="REML",
                    permutations=1000, seed=None) -> pd.DataFrame:
    """Mixed-effects meta-regression of Fisher-z correlations, with a permutation test.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client: correlation, sample size and the moderators.
    r, n : str
        Columns of correlations and sample sizes (units).
    continuous : sequence of str
        Continuous client characteristics (e.g. ``log_revenue``, ``units``); each is
        standardised over the clients, so its slope is per SD of the characteristic.
    categorical : str, optional
        A categorical moderator (e.g. the merged industry group); the first level in
        sorted order is the reference.
    method : {"REML", "DL", "FE"}
        Estimator of the residual tau^2.
    permutations : int, default 1000
        Permutations of the moderator rows for the permutation p-values; the test is
        exact (every unique permutation) when there are no more than this many,
        otherwise random (the first being the observed order). 0 skips it.
    seed : int, optional
        Seed of the random permutations.

    Returns
    -------
    pandas.DataFrame
        One row per coefficient: ``term, estimate, se, z, p_val, p_perm, ci_low,
        ci_high`` (Fisher z per SD, or difference from the reference group), then the
        model's ``k, tau2, tau2_null`` (intercept-only), ``r2`` (share of tau^2
        accounted for, as metafor's R^2), ``qm, qm_df, qm_p, qm_p_perm, qe, qe_p,
        n_perm, exact`` repeated on every row.

    Notes
    -----
    As metafor's ``rma(measure="ZCOR", ri, ni, mods = ~ scale(x1) + ..., method=...)``
    followed by ``permutest(res, exact=...)``: the permutation p of a coefficient is the
    share of permutations with :math:`|z^*| \\ge |z| - \\epsilon`, of the omnibus test
    the share with :math:`Q_M^* \\ge Q_M - \\epsilon` (:math:`\\epsilon = 1.5\\times
    10^{-8}`, metafor's ``comptol``). With few clients the Wald test of a moderator
    rejects too often (Higgins & Thompson 2004); the permutation test keeps its level.

    References
    ----------
    .. [1] Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
       Journal of Statistical Software, 36(3), 1-48.
    .. [2] Higgins, J. P. T., & Thompson, S. G. (2004). Controlling the risk of spurious
       findings from meta-regression. Statistics in Medicine, 23, 1663-1682.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"r": [0.10, 0.15, 0.22, 0.28, 0.35, 0.41],
    ...                   "n": [40, 60, 50, 45, 70, 55],
    ...                   "units": [40, 60, 50, 45, 70, 55]})
    >>> res = meta_regression(d, continuous=["units"], permutations=1000, seed=1)
    >>> res[["term", "n_perm", "exact"]].values.tolist()
    [['intercept', 720, True], ['units', 720, True]]
    """
    check_choice("method", method, ["REML", "DL", "FE"])
    continuous = [continuous] if isinstance(continuous, str) else list(continuous)
    if not continuous and categorical is None:
        raise ParameterError("give at least one moderator in `continuous` or `categorical`")
    cols = {"r": r, "n": n, **{f"continuous[{i}]": c for i, c in enumerate(continuous)}}
    if categorical is not None:
        cols["categorical"] = categorical
    _check_columns(data, **cols)
    if isinstance(permutations, bool) or not isinstance(permutations, (int, np.integer)) \
            or permutations < 0:
        raise ParameterError(
            f"`permutations` must be a non-negative integer, but {permutations!r} was passed")
    need = [r, n, *continuous] + ([categorical] if categorical else [])
    d = data.copy()
    for c in [r, n, *continuous]:
        d[c] = pd.to_numeric(d[c], errors="coerce")
    keep = d[need].notna().all(axis=1)
    if (~keep).any():
        warnings.warn(f"{int((~keep).sum())} client(s) with a missing value were left out of "
                      "the meta-regression", stacklevel=2)
    d = d.loc[keep].reset_index(drop=True)
    if (d[r].abs() >= 1).any() or (d[n] <= 3).any():
        raise ParameterError("every `r` must lie in (-1, 1) and every `n` be above 3, but "
                             f"r = {d[r].tolist()[:5]}, n = {d[n].tolist()[:5]} were passed")
    X, names = _design(d, continuous, categorical)
    k, p = X.shape
    if k <= p:
        raise ParameterError(
            f"meta-regression needs more clients than coefficients ({p}), but k = {k}")
    yi = np.arctanh(d[r].to_numpy(float))
    vi = 1.0 / (d[n].to_numpy(float) - 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit, beta, se, z, qm = _wald(yi, vi, X, method)
        null = _fit_rma(yi, vi, np.ones((k, 1)), method)
    tau2_null = float(null["tau2"])
    r2 = (max(0.0, (tau2_null - fit["tau2"]) / tau2_null) if tau2_null > 0 else np.nan)
    n_perm, exact = 0, False
    p_perm = np.full(p, np.nan)
    qm_p_perm = np.nan
    if permutations:
        rng = np.random.default_rng(check_seed(seed))
        perms, exact = _permutations(k, X, permutations, rng)
        Xs = X[:, 1:][perms]                                   # permuted moderator rows
        Xs = np.concatenate([np.ones((len(perms), k, 1)), Xs], axis=2)
        with np.errstate(all="ignore"):
            zs, qms = _batch_wald(yi, vi, Xs, method)
        ok = np.isfinite(qms)
        zs, qms = zs[ok], qms[ok]
        n_perm = len(perms)
        p_perm = np.mean(np.abs(zs) >= np.abs(z) - _COMPTOL, axis=0)
        qm_p_perm = float(np.mean(qms >= qm - _COMPTOL))
    rows = []
    for j, term in enumerate(names):
        rows.append({
            "term": term, "estimate": beta[j], "se": se[j], "z": z[j],
            "p_val": float(2 * stats.norm.sf(abs(z[j]))), "p_perm": p_perm[j],
            "ci_low": beta[j] - 1.959963984540054 * se[j],
            "ci_high": beta[j] + 1.959963984540054 * se[j],
            "k": k, "tau2": float(fit["tau2"]), "tau2_null": tau2_null, "r2": r2,
            "qm": qm, "qm_df": p - 1, "qm_p": float(stats.chi2.sf(qm, p - 1)),
            "qm_p_perm": qm_p_perm, "qe": float(fit["qe"]), "qe_p": float(fit["qe_p"]),
            "n_perm": n_perm, "exact": bool(exact),
        })
    return pd.DataFrame(rows)


def moderator_tests(data, *, r="r", n="n", continuous=(), categorical=None,
                    method="REML", permutations=1000, seed=None, alpha=0.05,
                    min_clients=MIN_CLIENTS_FOR_MODERATORS) -> pd.DataFrame:
    """Test each moderator on its own and say in plain words what can be concluded.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per client.
    r, n, method, permutations, seed
        As :func:`meta_regression`.
    continuous : sequence of str
        Continuous moderators, each tested in its own model.
    categorical : str, optional
        A categorical moderator (already merged to groups of at least the benchmark
        minimum of clients, :func:`merge_groups`).
    alpha : float, default 0.05
        Level of the permutation test.
    min_clients : int, default MIN_CLIENTS_FOR_MODERATORS (10)
        Fewest clients with a correlation for any test; below it no test is run.

    Returns
    -------
    pandas.DataFrame
        One row per moderator: ``moderator, kind`` ("continuous"/"categorical"), ``k``,
        ``groups`` (levels, categorical only), ``estimate, ci_low, ci_high`` (slope
        per SD on Fisher's z; NaN for categorical), ``qm, qm_df, qm_p``, ``p_perm``
        (permutation p of the omnibus test), ``r2``, ``tested`` (bool), ``verdict``
        (a sentence).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"r": [0.1, 0.2, 0.3, 0.2], "n": [40, 50, 60, 45],
    ...                   "units": [40, 50, 60, 45]})
    >>> moderator_tests(d, continuous=["units"])["verdict"].iloc[0]
    'Not tested: 4 clients, and a moderator test needs at least 10.'
    """
    continuous = [continuous] if isinstance(continuous, str) else list(continuous)
    rows = []
    specs = [(c, "continuous") for c in continuous]
    if categorical is not None:
        specs.append((categorical, "categorical"))
    for name, kind in specs:
        _check_columns(data, moderator=name)
        d = data.dropna(subset=[r, n, name])
        k = len(d)
        groups = int(d[name].nunique()) if kind == "categorical" else np.nan
        row = {"moderator": name, "kind": kind, "k": k, "groups": groups,
               "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "qm": np.nan,
               "qm_df": np.nan, "qm_p": np.nan, "p_perm": np.nan, "r2": np.nan,
               "tested": False}
        if k < min_clients:
            row["verdict"] = (f"Not tested: {k} clients, and a moderator test needs at "
                              f"least {min_clients}.")
        elif kind == "categorical" and groups < 2:
            row["verdict"] = ("Not tested: after merging small groups every client is in "
                              "one group.")
        elif kind == "continuous" and not d[name].astype(float).std() > 0:
            row["verdict"] = "Not tested: it does not vary across clients."
        else:
            kw = {"continuous": [name]} if kind == "continuous" else {"categorical": name}
            res = meta_regression(d, r=r, n=n, method=method, permutations=permutations,
                                  seed=seed, **kw)
            first = res.iloc[1]
            row.update({"qm": first["qm"], "qm_df": first["qm_df"], "qm_p": first["qm_p"],
                        "p_perm": first["qm_p_perm"], "r2": first["r2"], "tested": True})
            if kind == "continuous":
                row.update({"estimate": first["estimate"], "ci_low": first["ci_low"],
                            "ci_high": first["ci_high"]})
            p = first["qm_p_perm"] if permutations else first["qm_p"]
            if p < alpha:
                row["verdict"] = (f"The link differs with {name} (permutation p = {p:.3f}); "
                                  "an association between clients, not a cause.")
            else:
                row["verdict"] = (f"No clear difference with {name} (permutation p = "
                                  f"{p:.3f}); with {k} clients only a large moderator "
                                  "effect could be detected.")
        rows.append(row)
    cols = ["moderator", "kind", "k", "groups", "estimate", "ci_low", "ci_high", "qm",
            "qm_df", "qm_p", "p_perm", "r2", "tested", "verdict"]
    return pd.DataFrame(rows, columns=cols)


def moderator_error_rates(*, n_clients, n_units, r=0.3, slope=0.0, tau=0.05,
                          n_sims=200, permutations=200, alpha=0.05, method="DL",
                          seed=None) -> pd.DataFrame:
    """How often the moderator verdict says "differs", on simulated clients.

    Parameters
    ----------
    n_clients, n_units : int
        Clients and units per client.
    r : float, default 0.3
        Mean true correlation.
    slope : float or sequence of float, default 0.0
        True change of Fisher z per SD of the client characteristic (0: the null world).
    tau : float, default 0.05
        SD of the other, unexplained differences between clients (Fisher z).
    n_sims : int, default 200
        Simulated studies per slope.
    permutations : int, default 200
    alpha : float, default 0.05
    method : {"DL", "REML", "FE"}, default "DL"
    seed : int, optional

    Returns
    -------
    pandas.DataFrame
        One row per slope: ``slope, n_clients, n_units, n_sims, rate_wald, rate_perm``
        (share of studies where the Wald / permutation test rejects: the false-positive
        rate when ``slope`` is 0, the power otherwise), ``mc_se`` (Monte Carlo SE of
        ``rate_perm``).

    Notes
    -----
    Each simulated client has a characteristic :math:`x_i \\sim N(0,1)`, a true
    :math:`z_i = \\operatorname{artanh}(r) + \\text{slope}\\,x_i + u_i`,
    :math:`u_i \\sim N(0, \\tau^2)`, and an observed correlation over ``n_units``
    bivariate-normal units.

    Examples
    --------
    >>> res = moderator_error_rates(n_clients=10, n_units=30, slope=[0.0], n_sims=20,
    ...                             permutations=50, seed=1)
    >>> res[["slope", "n_sims"]].values.tolist()
    [[0.0, 20.0]]
    """
    rng = np.random.default_rng(check_seed(seed))
    slopes = np.atleast_1d(np.asarray(slope, dtype=float))
    rows = []
    for s in slopes:
        hits_w = hits_p = 0
        for _ in range(int(n_sims)):
            x = rng.standard_normal(n_clients)
            zt = math.atanh(r) + s * x + tau * rng.standard_normal(n_clients)
            rt = np.tanh(zt)
            ro = np.empty(n_clients)
            for i in range(n_clients):
                a = rng.standard_normal(n_units)
                b = rt[i] * a + math.sqrt(1 - rt[i] ** 2) * rng.standard_normal(n_units)
                ro[i] = np.corrcoef(a, b)[0, 1]
            d = pd.DataFrame({"r": ro, "n": float(n_units), "x": x})
            res = meta_regression(d, continuous=["x"], method=method,
                                  permutations=permutations,
                                  seed=int(rng.integers(2**31)))
            hits_w += bool(res["qm_p"].iloc[0] < alpha)
            hits_p += bool(res["qm_p_perm"].iloc[0] < alpha)
        rate = hits_p / n_sims
        rows.append({"slope": float(s), "n_clients": n_clients, "n_units": n_units,
                     "n_sims": float(n_sims), "rate_wald": hits_w / n_sims,
                     "rate_perm": rate, "mc_se": math.sqrt(rate * (1 - rate) / n_sims)})
    return pd.DataFrame(rows)
