# mypy: disable-error-code="no-untyped-def,call-arg"
# (numba kernels are typed by numba at compile time; the typed API is the Python wrapper)
"""Numba kernel of the route planner: SISR (slack induction by string removals).

Private: call it through ``routing.planner``.  The metaheuristic is that of Christiaens and
Vanden Berghe (Transportation Science 54(2), 2020): ruin by removing strings of consecutive
customers from routes near a random seed customer, recreate by greedy cheapest insertion with
"blinks" (positions skipped at random), accept by simulated annealing on total distance.

Routes are evaluated by simulation in general mode (pickups, several load dimensions, electric
vehicles with "just enough" partial recharging at stations) and by O(1) forward/backward time
slacks in simple mode (plain VRPTW, the Solomon case), which is what makes the search fast.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class Instance(NamedTuple):
    """The problem as the kernel reads it (node 0 the depot; ``T`` vehicle types, ``D`` loads)."""

    dist: np.ndarray  # (N, N) distance, the objective
    ttime: np.ndarray  # (N, N) travel time
    early: np.ndarray  # (N,) time window opens
    late: np.ndarray  # (N,) time window closes
    service: np.ndarray  # (N,) service duration
    deliv: np.ndarray  # (N, D) loads dropped
    pick: np.ndarray  # (N, D) loads collected
    is_st: np.ndarray  # (N,) charging station
    grate: np.ndarray  # (N,) time per energy unit charged
    vcap: np.ndarray  # (T, D) capacity
    vbat: np.ndarray  # (T,) battery (2 BIG: not electric)
    vcons: np.ndarray  # (T,) energy per distance unit
    # Transposes (dist_in[j, i] = dist[i, j]), the same arrays when the matrices are symmetric:
    # an insertion of j reads row j only, which stays in cache (a column would not).
    dist_in: np.ndarray
    ttime_in: np.ndarray


class Granular(NamedTuple):
    """Granular neighbourhood of the insertion and its scratch marks (left all false)."""

    near: np.ndarray  # (N, K) each node's K nearest customers, nearest first (-1 pads)
    route_mark: np.ndarray  # (R,) routes serving one of the customer's neighbours
    node_mark: np.ndarray  # (N,) the customer's neighbours (and the depot)


class State(NamedTuple):
    """One solution: ``R`` route slots of at most ``L`` stops, with cached schedules."""

    routes: np.ndarray  # (R, L) stops of each route, depot excluded
    rlen: np.ndarray  # (R,) stops in each route (0: unused vehicle)
    rtype: np.ndarray  # (R,) vehicle type of each slot
    rdist: np.ndarray  # (R,) distance of each route
    where: np.ndarray  # (N,) route of each customer (-1: not routed)
    dep: np.ndarray  # (R, L) departure time after each stop
    lat: np.ndarray  # (R, L) latest service start keeping the rest of the route on time
    charge: np.ndarray  # (R, L) energy bought at each stop
    rload: np.ndarray  # (R, D) deliveries on board when leaving the depot
    arc: np.ndarray  # (R, L) distance of the arc ending at each position (n: back to depot)
    fixed: np.ndarray  # (T,) fixed cost per used vehicle (shared, never copied)
    dirty: np.ndarray  # (R,) routes changed since the last sync


BIG = 1e18
EPS = 1e-9
OK = 0
BAD_LOAD = 1
BAD_TIME = 2
BAD_ENERGY = 3


@njit(cache=True)
def seed_rng(seed):
    """Seed numba's own generator (separate from numpy's)."""
    np.random.seed(seed)


@njit(cache=True)
def simulate(seq, n, vt, P, need, dep, charge):
    """Drive the route ``depot, seq[:n], depot`` with vehicle type ``vt``.

    Fills ``dep`` (departure times) and ``charge`` (energy bought at each stop); returns
    ``(code, distance)``.  Charging policy: at a station buy just enough energy to reach the next
    station or the depot (capped by the battery), i.e. charge as late and as little as possible.
    """
    dist, ttime, early, late, service, deliv, pick, is_st, grate, vcap, vbat, vcons = P[:12]
    nd = deliv.shape[1]
    # Load: leaves the depot with every delivery, picks up along the way.
    for k in range(nd):
        load = 0.0
        for i in range(n):
            load += deliv[seq[i], k]
        if load > vcap[vt, k] + EPS:
            return BAD_LOAD, 0.0
        for i in range(n):
            load += pick[seq[i], k] - deliv[seq[i], k]
            if load > vcap[vt, k] + EPS:
                return BAD_LOAD, 0.0
    ev = vbat[vt] < BIG
    q = vbat[vt]
    r = vcons[vt]
    if ev:  # energy needed from each station to the next station or the depot
        acc = r * dist[seq[n - 1], 0] if n > 0 else 0.0
        for i in range(n - 1, -1, -1):
            node = seq[i]
            if is_st[node]:
                need[i] = acc
                acc = 0.0
            if i > 0:
                acc += r * dist[seq[i - 1], node]
    t = early[0]
    level = q
    prev = 0
    total = 0.0
    for i in range(n):
        node = seq[i]
        total += dist[prev, node]
        t += ttime[prev, node]
        if t > late[node] + EPS:
            return BAD_TIME, total
        if t < early[node]:
            t = early[node]
        if ev:
            level -= r * dist[prev, node]
            if level < -EPS:
                return BAD_ENERGY, total
            if is_st[node]:
                want = need[i] if need[i] < q else q
                buy = want - level
                if buy < 0.0:
                    buy = 0.0
                charge[i] = buy
                level += buy
                t += grate[node] * buy
            else:
                charge[i] = 0.0
        t += service[node]
        dep[i] = t
        prev = node
    total += dist[prev, 0]
    t += ttime[prev, 0]
    if t > late[0] + EPS:
        return BAD_TIME, total
    if ev:
        level -= r * dist[prev, 0]
        if level < -EPS:
            return BAD_ENERGY, total
    return OK, total


@njit(cache=True)
def refresh(r, S, P, need):
    """Recompute the cached departure times, latest starts, arcs and distance of route ``r``."""
    ttime, late, service, dist = P.ttime, P.late, P.service, P.dist
    n = S.rlen[r]
    seq = S.routes[r]
    lat = S.lat
    code, d = simulate(seq, n, S.rtype[r], P, need, S.dep[r], S.charge[r])
    S.rdist[r] = d
    prev = 0
    for i in range(n):
        S.arc[r, i] = dist[prev, seq[i]]
        prev = seq[i]
    S.arc[r, n] = dist[prev, 0]
    # Latest service start at each position that keeps the rest of the route on time.
    nxt_lat = late[0]
    nxt = 0
    for i in range(n - 1, -1, -1):
        node = seq[i]
        v = nxt_lat - ttime[node, nxt] - service[node]
        if late[node] < v:
            v = late[node]
        lat[r, i] = v
        nxt_lat = v
        nxt = node
    return code


@njit(cache=True)
def refresh_simple(r, S, P):
    """``refresh`` for plain VRPTW in one pass (no call to ``simulate``: see ``insert_simple``)."""
    routes, rdist, dep, lat, arc = S.routes, S.rdist, S.dep, S.lat, S.arc
    dist, ttime, early, late, service = P.dist, P.ttime, P.early, P.late, P.service
    n = S.rlen[r]
    t = early[0]
    total = 0.0
    prev = 0
    for i in range(n):
        node = routes[r, i]
        d = dist[prev, node]
        arc[r, i] = d
        total += d
        t += ttime[prev, node]
        if t < early[node]:
            t = early[node]
        t += service[node]
        dep[r, i] = t
        prev = node
    arc[r, n] = dist[prev, 0]
    rdist[r] = total + arc[r, n]
    nxt_lat = late[0]
    nxt = 0
    for i in range(n - 1, -1, -1):
        node = routes[r, i]
        v = nxt_lat - ttime[node, nxt] - service[node]
        if late[node] < v:
            v = late[node]
        lat[r, i] = v
        nxt_lat = v
        nxt = node


@njit(cache=True)
def insert_simple(c, r, pos, S, P):
    """Insert ``c`` at ``pos`` of route ``r`` (plain VRPTW) and refresh the route's caches."""
    routes, rlen, rload = S.routes, S.rlen, S.rload
    S.dirty[r] = True
    n = rlen[r]
    for i in range(n, pos, -1):
        routes[r, i] = routes[r, i - 1]
    routes[r, pos] = c
    rlen[r] = n + 1
    S.where[c] = r
    for k in range(rload.shape[1]):
        rload[r, k] += P.deliv[c, k]
    refresh_simple(r, S, P)


