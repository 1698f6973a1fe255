"""Plain-Python reference of ``_alloc_kernel``: the same algorithm, statement for statement.

Lists and ``heapq`` instead of numpy arrays and a hand-written heap; both pop ``(distance, node)``
pairs in lexicographic order, so both produce identical flows.  Tests compare the two; the
benchmark times the two.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

INF = 1 << 62


DEG = math.pi / 180.0
EARTH_RADIUS_M = 6_371_008.8


def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1 = lat1 * DEG
    p2 = lat2 * DEG
    s1 = math.sin((p2 - p1) / 2.0)
    s2 = math.sin((lon2 - lon1) * DEG / 2.0)
    a = s1 * s1 + math.cos(p1) * math.cos(p2) * s2 * s2
    if a > 1.0:
        a = 1.0
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def build_tables(
    comp_dims: Sequence[Sequence[float]],
    comp_max_kg: Sequence[float],
    comp_zone: Sequence[int],
    comp_free: Sequence[bool],
    comp_site: Sequence[int],
    comp_last_used: Sequence[float],
    site_lat: Sequence[float],
    site_lon: Sequence[float],
    radius_m: float,
    cost_per_m: float,
) -> tuple[
    list[list[float]],
    list[int],
    list[int],
    list[int],
    list[int],
    list[int],
    list[int],
    list[int],
    list[int],
    list[int],
    list[int],
]:
    """Compartment models, (site, model) type nodes in LRU order, sites within the radius."""
    ns = len(site_lat)
    models: list[list[float]] = []
    comp_model = [-1] * len(comp_dims)
    for c, (x, y, z) in enumerate(comp_dims):
        if not comp_free[c]:
            continue
        if x > y:
            x, y = y, x
        if y > z:
            y, z = z, y
        if x > y:
            x, y = y, x
        kg = comp_max_kg[c]
        zn = float(comp_zone[c])
        m = -1
        for k, mod in enumerate(models):
            if mod[0] == x and mod[1] == y and mod[2] == z and mod[3] == kg and mod[4] == zn:
                m = k
                break
        if m < 0:
            m = len(models)
            models.append([x, y, z, kg, zn])
        comp_model[c] = m
    n_models = len(models)
    model_vol = [round(m[0] * m[1] * m[2] / 1000.0) for m in models]
    free = [c for c in range(len(comp_dims)) if comp_free[c]]
    by_lru = sorted(free, key=comp_last_used.__getitem__)
    key = [comp_site[c] * n_models + comp_model[c] for c in by_lru]
    order = sorted(range(len(by_lru)), key=key.__getitem__)
    node_comps = [by_lru[i] for i in order]
    node_site: list[int] = []
    node_model: list[int] = []
    node_cap: list[int] = []
    node_comp_ptr: list[int] = []
    site_node_ptr = [0] * (ns + 1)
    for i, o in enumerate(order):
        kk = key[o]
        if i == 0 or kk != key[order[i - 1]]:
            node_site.append(kk // n_models)
            node_model.append(kk % n_models)
            node_comp_ptr.append(i)
            node_cap.append(0)
            site_node_ptr[node_site[-1] + 1] += 1
        node_cap[-1] += 1
    node_comp_ptr.append(len(order))
    for s in range(ns):
        site_node_ptr[s + 1] += site_node_ptr[s]
    by_lat = sorted(range(ns), key=site_lat.__getitem__)
    dlat = radius_m / 110_500.0
    nbrs: list[list[tuple[int, float]]] = [[] for _ in range(ns)]
    for a in range(ns):
        i = by_lat[a]
        b = a
        while b > 0 and site_lat[i] - site_lat[by_lat[b - 1]] <= dlat:
            b -= 1
        while b < ns and site_lat[by_lat[b]] - site_lat[i] <= dlat:
            j = by_lat[b]
            d = 0.0 if i == j else _haversine(site_lat[i], site_lon[i], site_lat[j], site_lon[j])
            if d <= radius_m:
                nbrs[i].append((j, d))
            b += 1
    nbr_ptr = [0]
    nbr_idx: list[int] = []
    nbr_cost: list[int] = []
    for lst in nbrs:
        lst.sort(key=lambda jd: jd[0])
        nbr_idx.extend(j for j, _ in lst)
        nbr_cost.extend(round(d * cost_per_m) for _, d in lst)
        nbr_ptr.append(len(nbr_idx))
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


def group_parcels(
    pdims: Sequence[Sequence[float]],
    pkg: Sequence[float],
    pzone: Sequence[int],
    psite: Sequence[int],
    models: Sequence[Sequence[float]],
) -> tuple[list[int], list[list[bool]], list[int], list[int], list[int]]:
    """Group parcels by (destination, set of fitting models); ascending volume inside a group."""
    n_models = len(models)
    key: list[int] = []
    vol: list[int] = []
    for p, (a, b, c) in enumerate(pdims):
        x, y, z = a, b, c
        if x > y:
            x, y = y, x
        if y > z:
            y, z = z, y
        if x > y:
            x, y = y, x
        vol.append(round(a * b * c / 1000.0))
        mask = 0
        kg, zone = pkg[p], pzone[p]
        for m, (m0, m1, m2, mkg, mzone) in enumerate(models):
            if x <= m0 and y <= m1 and z <= m2 and kg <= mkg and zone == mzone:
                mask |= 1 << m
        key.append((psite[p] << n_models) | mask)
    order = sorted(range(len(key)), key=key.__getitem__)
    grp_site: list[int] = []
    grp_fit: list[list[bool]] = []
    grp_ptr: list[int] = []
    for i, p in enumerate(order):
        kk = key[p]
        if i == 0 or kk != key[order[i - 1]]:
            grp_site.append(kk >> n_models)
            grp_fit.append([bool((kk >> m) & 1) for m in range(n_models)])
            grp_ptr.append(i)
    grp_ptr.append(len(order))
    out: list[int] = []
    for g in range(len(grp_site)):
        out.extend(sorted(order[grp_ptr[g] : grp_ptr[g + 1]], key=vol.__getitem__))
    return grp_site, grp_fit, grp_ptr, out, vol


def build_arcs(
    grp_site: Sequence[int],
    grp_fit: Sequence[Sequence[bool]],
    nbr_ptr: Sequence[int],
    nbr_idx: Sequence[int],
    nbr_cost: Sequence[int],
    site_node_ptr: Sequence[int],
    node_model: Sequence[int],
    model_vol: Sequence[int],
) -> tuple[list[int], list[int], list[int]]:
    """Arcs group -> type node, CSR by group: ``(arc_ptr, arc_node, arc_cost)``."""
    arc_ptr = [0]
    arc_node: list[int] = []
    arc_cost: list[int] = []
    for g, s in enumerate(grp_site):
        fit = grp_fit[g]
        for j in range(nbr_ptr[s], nbr_ptr[s + 1]):
            s2 = nbr_idx[j]
            for t in range(site_node_ptr[s2], site_node_ptr[s2 + 1]):
                m = node_model[t]
                if fit[m]:
                    arc_node.append(t)
                    arc_cost.append(model_vol[m] + nbr_cost[j])
        arc_ptr.append(len(arc_node))
    return arc_ptr, arc_node, arc_cost


def ssp(
    arc_ptr: Sequence[int],
    arc_node: Sequence[int],
    arc_cost: Sequence[int],
    node_cap: Sequence[int],
    grp_ptr: Sequence[int],
    gvol: Sequence[int],
    unplace_cost: int,
) -> tuple[list[int], list[int], int]:
    """Min-cost flow by successive shortest paths; returns ``(flow, unplaced, searches)``."""
    n_groups = len(arc_ptr) - 1
    n_nodes = len(node_cap)
    n_arcs = len(arc_node)
    sink = n_groups + n_nodes
    nv = sink + 1
    arc_group = [0] * n_arcs
    into: list[list[int]] = [[] for _ in range(n_nodes)]
    for g in range(n_groups):
        for a in range(arc_ptr[g], arc_ptr[g + 1]):
            arc_group[a] = g
            into[arc_node[a]].append(a)
    ncount = [0]
    for lst in into:
        ncount.append(ncount[-1] + len(lst))
    nlist = [a for lst in into for a in lst]
    npos = [0] * n_arcs
    for j, a in enumerate(nlist):
        npos[a] = j
    actv = [0] * n_nodes

    def activate(a: int) -> None:
        t = arc_node[a]
        i, j = npos[a], ncount[t] + actv[t]
        b = nlist[j]
        nlist[i], nlist[j] = b, a
        npos[b], npos[a] = i, j
        actv[t] += 1

    def deactivate(a: int) -> None:
        t = arc_node[a]
        i, j = npos[a], ncount[t] + actv[t] - 1
        b = nlist[j]
        nlist[i], nlist[j] = b, a
        npos[b], npos[a] = i, j
        actv[t] -= 1

    pi = [0] * nv
    dist = [INF] * nv
    pred = [-1] * nv
    pkind = [0] * nv
    settled = [False] * nv
    flow = [0] * n_arcs
    used = [0] * n_nodes
    unplaced = [0] * n_groups
    searches = 0
    for g0 in range(n_groups):
        rem = grp_ptr[g0 + 1] - grp_ptr[g0]
        while rem > 0:
            searches += 1
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
                    activate(best_a)
                flow[best_a] += delta
                used[t] += delta
                rem -= delta
                pi[g0] -= best_d
                continue
            touched = [g0]
            slist: list[int] = []
            dist[g0] = 0
            heap = [(0, g0)]
            if best_a >= 0:
                v = n_groups + arc_node[best_a]
                dist[v] = best_rc
                pkind[v] = 1
                pred[v] = best_a
                touched.append(v)
                heapq.heappush(heap, (best_rc, v))
                dist[sink] = best_d
                pkind[sink] = 4
                pred[sink] = arc_node[best_a]
                touched.append(sink)
                heapq.heappush(heap, (best_d, sink))
            while heap:
                d, u = heapq.heappop(heap)
                if d > dist[u] or settled[u]:
                    continue
                settled[u] = True
                slist.append(u)
                if u == sink:
                    break
                if u < n_groups:
                    pu = pi[u]
                    for a in range(arc_ptr[u], arc_ptr[u + 1]):
                        v = n_groups + arc_node[a]
                        nd = d + arc_cost[a] + pu - pi[v]
                        if nd < dist[v] and nd < dist[sink]:
                            if dist[v] == INF:
                                touched.append(v)
                            dist[v] = nd
                            pkind[v] = 1
                            pred[v] = a
                            heapq.heappush(heap, (nd, v))
                    k = unplaced[u]
                    if k < grp_ptr[u + 1] - grp_ptr[u]:
                        nd = d + unplace_cost + gvol[grp_ptr[u] + k] + pu - pi[sink]
                        if nd < dist[sink]:
                            if dist[sink] == INF:
                                touched.append(sink)
                            dist[sink] = nd
                            pkind[sink] = 3
                            pred[sink] = u
                            heapq.heappush(heap, (nd, sink))
                else:
                    t = u - n_groups
                    if used[t] < node_cap[t]:
                        nd = d + pi[u] - pi[sink]
                        if nd < dist[sink]:
                            if dist[sink] == INF:
                                touched.append(sink)
                            dist[sink] = nd
                            pkind[sink] = 4
                            pred[sink] = t
                            heapq.heappush(heap, (nd, sink))
                    for j in range(ncount[t], ncount[t] + actv[t]):
                        a = nlist[j]
                        v = arc_group[a]
                        nd = d - arc_cost[a] + pi[u] - pi[v]
                        if nd < dist[v] and nd < dist[sink]:
                            if dist[v] == INF:
                                touched.append(v)
                            dist[v] = nd
                            pkind[v] = 2
                            pred[v] = a
                            heapq.heappush(heap, (nd, v))
            dsink = dist[sink]
            for v in slist:
                pi[v] += dist[v] - dsink
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
                        activate(a)
                    flow[a] += delta
                    w = arc_group[a]
                else:
                    flow[a] -= delta
                    if flow[a] == 0:
                        deactivate(a)
                    w = n_groups + arc_node[a]
            rem -= delta
            for v in touched:
                dist[v] = INF
                settled[v] = False
    return flow, unplaced, searches


def expand(
    arc_ptr: Sequence[int],
    arc_node: Sequence[int],
    flow: Sequence[int],
    unplaced: Sequence[int],
    grp_ptr: Sequence[int],
    grp_parcels: Sequence[int],
    node_comp_ptr: Sequence[int],
    node_comps: Sequence[int],
    n_parcels: int,
) -> list[int]:
    """Parcel -> compartment from group flows; each type node hands out its LRU-first order."""
    assign = [-1] * n_parcels
    nxt = list(node_comp_ptr[:-1])
    for g in range(len(arc_ptr) - 1):
        i = grp_ptr[g] + unplaced[g]
        for a in range(arc_ptr[g], arc_ptr[g + 1]):
            t = arc_node[a]
            for _ in range(flow[a]):
                assign[grp_parcels[i]] = node_comps[nxt[t]]
                nxt[t] += 1
                i += 1
    return assign
