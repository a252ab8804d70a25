"""Nearest-neighbour matching on a one-dimensional score, vectorised.

Definition (what the tests' slow reference implements)
------------------------------------------------------
Treated and control units carry a score (e.g. the logit of the propensity
score) and optionally a group (exact matching: only units of the same group
are paired). Pairs are ordered by the key

    (distance, rank distance, treated score, control score, treated index, control index)

where ``distance = |s_t - s_c|`` (float64) and ``rank distance`` is the
difference of the two scores' positions among the sorted distinct scores of
all units (it breaks ties of rounded float distances in favour of the nearer
neighbour).

* **without replacement** (greedy, closest pairs first): go through the pairs
  in key order and pair a treated with a control when both are still
  unmatched and the distance is within the caliper;
* **with replacement**: each treated takes the control with the smallest key
  within the caliper; a control may serve several treated.

The fast version of greedy matching never enumerates pairs. It works on
*blocks* (units of one group and arm with the same score) and repeats:
every treated block finds its nearest control block and every control block
its nearest treated block (a search in the sorted scores); blocks that are
each other's nearest are paired, zipping their units by index. Every pair of
such a mutual pair precedes, in key order, every other pair that involves
one of its units, so the greedy algorithm would pair them the same way;
removing them leaves the same problem on the remaining units. A mutual pair
beyond the caliper removes both blocks: none of their units has a partner
within it. Each round empties at least one block; the loop runs over rounds,
never over units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["match_nearest"]


def _codes(score_t, score_c, group_t, group_c):
    s = np.concatenate([score_t, score_c]).astype(np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError("matching scores must be finite numbers")
    uniq, rank = np.unique(s, return_inverse=True)
    if group_t is None:
        g = np.zeros(len(s), dtype=np.int64)
    else:
        g = _factorize(np.concatenate([np.asarray(group_t), np.asarray(group_c)]))
    key = g * (len(uniq) + 1) + rank.astype(np.int64)
    nt = len(score_t)
    return s[:nt], s[nt:], rank[:nt].astype(np.int64), rank[nt:].astype(np.int64), g[:nt], g[nt:], key[:nt], key[nt:]


def _factorize(values) -> np.ndarray:
    codes, _ = pd.factorize(pd.Series(values), use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


def _nearest(src_key, src_s, src_r, src_g, dst_key, dst_s, dst_r, dst_g):
    """For each source block, the nearest destination block (-1 when none in its group).

    Destination blocks are sorted by key (group, score rank). Nearest by
    (distance, rank distance, destination score); the candidates are the
    first destination at or above the source's key and the one just below.
    """
    n = len(src_key)
    out = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.inf)
    if not len(dst_key) or not n:
        return out, dist
    pos = np.searchsorted(dst_key, src_key, side="left")
    best_d = np.full(n, np.inf)
    best_rd = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    best_s = np.full(n, np.inf)
    for cand in (pos - 1, pos):  # lower neighbour first: it has the lower score
        ok = (cand >= 0) & (cand < len(dst_key))
        c = np.where(ok, cand, 0)
        ok &= dst_g[c] == src_g
        d = np.abs(src_s - dst_s[c])
        rd = np.abs(src_r - dst_r[c])
        better = ok & ((d < best_d) | ((d == best_d) & ((rd < best_rd) | ((rd == best_rd) & (dst_s[c] < best_s)))))
        out = np.where(better, c, out)
        best_d = np.where(better, d, best_d)
        best_rd = np.where(better, rd, best_rd)
        best_s = np.where(better, dst_s[c], best_s)
    dist[out >= 0] = best_d[out >= 0]
    return out, dist


def match_nearest(score_t, score_c, *, group_t=None, group_c=None, caliper: float | None = None,
                  replace: bool = False) -> np.ndarray:
    """Match each treated unit to its nearest control on a one-dimensional score.

    Parameters
    ----------
    score_t, score_c : array-like of float
        Scores of the treated and of the controls (e.g. logit propensity scores).
    group_t, group_c : array-like, optional
        Exact-matching groups: only units with equal group values are paired
        (e.g. the index date of a risk set).
    caliper : float, optional
        Largest allowed distance (same unit as the scores); None: no limit.
    replace : bool, default False
        Controls may be used for several treated.

    Returns
    -------
    ndarray of int64
        For each treated unit, the position of its control in ``score_c``, or
        -1 when it found none (no control in its group, all taken, or all
        beyond the caliper).

    Examples
    --------
    >>> match_nearest([0.5, 0.55], [0.1, 0.52, 0.9]).tolist()
    [1, 2]
    >>> match_nearest([0.5, 0.55], [0.1, 0.52, 0.9], caliper=0.1).tolist()
    [1, -1]
    >>> match_nearest([0.5, 0.55], [0.1, 0.52, 0.9], replace=True).tolist()
    [1, 1]
    """
    score_t = np.asarray(score_t, dtype=np.float64).ravel()
    score_c = np.asarray(score_c, dtype=np.float64).ravel()
    if (group_t is None) != (group_c is None):
        raise ValueError("give groups for both treated and controls, or for neither")
    nt, nc = len(score_t), len(score_c)
    match = np.full(nt, -1, dtype=np.int64)
    if nt == 0 or nc == 0:
        return match
    cal = np.inf if caliper is None else float(caliper)
    if cal < 0:
        raise ValueError(f"caliper must be >= 0, got {caliper}")
    st, sc, rt, rc, gt, gc, kt, kc = _codes(score_t, score_c, group_t, group_c)

    # blocks: units of one arm with the same (group, score), units sorted by index within
    ot = np.lexsort((np.arange(nt), kt))
    oc = np.lexsort((np.arange(nc), kc))
    tb_first = np.flatnonzero(np.r_[True, kt[ot][1:] != kt[ot][:-1]])
    cb_first = np.flatnonzero(np.r_[True, kc[oc][1:] != kc[oc][:-1]])
    tb_size = np.diff(np.r_[tb_first, nt])
    cb_size = np.diff(np.r_[cb_first, nc])
    tb_key, tb_s, tb_r, tb_g = kt[ot][tb_first], st[ot][tb_first], rt[ot][tb_first], gt[ot][tb_first]
    cb_key, cb_s, cb_r, cb_g = kc[oc][cb_first], sc[oc][cb_first], rc[oc][cb_first], gc[oc][cb_first]

    if replace:
        near, dist = _nearest(tb_key, tb_s, tb_r, tb_g, cb_key, cb_s, cb_r, cb_g)
        ok = (near >= 0) & (dist <= cal)
        ctrl = np.where(ok, oc[cb_first[np.maximum(near, 0)]], -1)  # lowest index of the block
        match[ot] = np.repeat(ctrl, tb_size)
        return match

    t_used = np.zeros(len(tb_first), dtype=np.int64)  # units of each block already matched
    c_used = np.zeros(len(cb_first), dtype=np.int64)
    t_alive = np.ones(len(tb_first), dtype=bool)
    c_alive = np.ones(len(cb_first), dtype=bool)
    while True:
        ti = np.flatnonzero(t_alive)
        ci = np.flatnonzero(c_alive)
        if not len(ti) or not len(ci):
            break
        nt_near, t_dist = _nearest(tb_key[ti], tb_s[ti], tb_r[ti], tb_g[ti],
                                   cb_key[ci], cb_s[ci], cb_r[ci], cb_g[ci])
        nc_near, _ = _nearest(cb_key[ci], cb_s[ci], cb_r[ci], cb_g[ci],
                              tb_key[ti], tb_s[ti], tb_r[ti], tb_g[ti])
        t_alive[ti[nt_near < 0]] = False  # no control left in the group
        c_alive[ci[nc_near < 0]] = False
        has = np.flatnonzero(nt_near >= 0)
        mutual = has[nc_near[nt_near[has]] == has]
        if not len(mutual):  # pragma: no cover - the closest remaining pair is always mutual
            break
        tbk = ti[mutual]
        cbk = ci[nt_near[mutual]]
        far = t_dist[mutual] > cal
        t_alive[tbk[far]] = False
        c_alive[cbk[far]] = False
        tbk, cbk = tbk[~far], cbk[~far]
        k = np.minimum(tb_size[tbk] - t_used[tbk], cb_size[cbk] - c_used[cbk])
        # zip the next k units of each block (by index)
        rep = np.repeat(np.arange(len(k)), k)
        within = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
        t_pos = tb_first[tbk][rep] + t_used[tbk][rep] + within
        c_pos = cb_first[cbk][rep] + c_used[cbk][rep] + within
        match[ot[t_pos]] = oc[c_pos]
        t_used[tbk] += k
        c_used[cbk] += k
        t_alive[tbk[t_used[tbk] >= tb_size[tbk]]] = False
        c_alive[cbk[c_used[cbk] >= cb_size[cbk]]] = False
    return match