@njit(cache=True, inline="always")
def fast_insert_ok(r, pos, c, routes, rlen, rtype, dep, lat, rload, P):
    """O(1) feasibility of inserting ``c`` before position ``pos`` (simple mode only)."""
    ttime, early, late, service, deliv, vcap = P.ttime, P.early, P.late, P.service, P.deliv, P.vcap
    vt = rtype[r]
    for k in range(deliv.shape[1]):
        if rload[r, k] + deliv[c, k] > vcap[vt, k] + EPS:
            return False
    n = rlen[r]
    prev = routes[r, pos - 1] if pos > 0 else 0
    t = dep[r, pos - 1] if pos > 0 else early[0]
    t += P.ttime_in[c, prev]
    if t > late[c] + EPS:
        return False
    if t < early[c]:
        t = early[c]
    t += service[c]
    if pos < n:
        nxt = routes[r, pos]
        t += ttime[c, nxt]
        if t < early[nxt]:
            t = early[nxt]
        return t <= lat[r, pos] + EPS
    return t + ttime[c, 0] <= late[0] + EPS


@njit(cache=True, inline="always")
def insert_at(r, pos, c, routes, rlen):
    n = rlen[r]
    for i in range(n, pos, -1):
        routes[r, i] = routes[r, i - 1]
    routes[r, pos] = c
    rlen[r] = n + 1


