# mypy: disable-error-code="no-untyped-def,call-arg"
# (numba kernels are typed by numba at compile time; the typed API is the Python wrapper)
"""Numba kernel of the slot allocator: exact successive shortest paths on grouped compartments.

Private: call it through ``routing.allocator``.  ``_alloc_reference.py`` is the same algorithm in
plain Python, statement for statement, so that tests can compare the two on random batches.

Graph (costs in integer millilitres): group g (parcels with the same destination and the same set
of fitting compartment models) -> type node t (free compartments of one model at one site), cost
``model litres + 50 L/km``; t -> sink with capacity = free count; g -> sink ("unplaced"), cost
``10000 L + parcel litres`` (the objective shifted by each parcel's own volume, so that one group
holds parcels of different volumes; the parallel unplaced arcs are used cheapest first, i.e. the
smallest parcels of a group are left out first).  Groups are activated one at a time; each unit of
supply follows a Dijkstra shortest path on reduced costs (Johnson potentials), stopped as soon as
the sink is settled.  Potentials keep every residual arc's reduced cost >= 0, so there is never a
negative cycle and the final flow is a minimum-cost flow: the exact optimum of the grouped problem.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INF = np.int64(1) << np.int64(62)


DEG = np.pi / 180.0
EARTH_RADIUS_M = 6_371_008.8


@njit(cache=True)
def _haversine(lat1, lon1, lat2, lon2):
    p1 = lat1 * DEG
    p2 = lat2 * DEG
    s1 = np.sin((p2 - p1) / 2.0)
    s2 = np.sin((lon2 - lon1) * DEG / 2.0)
    a = s1 * s1 + np.cos(p1) * np.cos(p2) * s2 * s2
    if a > 1.0:
        a = 1.0
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


@njit(cache=True)
def build_tables(
    comp_dims,
    comp_max_kg,
    comp_zone,
    comp_free,
    comp_site,
    comp_last_used,
    site_lat,
    site_lon,
    radius_m,
    cost_per_m,
):
    """Compartment models, (site, model) type nodes in LRU order, sites within the radius.

    Returns ``(models, model_vol, node_site, node_model, node_cap, site_node_ptr,
    node_comp_ptr, node_comps, nbr_ptr, nbr_idx, nbr_cost)``; models are numbered in order of
    first appearance, nodes by (site, model), neighbours by site index.
    """
    nc = comp_dims.shape[0]
    ns = site_lat.shape[0]
    models = np.empty((max(nc, 1), 5))
    n_models = 0
    comp_model = np.full(nc, -1, np.int64)
    for c in range(nc):
        if not comp_free[c]:
            continue
        x = comp_dims[c, 0]
        y = comp_dims[c, 1]
        z = comp_dims[c, 2]
        if x > y:
            x, y = y, x
        if y > z:
            y, z = z, y
        if x > y:
            x, y = y, x
        kg = comp_max_kg[c]
        zn = float(comp_zone[c])
        m = -1
        for k in range(n_models):
            if (
                models[k, 0] == x
                and models[k, 1] == y
                and models[k, 2] == z
                and models[k, 3] == kg
                and models[k, 4] == zn
            ):
                m = k
                break
        if m < 0:
            m = n_models
            models[m, 0] = x
            models[m, 1] = y
            models[m, 2] = z
            models[m, 3] = kg
            models[m, 4] = zn
            n_models += 1
        comp_model[c] = m
    models = models[:n_models].copy()
    model_vol = np.empty(n_models, np.int64)
    for m in range(n_models):
        model_vol[m] = np.int64(np.rint(models[m, 0] * models[m, 1] * models[m, 2] / 1000.0))
    # Free compartments by (site, model), then least recently used first, then index.
    free = np.flatnonzero(comp_free)
    nf = free.shape[0]
    by_lru = free[np.argsort(comp_last_used[free], kind="mergesort")]
    key = np.empty(nf, np.int64)
    for i in range(nf):
        c = by_lru[i]
        key[i] = comp_site[c] * n_models + comp_model[c]
    order = np.argsort(key, kind="mergesort")
    node_comps = np.empty(nf, np.int64)
    n_nodes = 0
    for i in range(nf):
        node_comps[i] = by_lru[order[i]]
        if i == 0 or key[order[i]] != key[order[i - 1]]:
            n_nodes += 1
    node_site = np.empty(n_nodes, np.int64)
    node_model = np.empty(n_nodes, np.int64)
    node_cap = np.zeros(n_nodes, np.int64)
    node_comp_ptr = np.zeros(n_nodes + 1, np.int64)
    site_node_ptr = np.zeros(ns + 1, np.int64)
    t = -1
    for i in range(nf):
        kk = key[order[i]]
        if i == 0 or kk != key[order[i - 1]]:
            t += 1
            node_site[t] = kk // n_models
            node_model[t] = kk % n_models
            node_comp_ptr[t] = i
            site_node_ptr[node_site[t] + 1] += 1
        node_cap[t] += 1
    node_comp_ptr[n_nodes] = nf
    for s in range(ns):
        site_node_ptr[s + 1] += site_node_ptr[s]
    # Sites within the radius: scan a latitude band (a degree of latitude is >= 110.5 km).
    by_lat = np.argsort(site_lat, kind="mergesort")
    dlat = radius_m / 110_500.0
    nbr_ptr = np.zeros(ns + 1, np.int64)
    for phase in range(2):
        if phase == 1:
            for s in range(ns):
                nbr_ptr[s + 1] += nbr_ptr[s]
            nbr_idx = np.empty(nbr_ptr[ns], np.int64)
            nbr_d = np.empty(nbr_ptr[ns])
        for a in range(ns):
            i = by_lat[a]
            b = a
            while b > 0 and site_lat[i] - site_lat[by_lat[b - 1]] <= dlat:
                b -= 1
            k = 0
            while b < ns and site_lat[by_lat[b]] - site_lat[i] <= dlat:
                j = by_lat[b]
                d = (
                    0.0
                    if i == j
                    else _haversine(site_lat[i], site_lon[i], site_lat[j], site_lon[j])
                )
                if d <= radius_m:
                    if phase == 0:
                        nbr_ptr[i + 1] += 1
                    else:
                        nbr_idx[nbr_ptr[i] + k] = j
                        nbr_d[nbr_ptr[i] + k] = d
                    k += 1
                b += 1
    nbr_cost = np.empty(nbr_idx.shape[0], np.int64)
    for i in range(ns):
        lo = nbr_ptr[i]
        hi = nbr_ptr[i + 1]
        o = np.argsort(nbr_idx[lo:hi], kind="mergesort")
        idx = nbr_idx[lo:hi][o]
        dd = nbr_d[lo:hi][o]
        for q in range(hi - lo):
            nbr_idx[lo + q] = idx[q]
            nbr_cost[lo + q] = np.int64(np.rint(dd[q] * cost_per_m))
    return (
        models,
        model_vol,
        node_site,
        node_model,
        node_cap,
        site_node_ptr,
        node_comp_ptr,
        node_comps,
        nbr_ptr,
        nbr_idx,
        nbr_cost,
    )


@njit(cache=True)
def group_parcels(pdims, pkg, pzone, psite, models):
    """Group parcels by (destination, set of fitting models); ascending volume inside a group.

    Returns ``(grp_site, grp_fit, grp_ptr, grp_parcels, parcel_vol)``.  A parcel fits a model
    when its sorted dimensions fit the model's sorted dimensions (any of the 6 axis-aligned
    rotations), its weight the model's limit, and its zone the model's zone.
    """
    n = pdims.shape[0]
    n_models = models.shape[0]
    key = np.empty(n, np.int64)
    vol = np.empty(n, np.int64)
    for p in range(n):
        x = pdims[p, 0]
        y = pdims[p, 1]
        z = pdims[p, 2]
        if x > y:
            x, y = y, x
        if y > z:
            y, z = z, y
        if x > y:
            x, y = y, x
        vol[p] = np.int64(np.rint(pdims[p, 0] * pdims[p, 1] * pdims[p, 2] / 1000.0))
        mask = np.int64(0)
        for m in range(n_models):
            if (
                x <= models[m, 0]
                and y <= models[m, 1]
                and z <= models[m, 2]
                and pkg[p] <= models[m, 3]
                and pzone[p] == models[m, 4]
            ):
                mask |= np.int64(1) << np.int64(m)
        key[p] = (psite[p] << np.int64(n_models)) | mask
    order = np.argsort(key, kind="mergesort")
    n_groups = 0
    for i in range(n):
        if i == 0 or key[order[i]] != key[order[i - 1]]:
            n_groups += 1
    grp_site = np.empty(n_groups, np.int64)
    grp_fit = np.zeros((n_groups, n_models), np.bool_)
    grp_ptr = np.zeros(n_groups + 1, np.int64)
    g = -1
    for i in range(n):
        kk = key[order[i]]
        if i == 0 or kk != key[order[i - 1]]:
            g += 1
            grp_site[g] = kk >> np.int64(n_models)
            for m in range(n_models):
                grp_fit[g, m] = (kk >> np.int64(m)) & 1
            grp_ptr[g] = i
    grp_ptr[n_groups] = n
    # Stable sort by volume inside each group (ties keep parcel order).
    for g in range(n_groups):
        lo = grp_ptr[g]
        hi = grp_ptr[g + 1]
        sub = order[lo:hi].copy()
        idx = np.argsort(vol[sub], kind="mergesort")
        for i in range(hi - lo):
            order[lo + i] = sub[idx[i]]
    return grp_site, grp_fit, grp_ptr, order.astype(np.int64), vol


@njit(cache=True)
def build_arcs(grp_site, grp_fit, nbr_ptr, nbr_idx, nbr_cost, site_node_ptr, node_model, model_vol):
    """Arcs group -> type node, CSR by group: ``(arc_ptr, arc_node, arc_cost)``."""
    n_groups = grp_site.shape[0]
    arc_ptr = np.zeros(n_groups + 1, np.int64)
    for g in range(n_groups):
        s = grp_site[g]
        cnt = 0
        for j in range(nbr_ptr[s], nbr_ptr[s + 1]):
            s2 = nbr_idx[j]
            for t in range(site_node_ptr[s2], site_node_ptr[s2 + 1]):
                if grp_fit[g, node_model[t]]:
                    cnt += 1
        arc_ptr[g + 1] = arc_ptr[g] + cnt
    n_arcs = arc_ptr[n_groups]
    arc_node = np.empty(n_arcs, np.int64)
    arc_cost = np.empty(n_arcs, np.int64)
    for g in range(n_groups):
        s = grp_site[g]
        k = arc_ptr[g]
        for j in range(nbr_ptr[s], nbr_ptr[s + 1]):
            s2 = nbr_idx[j]
            for t in range(site_node_ptr[s2], site_node_ptr[s2 + 1]):
                m = node_model[t]
                if grp_fit[g, m]:
                    arc_node[k] = t
                    arc_cost[k] = model_vol[m] + nbr_cost[j]
                    k += 1
    return arc_ptr, arc_node, arc_cost


@njit(cache=True)
def _push(hk, hn, size, key, node):
    i = size
    hk[i] = key
    hn[i] = node
    while i > 0:
        p = (i - 1) >> 1
        if hk[p] < hk[i] or (hk[p] == hk[i] and hn[p] <= hn[i]):
            break
        hk[p], hk[i] = hk[i], hk[p]
        hn[p], hn[i] = hn[i], hn[p]
        i = p
    return size + 1


@njit(cache=True)
def _pop(hk, hn, size):
    key = hk[0]
    node = hn[0]
    size -= 1
    hk[0] = hk[size]
    hn[0] = hn[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        c = left
        right = left + 1
        if right < size and (
            hk[right] < hk[left] or (hk[right] == hk[left] and hn[right] < hn[left])
        ):
            c = right
        if hk[i] < hk[c] or (hk[i] == hk[c] and hn[i] <= hn[c]):
            break
        hk[c], hk[i] = hk[i], hk[c]
        hn[c], hn[i] = hn[i], hn[c]
        i = c
    return key, node, size


@njit(cache=True)
def _activate(a, arc_node, ncount, nlist, npos, actv):
    t = arc_node[a]
    i = npos[a]
    j = ncount[t] + actv[t]
    b = nlist[j]
    nlist[i], nlist[j] = b, a
    npos[b], npos[a] = i, j
    actv[t] += 1


@njit(cache=True)
def _deactivate(a, arc_node, ncount, nlist, npos, actv):
    t = arc_node[a]
    i = npos[a]
    j = ncount[t] + actv[t] - 1
    b = nlist[j]
    nlist[i], nlist[j] = b, a
    npos[b], npos[a] = i, j
    actv[t] -= 1


@njit(cache=True)
def ssp(arc_ptr, arc_node, arc_cost, node_cap, grp_ptr, gvol, unplace_cost):
    """Min-cost flow by successive shortest paths; returns ``(flow, unplaced, searches)``."""
    n_groups = arc_ptr.shape[0] - 1
    n_nodes = node_cap.shape[0]
    n_arcs = arc_node.shape[0]
    sink = n_groups + n_nodes
    nv = sink + 1
    # Transpose: arcs entering each type node, to walk reverse (flow-carrying) arcs.
    arc_group = np.empty(n_arcs, np.int64)
    ncount = np.zeros(n_nodes + 1, np.int64)
    for g in range(n_groups):
        for a in range(arc_ptr[g], arc_ptr[g + 1]):
            arc_group[a] = g
            ncount[arc_node[a] + 1] += 1
    for t in range(n_nodes):
        ncount[t + 1] += ncount[t]
    nfill = ncount[:-1].copy()
    nlist = np.empty(n_arcs, np.int64)
    for a in range(n_arcs):
        t = arc_node[a]
        nlist[nfill[t]] = a
        nfill[t] += 1
    # The arcs of a node that carry flow are kept at the front of its segment of ``nlist``
    # (``actv[t]`` of them), so reverse arcs are walked without scanning the idle ones.
    npos = np.empty(n_arcs, np.int64)
    for j in range(n_arcs):
        npos[nlist[j]] = j
    actv = np.zeros(n_nodes, np.int64)

    pi = np.zeros(nv, np.int64)
    dist = np.full(nv, INF, np.int64)
    pred = np.full(nv, -1, np.int64)
    pkind = np.zeros(nv, np.int8)
    settled = np.zeros(nv, np.bool_)
    touched = np.empty(nv, np.int64)
    slist = np.empty(nv, np.int64)
    hcap = 2 * n_arcs + nv + 1
    hk = np.empty(hcap, np.int64)
    hn = np.empty(hcap, np.int64)
    flow = np.zeros(n_arcs, np.int64)
    used = np.zeros(n_nodes, np.int64)
    unplaced = np.zeros(n_groups, np.int64)
    searches = 0
    for g0 in range(n_groups):
        rem = grp_ptr[g0 + 1] - grp_ptr[g0]
        while rem > 0:
            searches += 1
            # Fast path: every path costs at least its first arc, so when the cheapest direct
            # g0 -> t -> sink path is no dearer than the cheapest arc out of g0, it is a
            # shortest path and Dijkstra would settle only g0 before the sink.
            pu = pi[g0]
            m_all = INF
            best_d = INF
            best_a = -1
            best_rc = INF
            for a in range(arc_ptr[g0], arc_ptr[g0 + 1]):
                t = arc_node[a]
                rc = arc_cost[a] + pu - pi[n_groups + t]
                if rc < m_all:
                    m_all = rc
                if used[t] < node_cap[t]:
                    dd = rc + pi[n_groups + t] - pi[sink]
                    if dd < best_d:
                        best_d = dd
                        best_a = a
                        best_rc = rc
            k = unplaced[g0]
            if k < grp_ptr[g0 + 1] - grp_ptr[g0]:
                rc = unplace_cost + gvol[grp_ptr[g0] + k] + pu - pi[sink]
                if rc < m_all:
                    m_all = rc
            if best_a >= 0 and best_d <= m_all:
                t = arc_node[best_a]
                delta = min(rem, node_cap[t] - used[t])
                if flow[best_a] == 0:
                    _activate(best_a, arc_node, ncount, nlist, npos, actv)
                flow[best_a] += delta
                used[t] += delta
                rem -= delta
                pi[g0] -= best_d
                continue
            nt = 0
            ns = 0
            size = 0
            dist[g0] = 0
            touched[nt] = g0
            nt += 1
            size = _push(hk, hn, size, np.int64(0), g0)
            if best_a >= 0:
                # Seed the labels of the best direct path: an upper bound on the sink's
                # distance, so that nodes at least that far are never pushed.
                v = n_groups + arc_node[best_a]
                dist[v] = best_rc
                pkind[v] = 1
                pred[v] = best_a
                touched[nt] = v
                nt += 1
                size = _push(hk, hn, size, best_rc, v)
                dist[sink] = best_d
                pkind[sink] = 4
                pred[sink] = arc_node[best_a]
                touched[nt] = sink
                nt += 1
                size = _push(hk, hn, size, best_d, sink)
            while size > 0:
                d, u, size = _pop(hk, hn, size)
                if d > dist[u] or settled[u]:
                    continue
                settled[u] = True
                slist[ns] = u
                ns += 1
                if u == sink:
                    break
                if u < n_groups:
                    for a in range(arc_ptr[u], arc_ptr[u + 1]):
                        v = n_groups + arc_node[a]
                        nd = d + arc_cost[a] + pi[u] - pi[v]
                        if nd < dist[v] and nd < dist[sink]:
                            if dist[v] == INF:
                                touched[nt] = v
                                nt += 1
                            dist[v] = nd
                            pkind[v] = 1
                            pred[v] = a
                            size = _push(hk, hn, size, nd, v)
                    k = unplaced[u]
                    if k < grp_ptr[u + 1] - grp_ptr[u]:
                        nd = d + unplace_cost + gvol[grp_ptr[u] + k] + pi[u] - pi[sink]
                        if nd < dist[sink]:
                            if dist[sink] == INF:
                                touched[nt] = sink
                                nt += 1
                            dist[sink] = nd
                            pkind[sink] = 3
                            pred[sink] = u
                            size = _push(hk, hn, size, nd, sink)
                else:
                    t = u - n_groups
                    if used[t] < node_cap[t]:
                        nd = d + pi[u] - pi[sink]
                        if nd < dist[sink]:
                            if dist[sink] == INF:
                                touched[nt] = sink
                                nt += 1
                            dist[sink] = nd
                            pkind[sink] = 4
                            pred[sink] = t
                            size = _push(hk, hn, size, nd, sink)
                    for j in range(ncount[t], ncount[t] + actv[t]):
                        a = nlist[j]
                        v = arc_group[a]
                        nd = d - arc_cost[a] + pi[u] - pi[v]
                        if nd < dist[v] and nd < dist[sink]:
                            if dist[v] == INF:
                                touched[nt] = v
                                nt += 1
                            dist[v] = nd
                            pkind[v] = 2
                            pred[v] = a
                            size = _push(hk, hn, size, nd, v)
            dsink = dist[sink]
            for i in range(ns):
                v = slist[i]
                pi[v] += dist[v] - dsink
            # Bottleneck along the path, then augment.
            delta = rem
            if pkind[sink] == 3:
                delta = 1
                v = pred[sink]
            else:
                t = pred[sink]
                delta = min(delta, node_cap[t] - used[t])
                v = n_groups + t
            w = v
            while w != g0:
                if w >= n_groups:
                    w = arc_group[pred[w]]
                else:
                    a = pred[w]
                    delta = min(delta, flow[a])
                    w = n_groups + arc_node[a]
            if pkind[sink] == 3:
                unplaced[pred[sink]] += delta
            else:
                used[pred[sink]] += delta
            w = v
            while w != g0:
                a = pred[w]
                if w >= n_groups:
                    if flow[a] == 0:
                        _activate(a, arc_node, ncount, nlist, npos, actv)
                    flow[a] += delta
                    w = arc_group[a]
                else:
                    flow[a] -= delta
                    if flow[a] == 0:
                        _deactivate(a, arc_node, ncount, nlist, npos, actv)
                    w = n_groups + arc_node[a]
            rem -= delta
            for i in range(nt):
                v = touched[i]
                dist[v] = INF
                settled[v] = False
    return flow, unplaced, searches


@njit(cache=True)
def expand(
    arc_ptr, arc_node, flow, unplaced, grp_ptr, grp_parcels, node_comp_ptr, node_comps, n_parcels
):
    """Parcel -> compartment from group flows; each type node hands out its LRU-first order."""
    assign = np.full(n_parcels, -1, np.int64)
    nxt = node_comp_ptr[:-1].copy()
    n_groups = arc_ptr.shape[0] - 1
    for g in range(n_groups):
        i = grp_ptr[g] + unplaced[g]  # the smallest parcels of the group stay unplaced
        for a in range(arc_ptr[g], arc_ptr[g + 1]):
            t = arc_node[a]
            for _ in range(flow[a]):
                assign[grp_parcels[i]] = node_comps[nxt[t]]
                nxt[t] += 1
                i += 1
    return assign
