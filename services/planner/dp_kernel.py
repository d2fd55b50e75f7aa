"""The DP's inner loops over slots and states, compiled by numba (plain Python where numba is missing).

One function, ``_best``, prices every move from one SOC against the next slot's value function: the backward pass
calls it at every grid state, the forward pass at the real (continuous) SOC, so the plan follows the real physics
and decides from where the battery really is, not from the nearest grid point. Values between grid points are
linear interpolations; a grid charge may stop at any grid point or at the rate limit (with a piecewise-linear
value those are the only places a best target can be), so the grid's rounding is never exploited.

Ties go to the earlier candidate: self-use, then hold, then the smallest charge. A move must be cheaper by more
than ``TIE_GBP`` to win, so equal-cost plans do not flip with rounding noise between replans.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

try:  # numba turns these loops into machine code; without it they still run, about a hundred times slower
    import numba

    COMPILED = True
except ImportError:  # pragma: no cover - numba is a pinned dependency; this keeps a broken install planning
    numba = None
    COMPILED = False


def jit(**options: Any) -> Callable[[F], F]:
    """``numba.njit`` with its on-disk cache (a cold compile takes seconds), or without the cache where no cache
    directory is writable (numba refuses to define a cached function there; set ``NUMBA_CACHE_DIR``)."""

    def wrap(fn: F) -> F:
        if numba is None:  # pragma: no cover
            return fn
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(**options)(fn)

    return wrap


TIE_GBP = 1e-12
# Slots whose move is fixed (``mode``), not chosen: a manual window (hold, or charge to a cap), a Saving Session
# (self-use only: the battery covers what it can, nothing is bought), a free-electricity session (charge to a cap).
FREE, FIXED_HOLD, FIXED_CHARGE, NO_GRID = 0, 1, 2, 3


@jit(inline="always")
def _interp(v: np.ndarray, x: float, q: float) -> float:
    top = v.shape[0] - 1
    u = x * (1.0 / q)
    i = int(u)
    if i >= top:
        return v[top]
    if u <= 0.0:
        return v[0]
    return v[i] + (u - i) * (v[i + 1] - v[i])


@jit(inline="always")
def _without_grid(
    s: float, p: float, e: float, d: float, sur: float, v: np.ndarray, par: np.ndarray
) -> tuple[float, int, float, float, float, float]:
    """The better of self-use and hold from stored energy ``s``: (cost + next value, move, next SOC), and what a
    grid charge builds on: (SOC after the PV, PV stored as AC kWh, the slot's cost without grid charging)."""
    q, full, lo, ec, ed, w, chg, dmax = par[0], par[1], par[2], par[4], par[5], par[6], par[7], par[8]
    # Hold: no discharge; a PV surplus charges (up to the charge power and full), the rest is exported.
    pv_in = min(sur, chg, max(full - s, 0.0) / ec)
    s1 = s + pv_in * ec
    base = p * d - e * (sur - pv_in) + w * pv_in * ec
    hold = _interp(v, s1, q) + base
    if d <= 0.0:  # with no deficit, self-use is hold: it keeps the name self_use
        return hold, 0, s1, s1, pv_in, base
    dc = min(min(d, dmax) / ed, max(s - lo, 0.0))  # self-use: the deficit from the battery down to the reserve
    su = _interp(v, s - dc, q) + p * (d - dc * ed) + w * dc
    if hold < su - TIE_GBP:
        return hold, 1, s1, s1, pv_in, base
    return su, 0, s - dc, s1, pv_in, base


@jit(inline="always")
def _charge_limit(s1: float, pv_in: float, par: np.ndarray) -> float:
    """The highest SOC a grid charge can reach from ``s1`` this slot (rate, total charge power and cap)."""
    return min(s1 + min(par[9], par[7] - pv_in) * par[4], par[3])


@jit()
def _best(
    s: float, p: float, e: float, d: float, sur: float, ok: bool, v: np.ndarray, par: np.ndarray
) -> tuple[float, int, float]:
    """(cost + value of the next state, move, SOC after the slot) of the cheapest move from stored energy ``s``."""
    best, move, nxt, s1, pv_in, base = _without_grid(s, p, e, d, sur, v, par)
    if ok:  # grid charge on top of the PV: to a grid point or as far as the rate and the cap allow
        q, ec, w = par[0], par[4], par[6]
        hi = _charge_limit(s1, pv_in, par)
        if hi > s1 + 1e-12:
            per = p / ec + w  # money per stored kWh added
            for j in range(math.floor(s1 / q + 1e-9) + 1, math.floor(hi / q + 1e-9) + 1):
                c = v[j] + per * (j * q - s1) + base
                if c < best - TIE_GBP:
                    best, move, nxt = c, 2, j * q
            c = _interp(v, hi, q) + per * (hi - s1) + base
            if c < best - TIE_GBP:
                best, move, nxt = c, 2, hi
    return best, move, nxt


@jit()
def _fixed(
    s: float, p: float, e: float, d: float, sur: float, mode: int, cap: float, v: np.ndarray, par: np.ndarray
) -> tuple[float, int, float]:
    """(cost + value of the next state, move, SOC after) of a slot whose move is fixed by ``mode``."""
    q, full, lo, ec, ed, w, chg, dmax = par[0], par[1], par[2], par[4], par[5], par[6], par[7], par[8]
    if mode == NO_GRID and d > 0.0:  # self-use: the deficit from the battery down to the reserve
        dc = min(min(d, dmax) / ed, max(s - lo, 0.0))
        return _interp(v, s - dc, q) + p * (d - dc * ed) + w * dc, 0, s - dc
    pv_in = min(sur, chg, max(full - s, 0.0) / ec)
    s1 = s + pv_in * ec
    base = p * d - e * (sur - pv_in) + w * pv_in * ec
    if mode == FIXED_CHARGE:
        hi = min(s1 + min(par[9], chg - pv_in) * ec, min(cap, full))
        if hi > s1 + 1e-12:
            return _interp(v, hi, q) + (p / ec + w) * (hi - s1) + base, 2, hi
    return _interp(v, s1, q) + base, 1 if mode != NO_GRID else 0, s1


def backward(
    price: np.ndarray,
    export_price: np.ndarray,
    deficit: np.ndarray,
    surplus: np.ndarray,
    charge_ok: np.ndarray,
    terminal: np.ndarray,
    par: np.ndarray,
    mode: np.ndarray | None = None,
    cap: np.ndarray | None = None,
) -> np.ndarray:
    """``backward_fixed`` with no fixed slots unless ``mode`` and ``cap`` are given."""
    mode, cap = _fixed_arrays(price.shape[0], mode, cap)
    return backward_fixed(price, export_price, deficit, surplus, charge_ok, terminal, par, mode, cap)


def forward(
    soc0: float,
    price: np.ndarray,
    export_price: np.ndarray,
    deficit: np.ndarray,
    surplus: np.ndarray,
    charge_ok: np.ndarray,
    values: np.ndarray,
    par: np.ndarray,
    mode: np.ndarray | None = None,
    cap: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``forward_fixed`` with no fixed slots unless ``mode`` and ``cap`` are given."""
    mode, cap = _fixed_arrays(price.shape[0], mode, cap)
    return forward_fixed(soc0, price, export_price, deficit, surplus, charge_ok, values, par, mode, cap)


def _fixed_arrays(n: int, mode: np.ndarray | None, cap: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    mode = np.zeros(n, np.int8) if mode is None else np.ascontiguousarray(mode, dtype=np.int8)
    cap = np.zeros(n) if cap is None else np.ascontiguousarray(cap, dtype=float)
    return mode, cap


@jit()
def backward_fixed(
    price: np.ndarray,
    export_price: np.ndarray,
    deficit: np.ndarray,
    surplus: np.ndarray,
    charge_ok: np.ndarray,
    terminal: np.ndarray,
    par: np.ndarray,
    mode: np.ndarray,
    cap: np.ndarray,
) -> np.ndarray:
    """The optimal cost-to-go (T + 1, states) from every slot and grid state; row T is ``terminal``.

    The same choice as ``_best`` at every grid state, with the charge band's minimum over grid points kept by a
    monotone queue: both ends of the band only move up with the state, so a slot costs O(states)."""
    t_len, n = price.shape[0], terminal.shape[0]
    q, ec, w = par[0], par[4], par[6]
    values = np.empty((t_len + 1, n))
    values[t_len] = terminal
    u = np.empty(n)  # next value + money to charge up to each grid point, from SOC 0
    queue = np.empty(n, np.int64)
    for t in range(t_len - 1, -1, -1):
        v = values[t + 1]
        p, e, d, sur, ok = price[t], export_price[t], deficit[t], surplus[t], charge_ok[t]
        if mode[t] != FREE:
            for i in range(n):
                values[t, i] = _fixed(i * q, p, e, d, sur, mode[t], cap[t], v, par)[0]
            continue
        per = p / ec + w
        if ok:
            for j in range(n):
                u[j] = v[j] + per * (j * q)
        head, tail, pushed = 0, 0, 0
        for i in range(n):
            best, _, _, s1, pv_in, base = _without_grid(i * q, p, e, d, sur, v, par)
            if ok:
                hi = _charge_limit(s1, pv_in, par)
                if hi > s1 + 1e-12:
                    last = math.floor(hi / q + 1e-9)
                    while pushed <= last:  # ties keep the smaller charge in front
                        while tail > head and u[queue[tail - 1]] > u[pushed]:
                            tail -= 1
                        queue[tail] = pushed
                        tail += 1
                        pushed += 1
                    first = math.floor(s1 / q + 1e-9) + 1
                    while head < tail and queue[head] < first:
                        head += 1
                    if head < tail:
                        c = u[queue[head]] - per * s1 + base
                        if c < best - TIE_GBP:
                            best = c
                    c = _interp(v, hi, q) + per * (hi - s1) + base
                    if c < best - TIE_GBP:
                        best = c
            values[t, i] = best
    return values


@jit()
def forward_fixed(
    soc0: float,
    price: np.ndarray,
    export_price: np.ndarray,
    deficit: np.ndarray,
    surplus: np.ndarray,
    charge_ok: np.ndarray,
    values: np.ndarray,
    par: np.ndarray,
    mode: np.ndarray,
    cap: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From the real SOC, each slot's cheapest move against the next slot's values: (moves, SOC after, grid kWh,
    import positive and export negative)."""
    t_len = price.shape[0]
    full, ec, ed = par[1], par[4], par[5]
    moves = np.empty(t_len, np.int8)
    socs = np.empty(t_len)
    grid = np.empty(t_len)
    s = min(max(soc0, 0.0), full)
    for t in range(t_len):
        d, sur = deficit[t], surplus[t]
        if mode[t] != FREE:
            _, move, nxt = _fixed(s, price[t], export_price[t], d, sur, mode[t], cap[t], values[t + 1], par)
        else:
            _, move, nxt = _best(s, price[t], export_price[t], d, sur, charge_ok[t], values[t + 1], par)
        if nxt < s:  # discharged: the deficit less what the battery gave
            g = d - (s - nxt) * ed
        else:  # PV first (what it did not store is exported), then the grid charge
            pv_in = min(sur, par[7], max(full - s, 0.0) / ec)
            g = d - (sur - pv_in) + (nxt - s - pv_in * ec) / ec
        moves[t], socs[t], grid[t] = move, nxt, g
        s = nxt
    return moves, socs, grid


def warm_up(log: Any = None) -> float:
    """Compile (or load from the cache) every kernel with the argument types the planner uses, so that a
    service's first plan is not seconds late. Returns (and logs, given a logger) the seconds it took."""
    started = time.perf_counter()
    n = 3
    par = np.array([1.0, 2.0, 0.0, 2.0, 0.95, 0.95, 0.0, 2.5, 2.5, 1.65])
    one = np.ones(1)
    ok = np.ones(1, dtype=np.bool_)
    mode, cap = np.zeros(1, np.int8), np.zeros(1)
    values = backward_fixed(one, one, one, one, ok, np.zeros(n), par, mode, cap)
    forward_fixed(0.0, one, one, one, one, ok, values, par, mode, cap)
    seconds = time.perf_counter() - started
    if log is not None:
        log.info("dp_kernel_ready", seconds=round(seconds, 2), compiled=COMPILED)
    return seconds


if __name__ == "__main__":  # `python -m services.planner.dp_kernel`: fill the cache (make test, the image build)
    warm_up()
    print(f"dp_kernel: {'compiled' if COMPILED else 'numba missing: plain Python'}")