@njit(cache=True, inline="always")
def remove_at(r, pos, routes, rlen):
    n = rlen[r]
    for i in range(pos, n - 1):
        routes[r, i] = routes[r, i + 1]
    rlen[r] = n - 1


@njit(cache=True)
def best_insertion(c, S, P, near_st, simple, blink, scratch, need, sdep, scharge, G):
    """Cheapest feasible (route, position, station, station position) for customer ``c``.

    ``station`` is -1 or a station node inserted right before (``spos`` 0) or after (1) ``c``.
    Granular (Toth and Vigo's granular neighbourhoods), in three levels tried in turn until one
    takes ``c``: 0, the positions next to one of ``c``'s K nearest customers (or the depot) in
    the routes serving them; 1, every position of those routes and one empty route per vehicle
    type; 2, every position of every route (SISR's original insertion; the only level when K
    is 0).
    """
    where = S.where
    near = G.near
    k = near.shape[1]
    for j in range(k):
        nb = near[c, j]
        if nb < 0:
            break
        G.node_mark[nb] = True
        if where[nb] >= 0:
            G.route_mark[where[nb]] = True
    G.node_mark[0] = True
    res = (BIG, -1, -1, -1, 0)
    for level in range(0 if k > 0 else 2, 3):
        if simple:
            res = _best_insertion_simple(c, S, P, blink, G, level)
        else:
            res = _best_insertion_pass(
                c, S, P, near_st, simple, blink, scratch, need, sdep, scharge, G, level
            )
        if res[1] >= 0:
            break
    for j in range(k):
        nb = near[c, j]
        if nb < 0:
            break
        G.node_mark[nb] = False
        if where[nb] >= 0:
            G.route_mark[where[nb]] = False
    G.node_mark[0] = False
    return res


@njit(cache=True)
def _best_insertion_simple(c, S, P, blink, G, level):
    """``_best_insertion_pass`` for plain VRPTW, with ``fast_insert_ok`` written out in the loop.

    The arrays are taken out of the named tuples once: a call per position that passes them
    (refcounts of some twenty arrays) cost ~100x the O(1) check itself.  Capacity is checked
    once per route, the time windows per position from the cached departures and latest starts.
    """
    routes, rlen, rtype, dep, lat, rload, fixed, arc = (
        S.routes,
        S.rlen,
        S.rtype,
        S.dep,
        S.lat,
        S.rload,
        S.fixed,
        S.arc,
    )
    dist, dist_in, ttime, ttime_in = P.dist, P.dist_in, P.ttime, P.ttime_in
    early, late, service, deliv, vcap = P.early, P.late, P.service, P.deliv, P.vcap
    route_mark, node_mark = G.route_mark, G.node_mark
    best = BIG
    br = -1
    bp = -1
    seen_empty = np.zeros(fixed.shape[0], np.bool_)
    e_c, l_c, s_c = early[c], late[c], service[c]
    back = ttime[c, 0]
    for r in range(rlen.shape[0]):
        n = rlen[r]
        vt = rtype[r]
        extra = 0.0
        if n == 0:
            if level == 0 or seen_empty[vt]:
                continue
            seen_empty[vt] = True
            extra = fixed[vt]
        elif level < 2 and not route_mark[r]:
            continue
        if n + 1 > routes.shape[1]:
            continue
        fits = True
        for k in range(deliv.shape[1]):
            if rload[r, k] + deliv[c, k] > vcap[vt, k] + EPS:
                fits = False
        if not fits:
            continue
        for pos in range(n + 1):
            prev = routes[r, pos - 1] if pos > 0 else 0
            nxt = routes[r, pos] if pos < n else 0
            if level == 0 and not (node_mark[prev] or node_mark[nxt]):
                continue
            if blink > 0.0 and np.random.random() < blink:
                continue
            delta = dist_in[c, prev] + dist[c, nxt] - arc[r, pos] + extra
            if delta >= best:
                continue
            # fast_insert_ok, inline.
            t = (dep[r, pos - 1] if pos > 0 else early[0]) + ttime_in[c, prev]
            if t > l_c + EPS:
                continue
            if t < e_c:
                t = e_c
            t += s_c
            if pos < n:
                t += ttime[c, nxt]
                if t < early[nxt]:
                    t = early[nxt]
                if t > lat[r, pos] + EPS:
                    continue
            elif t + back > late[0] + EPS:
                continue
            best, br, bp = delta, r, pos
    return best, br, bp, -1, 0


@njit(cache=True)
def _best_insertion_pass(c, S, P, near_st, simple, blink, scratch, need, sdep, scharge, G, level):
    routes, rlen, rtype, dep, lat, rload, fixed, arc = (
        S.routes,
        S.rlen,
        S.rtype,
        S.dep,
        S.lat,
        S.rload,
        S.fixed,
        S.arc,
    )
    dist, dist_in = P.dist, P.dist_in
    is_ev = not simple
    best = BIG
    br = -1
    bp = -1
    bs = -1
    bsp = 0
    n_routes = rlen.shape[0]
    nt = fixed.shape[0]
    seen_empty = np.zeros(nt, np.bool_)
    for r in range(n_routes):
        n = rlen[r]
        extra = 0.0
        if n == 0:
            if level == 0 or seen_empty[rtype[r]]:
                continue
            seen_empty[rtype[r]] = True
            extra = fixed[rtype[r]]
        elif level < 2 and not G.route_mark[r]:
            continue
        if n + (1 if simple else 3) > routes.shape[1]:
            continue  # no room for the customer (and two charging stops)
        for pos in range(n + 1):
            prev = routes[r, pos - 1] if pos > 0 else 0
            nxt = routes[r, pos] if pos < n else 0
            if level == 0 and not (G.node_mark[prev] or G.node_mark[nxt]):
                continue
            if blink > 0.0 and np.random.random() < blink:
                continue
            delta = dist_in[c, prev] + dist[c, nxt] - arc[r, pos] + extra
            if delta >= best:
                continue
            if simple:
                if fast_insert_ok(r, pos, c, routes, rlen, rtype, dep, lat, rload, P):
                    best, br, bp, bs = delta, r, pos, -1
                continue
            # General mode: simulate the candidate route.
            for i in range(pos):
                scratch[i] = routes[r, i]
            scratch[pos] = c
            for i in range(pos, n):
                scratch[i + 1] = routes[r, i]
            code, _ = simulate(scratch, n + 1, rtype[r], P, need, sdep, scharge)
            if code == OK:
                best, br, bp, bs = delta, r, pos, -1
                continue
            if code != BAD_ENERGY or not is_ev:
                continue
            # Battery short: try a charging stop next to c.
            for side in range(2):
                a = prev if side == 0 else c
                b = c if side == 0 else nxt
                for j in range(near_st.shape[1] * 2):
                    s = near_st[a, j] if j < near_st.shape[1] else near_st[b, j - near_st.shape[1]]
                    if s < 0 or s in (a, b):
                        continue
                    d2 = delta + dist[a, s] + dist[s, b] - dist[a, b]
                    if d2 >= best:
                        continue
                    k = 0
                    for i in range(pos):
                        scratch[k] = routes[r, i]
                        k += 1
                    if side == 0:
                        scratch[k] = s
                        k += 1
                    scratch[k] = c
                    k += 1
                    if side == 1:
                        scratch[k] = s
                        k += 1
                    for i in range(pos, n):
                        scratch[k] = routes[r, i]
                        k += 1
                    code2, _ = simulate(scratch, k, rtype[r], P, need, sdep, scharge)
                    if code2 == OK:
                        best, br, bp, bs, bsp = d2, r, pos, s, side
            if n > 0:
                continue
            # A customer far out may need a stop on the way there and another on the way back
            # (tried on a new route only; ``side`` 2 + s2 encodes the second station s2).
            ks = near_st.shape[1]
            for j1 in range(ks):
                s1 = near_st[c, j1]
                if s1 < 0:
                    continue
                for j2 in range(ks):
                    s2 = near_st[c, j2]
                    if s2 < 0:
                        continue
                    d2 = dist[0, s1] + dist[s1, c] + dist[c, s2] + dist[s2, 0] + extra
                    if d2 >= best:
                        continue
                    scratch[0] = s1
                    scratch[1] = c
                    scratch[2] = s2
                    code2, _ = simulate(scratch, 3, rtype[r], P, need, sdep, scharge)
                    if code2 == OK:
                        best, br, bp, bs, bsp = d2, r, 0, s1, 2 + s2
    return best, br, bp, bs, bsp


@njit(cache=True)
def apply_insertion(c, r, pos, s, side, S, P, need, simple):
    routes, rlen, where, rload, dirty = S.routes, S.rlen, S.where, S.rload, S.dirty
    if simple:
        insert_simple(c, r, pos, S, P)
        return
    dirty[r] = True
    if s >= 0 and side == 0:
        insert_at(r, pos, s, routes, rlen)
        pos += 1
    if s >= 0 and side >= 2:
        insert_at(r, pos, s, routes, rlen)
        insert_at(r, pos + 1, c, routes, rlen)
        insert_at(r, pos + 2, side - 2, routes, rlen)
    else:
        insert_at(r, pos, c, routes, rlen)
    if s >= 0 and side == 1:
        insert_at(r, pos + 1, s, routes, rlen)
    where[c] = r
    for k in range(rload.shape[1]):
        rload[r, k] += P.deliv[c, k]
    refresh(r, S, P, need)


@njit(cache=True)
def drop_stations(r, S, P, need, scratch, sdep, scharge):
    """Remove charging stops that route ``r`` no longer needs (greedy, last first)."""
    routes, rlen, rtype, dirty = S.routes, S.rlen, S.rtype, S.dirty
    dirty[r] = True
    is_st = P.is_st
    i = rlen[r] - 1
    while i >= 0:
        if is_st[routes[r, i]]:
            n = rlen[r]
            k = 0
            for j in range(n):
                if j != i:
                    scratch[k] = routes[r, j]
                    k += 1
            code, _ = simulate(scratch, k, rtype[r], P, need, sdep, scharge)
            if code == OK:
                remove_at(r, i, routes, rlen)
        i -= 1
    if rlen[r] > 0:
        has_customer = False
        for j in range(rlen[r]):
            if not is_st[routes[r, j]]:
                has_customer = True
        if not has_customer:
            rlen[r] = 0
    refresh(r, S, P, need)


@njit(cache=True)
def objective(S, penalty, customers):
    rlen, rtype, rdist, where, fixed = S.rlen, S.rtype, S.rdist, S.where, S.fixed
    total = 0.0
    for r in range(rlen.shape[0]):
        if rlen[r] > 0:
            total += rdist[r] + fixed[rtype[r]]
    for c in customers:
        if where[c] < 0:
            total += penalty
    return total


@njit(cache=True, inline="always")
def copy_route(A, B, r):
    """Route ``r`` of A into B (only its used length: O(stops), not O(L)).

    Element loops, not slices: at ~10 stops a slice's set-up costs more than the copy.
    """
    n = A.rlen[r]
    for i in range(n):
        B.routes[r, i] = A.routes[r, i]
        B.dep[r, i] = A.dep[r, i]
        B.lat[r, i] = A.lat[r, i]
        B.charge[r, i] = A.charge[r, i]
        B.arc[r, i] = A.arc[r, i]
    B.arc[r, n] = A.arc[r, n]
    B.rlen[r] = n
    B.rtype[r] = A.rtype[r]
    B.rdist[r] = A.rdist[r]
    for k in range(A.rload.shape[1]):
        B.rload[r, k] = A.rload[r, k]


@njit(cache=True)
def copy_state(A, B):
    """B = A (fixed costs are shared, not copied; B's dirty flags untouched)."""
    for r in range(A.rlen.shape[0]):
        copy_route(A, B, r)
    B.where[:] = A.where


@njit(cache=True)
def sync(A, B, flags):
    """Copy the routes flagged in ``flags`` (and ``where``) from A to B; clear flags."""
    for r in range(flags.shape[0]):
        if flags[r]:
            copy_route(A, B, r)
            flags[r] = False
    B.where[:] = A.where


@njit(cache=True)
def recreate(
    removed,
    n_removed,
    S,
    P,
    near_st,
    simple,
    blink,
    customers,
    scratch,
    need,
    sdep,
    scharge,
    G,
):
    """Insert ``removed[:n_removed]`` in a random one of SISR's orders."""
    early, late = P.early, P.late
    deliv = P.deliv
    dist = P.dist
    keys = np.empty(n_removed)
    u = np.random.random()
    for i in range(n_removed):
        c = removed[i]
        if u < 0.4:
            keys[i] = np.random.random()
        elif u < 0.7:
            keys[i] = -deliv[c].sum()
        elif u < 0.85:
            keys[i] = -dist[0, c]
        elif u < 0.9:
            keys[i] = dist[0, c]
        elif u < 0.95:
            keys[i] = late[c] - early[c]
        else:
            keys[i] = late[c]
    order = np.argsort(keys)
    where = S.where
    for i in range(n_removed):
        c = removed[order[i]]
        _best, r, pos, s, side = best_insertion(
            c, S, P, near_st, simple, blink, scratch, need, sdep, scharge, G
        )
        if r >= 0:
            apply_insertion(c, r, pos, s, side, S, P, need, simple)
        else:
            where[c] = -1


@njit(cache=True)
def ruin(
    S, P, adj, customers, avg_remove, max_string, removed, simple, scratch, need, sdep, scharge
):
    """Remove strings of customers around a random seed; returns how many were removed."""
    routes, rlen, where, rload, dirty = S.routes, S.rlen, S.where, S.rload, S.dirty
    is_st = P.is_st
    deliv = P.deliv
    n_routes = rlen.shape[0]
    used = 0
    card = 0
    for r in range(n_routes):
        if rlen[r] > 0:
            used += 1
            card += rlen[r]
    n_rem = 0
    # Customers left out earlier get another chance first.
    for c in customers:
        if where[c] < 0:
            removed[n_rem] = c
            n_rem += 1
    if used == 0:
        return n_rem
    avg_card = card / used
    ls_max = min(float(max_string), avg_card)
    ks_max = 4.0 * avg_remove / (1.0 + ls_max) - 1.0
    ks = int(np.random.random() * ks_max) + 1
    seed = customers[np.random.randint(0, customers.shape[0])]
    touched = np.zeros(n_routes, np.bool_)
    n_touched = 0
    for j in range(adj.shape[1]):
        if n_touched >= ks:
            break
        c = adj[seed, j]
        if c < 0:
            break
        r = where[c]
        if r < 0 or touched[r]:
            continue
        touched[r] = True
        dirty[r] = True
        n_touched += 1
        n = rlen[r]
        lmax = min(float(n), ls_max)
        length = int(np.random.random() * lmax) + 1
        pos_c = 0
        for i in range(n):
            if routes[r, i] == c:
                pos_c = i
        lo_min = max(0, pos_c - length + 1)
        lo_max = min(pos_c, n - length)
        if lo_max < lo_min:
            lo_max = lo_min
        lo = lo_min + np.random.randint(0, lo_max - lo_min + 1)
        keep_one = length >= 3 and np.random.random() < 0.5
        kept = lo + 1 + np.random.randint(0, length - 2) if keep_one else -1
        # Remove positions lo..lo+length-1 (but the kept one), from the back.
        for i in range(min(n, lo + length) - 1, lo - 1, -1):
            node = routes[r, i]
            if i == kept or is_st[node]:
                continue  # stations stay; drop_stations removes the unneeded ones
            remove_at(r, i, routes, rlen)
            if not is_st[node]:
                removed[n_rem] = node
                n_rem += 1
                where[node] = -1
                for k in range(rload.shape[1]):
                    rload[r, k] -= deliv[node, k]
        if simple:
            refresh_simple(r, S, P)
        else:
            drop_stations(r, S, P, need, scratch, sdep, scharge)
    return n_rem


@njit(cache=True)
def construct(S, P, near_st, simple, customers, scratch, need, sdep, scharge, G):
    """Initial solution: every customer inserted greedily (farthest from the depot first)."""
    removed = customers.copy()
    recreate_order = np.argsort(-P.dist[0, customers])
    for i in range(customers.shape[0]):
        removed[i] = customers[recreate_order[i]]
    for i in range(customers.shape[0]):
        c = removed[i]
        _best, r, pos, s, side = best_insertion(
            c, S, P, near_st, simple, 0.0, scratch, need, sdep, scharge, G
        )
        if r >= 0:
            apply_insertion(c, r, pos, s, side, S, P, need, simple)


@njit(cache=True)
def search(
    S,
    B,
    C,
    P,
    near_st,
    adj,
    customers,
    simple,
    n_iter,
    temp0,
    temp1,
    penalty,
    avg_remove,
    max_string,
    blink,
    scratch,
    need,
    sdep,
    scharge,
    removed,
    G,
):
    """``n_iter`` SISR iterations cooling from ``temp0`` to ``temp1``.

    ``S`` is the current solution, ``B`` the best, ``C`` scratch for the candidate.  Returns
    ``(current cost, best cost)``.
    """
    cur = objective(S, penalty, customers)
    best = objective(B, penalty, customers)
    # C mirrors S between iterations; only the routes an iteration touched are copied back
    # (to S on acceptance, from S on rejection), which keeps an iteration cheap.
    copy_state(S, C)
    flags = C.dirty
    flags[:] = False
    for it in range(n_iter):
        temp = temp0 * (temp1 / temp0) ** (it / max(1, n_iter))
        n_rem = ruin(
            C,
            P,
            adj,
            customers,
            avg_remove,
            max_string,
            removed,
            simple,
            scratch,
            need,
            sdep,
            scharge,
        )
        recreate(
            removed,
            n_rem,
            C,
            P,
            near_st,
            simple,
            blink,
            customers,
            scratch,
            need,
            sdep,
            scharge,
            G,
        )
        cand = objective(C, penalty, customers)
        if cand < cur - temp * np.log(np.random.random()):
            # B.dirty: the routes in which the current solution differs from the best, so
            # that a new best copies those alone.
            for r in range(flags.shape[0]):
                if flags[r]:
                    B.dirty[r] = True
            sync(C, S, flags)
            cur = cand
            if cand < best - 1e-9:
                sync(C, B, B.dirty)
                best = cand
        else:
            sync(S, C, flags)
    return cur, best
