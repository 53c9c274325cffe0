"""Jumps on G at fixed x: the padded neighbour table, jump rates, the rounds of the fixed-x chain, :func:`jump_step`.

Total rate ``lambda(x, g) = sum_{g'} k(g -> g'; x)`` from the rate-law registry (:mod:`sdot.rates`); a
particle leaves with probability ``1 - exp(-dt lambda)`` to g' with probability ``k(g -> g'; x) / lambda``.
``method="exact"`` continues the fixed-x chain after the first jump until dt is used up (exact in law for
any dt), ``"single"`` allows one jump per step, ``"explicit"`` uses the first-order probability
``dt lambda`` and refuses or sub-steps when ``dt max lambda >= 1``. Cost O(N * max_degree): f is evaluated
only at each particle's own node and its neighbours, through a padded table built once from the CSR graph.
"""

from __future__ import annotations

import math
import sys
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import is_torch, namespace
from ..potentials import Potential
from ..rates import RateLaw, get_rate_law, glauber, metropolis, upwind
from ..space import SemiDiscreteSpace
from ..validation import nonnegative, one_of, positive
from . import random as draws
from .arrays import all_finite, axis, nonzero
from .kernels import QuadraticKernel, columns
from .nonfinite import NonFiniteError, check_policy, handle_nonfinite
from .state import ParticleState, StepInfo, check_state
from .workspace import WS

__all__ = ["JUMP_METHODS", "ON_LARGE_STEP", "NeighbourTable", "neighbour_table", "jump_rates", "jump_step",
           "run_jumps", "check_law", "check_method", "check_on_large_step"]

JUMP_METHODS = ("exact", "single", "explicit")
ON_LARGE_STEP = ("substep", "raise")


def _check_values(v: Any, n: int, what: str) -> None:
    if tuple(v.shape) != (n,):
        raise ValueError(f"the potential returned {what} of shape {tuple(v.shape)}, expected ({n},)")


@dataclass
class NeighbourTable:
    """Padded neighbour table of G: ``nbr[j, g]`` is the j-th neighbour of g, ``wts[j, g]`` its weight.

    Shape (D, K) with D the maximum degree (row-major over j so that ``nbr[j]`` gathers are 1-D).
    Padding entries point to g itself with weight 0 (rate 0). Built once per graph from the CSR
    structure and cached per backend/device.
    """

    nbr: Any
    wts: Any
    degree: np.ndarray
    uniform_weight: float | None  # the common weight when every node has D edges of one weight

    @property
    def max_degree(self) -> int:
        return int(self.nbr.shape[0])


_TABLES: "weakref.WeakKeyDictionary[SemiDiscreteSpace, dict]" = weakref.WeakKeyDictionary()


def neighbour_table(space: SemiDiscreteSpace, like: Any = None) -> NeighbourTable:
    """The (cached) padded neighbour table of ``space`` on the backend/device of ``like``."""
    key = ("numpy", None) if like is None or not is_torch(like) else ("torch", str(like.device))
    cache = _TABLES.setdefault(space, {})
    if key in cache:
        return cache[key]
    if key[0] == "numpy":
        W = space.weights
        K = W.shape[0]
        deg = np.diff(W.indptr).astype(np.int64)
        D = int(deg.max(initial=0))
        nbr = np.tile(np.arange(K, dtype=np.int64), (D, 1))
        wts = np.zeros((D, K))
        rows = np.repeat(np.arange(K), deg)
        slot = np.arange(W.nnz) - W.indptr[rows]
        nbr[slot, rows] = W.indices
        wts[slot, rows] = W.data
        uw = float(W.data[0]) if W.nnz and np.all(W.data == W.data[0]) and np.all(deg == D) else None
        table = NeighbourTable(nbr, wts, deg, uw)
    else:
        base = neighbour_table(space)
        torch = sys.modules["torch"]
        table = NeighbourTable(torch.as_tensor(base.nbr, device=like.device),
                               torch.as_tensor(base.wts, device=like.device), base.degree, base.uniform_weight)
    cache[key] = table
    return table


def _rates_into(out: Any, law: RateLaw, f0: Any, fh: Any, w: Any, T: float) -> None:
    """out[:] = k(g -> h; x), in place for the shipped laws on numpy, through ``law.rate`` otherwise."""
    if isinstance(out, np.ndarray) and law._rate in (glauber._rate, metropolis._rate, upwind._rate):
        np.subtract(f0, fh, out=out)                       # f_g - f_h
        scalar_w = not isinstance(w, np.ndarray)
        if law._rate is glauber._rate:
            out *= 1.0 / (2.0 * T)
            np.exp(out, out=out)
            out *= T * (w if scalar_w else 1.0) / law.kappa
        elif law._rate is metropolis._rate:
            out *= 1.0 / T
            np.minimum(out, 0.0, out=out)
            np.exp(out, out=out)
            out *= T * (w if scalar_w else 1.0) / law.kappa
        else:
            np.maximum(out, 0.0, out=out)
            out *= (w if scalar_w else 1.0) / law.kappa
        if not scalar_w:
            out *= w
        return
    out[...] = law.rate(f0, fh, w, T)


def jump_rates(x: Any, g: Any, space: SemiDiscreteSpace, potential: Potential, law: str | RateLaw,
               T: float, kappa: float = 1.0):
    """Rates to the padded neighbours at fixed x.

    Returns ``(nbr, rates)`` of shape (D, n): ``rates[j, i] = k(g_i -> nbr[j, i]; x_i)``, padding
    entries 0. Evaluates f only at each particle's node and its neighbours.
    """
    law = get_rate_law(law, kappa)
    table = neighbour_table(space, x)
    C, _ = _cumulative_rates(x, g, table, potential, law, T)
    xp = namespace(C)
    rates = C.clone() if xp is not np else C.copy()
    if table.max_degree > 1:
        rates[1:] = C[1:] - C[:-1]
    nbr = xp.stack([table.nbr[j][g] for j in range(table.max_degree)]) if table.max_degree else table.nbr[:, :0]
    return nbr, rates


def _cumulative_rates(x: Any, g: Any, table: NeighbourTable, potential: Potential, law: RateLaw, T: float):
    """Cumulative rates C (D, n) over the padded neighbours (C[-1] = lambda) and f(x, g) (n,).

    numpy: both are workspace buffers, valid until the next call."""
    n = g.shape[0]
    D = table.max_degree
    if isinstance(x, np.ndarray):
        kern = QuadraticKernel.get(potential, x)
        if kern is not None:
            cols = columns(x)
            f0 = kern.values(cols, g, WS.get("f0", n, kern.dtype))
            fval = lambda nodes: kern.values(cols, nodes, WS.get("fh", n, kern.dtype))  # noqa: E731
        else:
            f0 = potential(x, g)
            fval = lambda nodes: potential(x, nodes)  # noqa: E731
        _check_values(f0, n, "values")
        C = WS.get("C", (D, n), np.result_type(f0.dtype, np.float32))
        hbuf = WS.get("h", n, np.int64)
        for j in range(D):
            h = np.take(table.nbr[j], g, out=hbuf)
            fh = fval(h)
            w = table.uniform_weight if table.uniform_weight is not None else np.take(
                table.wts[j], g, out=WS.get("w", n, np.float64))
            _rates_into(C[j], law, f0, fh, w, T)
            if j:
                C[j] += C[j - 1]
        return C, f0
    f0 = potential(x, g)
    _check_values(f0, n, "values")
    torch = sys.modules["torch"]
    C = torch.empty((D, n), dtype=f0.dtype, device=f0.device)
    for j in range(D):
        h = table.nbr[j][g]
        w = table.uniform_weight if table.uniform_weight is not None else table.wts[j][g].to(f0.dtype)
        C[j] = law.rate(f0, potential(x, h), w, T)
        if j:
            C[j] += C[j - 1]
    return C, f0


def _select_destination(C: Any, cols: Any, target: Any, table: NeighbourTable, gsel: Any) -> Any:
    """New labels for particles ``cols`` (columns of C): the first neighbour slot j with
    ``C[j] > target``."""
    xp = namespace(C)
    Cs = C[:, cols]
    D = Cs.shape[0]
    k = (Cs <= target[None, :]).sum(**axis(xp, 0))
    over = k >= D
    if bool(over.any()):  # target rounded up to lambda: take the last slot with a positive rate
        oi = nonzero(over)
        inc = Cs[:, oi]
        if D > 1:
            inc = xp.concatenate([inc[:1], inc[1:] - inc[:-1]]) if xp is np else xp.cat([inc[:1], inc[1:] - inc[:-1]])
        pos = inc > 0
        rev = pos[::-1] if xp is np else pos.flip(0)
        last = (D - 1) - (rev.argmax(0) if xp is np else rev.int().argmax(0))
        k[oi] = last
    return table.nbr[k, gsel]


def _jump_round(state: ParticleState, idx: Any, tau: Any, table: NeighbourTable, potential: Potential,
                law: RateLaw, T: float, method: str, nonfinite: str, pre: tuple | None = None,
                undo: list | None = None):
    """One round of jumps for particles ``idx`` (None = all) with remaining times ``tau`` (scalar or
    per particle). Returns (global indices of the jumpers, their remaining time or None); appends
    (jumpers, old labels) to ``undo`` when given."""
    if idx is None:
        x, g = state.x, state.g
    else:
        x, g = state.x[idx], state.g[idx]
    n = g.shape[0]
    C, f0 = pre if pre is not None else _cumulative_rates(x, g, table, potential, law, T)
    D = table.max_degree
    lam = C[D - 1]
    if not (all_finite(f0) and all_finite(lam)):
        xp = namespace(f0)
        badm = ~(xp.isfinite(f0) & xp.isfinite(lam))
        loc = nonzero(badm)
        glob = loc if idx is None else idx[loc]
        C[:, loc] = 0.0  # they do not jump this round (frozen, or just replaced by a clone)
        handle_nonfinite(state, glob, nonfinite, "potential value or jump rate")
    numpy = isinstance(C, np.ndarray)
    if n:
        mr = float(lam.max())
        state.info.max_rate = mr if math.isnan(state.info.max_rate) else max(state.info.max_rate, mr)
    scalar_tau = not hasattr(tau, "shape")
    if numpy:
        u = state.rng.random(out=WS.get("u", n, np.float64))
        prob = WS.get("prob", n, np.float64)
        np.multiply(lam, tau, out=prob)
        if method != "explicit":
            np.negative(prob, out=prob)
            np.expm1(prob, out=prob)
            np.negative(prob, out=prob)                         # 1 - exp(-tau lambda)
        jump = np.less(u, prob, out=WS.get("jump", n, np.bool_))
        J = np.flatnonzero(jump)
    else:
        torch = sys.modules["torch"]
        u = draws.uniform(state, n)
        prob = lam.to(torch.float64) * tau
        if method != "explicit":
            prob = -torch.expm1(-prob)
        J = nonzero(u < prob)
    nj = int(J.shape[0])
    gidx = J if idx is None else idx[J]
    if nj == 0:
        return gidx, None
    lamJ = lam[J] if numpy else lam[J].to(sys.modules["torch"].float64)
    xp = namespace(lamJ)
    if method == "exact":
        # jump time from u (u < P  <=>  s < tau), destination from a fresh uniform
        s = -xp.log1p(-u[J]) / lamJ
        tau_left = (tau - s) if scalar_tau else (tau[J] - s)
        tau_left = xp.clip(tau_left, 0.0, None) if xp is np else tau_left.clamp(min=0.0)
        target = draws.uniform(state, nj) * lamJ
    else:
        tau_left = None
        target = (u[J] / prob[J]) * lamJ
    old = g[J]
    new = _select_destination(C, J, target if numpy else target.to(C.dtype), table, old)
    state.g[gidx] = new
    state.info.n_jumps += nj
    if undo is not None:
        undo.append((gidx, old))
    return gidx, tau_left


def run_jumps(state: ParticleState, table: NeighbourTable, potential: Potential, law: RateLaw, T: float,
              dt: float, method: str, nonfinite: str, on_large_step: str, max_rounds: int) -> None:
    """Jumps for time dt by ``method`` (no validation; ``state.info`` accumulates the counts)."""
    if state.n_particles == 0 or table.max_degree == 0:
        return
    if method == "explicit":
        _explicit_jumps(state, table, potential, law, T, dt, nonfinite, on_large_step, depth=0)
        return
    # under "raise" a non-finite value met after a jump (a later round) undoes this step's jumps
    undo = [] if nonfinite == "raise" and method == "exact" else None
    idx, tau = _jump_round(state, None, dt, table, potential, law, T, method, nonfinite, undo=undo)
    rounds = 1
    if method == "exact":
        try:
            while tau is not None and rounds < max_rounds:
                idx, tau = _jump_round(state, idx, tau, table, potential, law, T, method, nonfinite, undo=undo)
                rounds += 1
        except NonFiniteError:
            for gidx, old in reversed(undo):
                state.g[gidx] = old
            raise
        if tau is not None:
            warnings.warn(f"jump_step: {int(idx.shape[0])} particles still jumping after max_rounds = "
                          f"{max_rounds} rounds; their remaining time was dropped", RuntimeWarning, stacklevel=3)
    state.info.jump_rounds = max(state.info.jump_rounds, rounds)


def _explicit_jumps(state, table, potential, law, T, dt, nonfinite, on_large_step, depth):
    """First-order jumps with probability dt * lambda; refuses or sub-steps when dt max lambda >= 1."""
    C, f0 = _cumulative_rates(state.x, state.g, table, potential, law, T)
    lam = C[table.max_degree - 1]
    fin = namespace(lam).isfinite(lam)
    max_rate = float(lam[fin].max()) if bool(fin.any()) else 0.0
    if dt * max_rate >= 1.0:
        if on_large_step == "raise":
            raise ValueError(f"explicit jump step with dt * max_rate = {dt * max_rate:.3g} >= 1 "
                             f"(dt = {dt:g}, max rate = {max_rate:.3g}): dt*lambda is not a probability; "
                             "lower dt, use method='exact', or on_large_step='substep'")
        n_sub = int(math.ceil(dt * max_rate / 0.5))
        if depth == 0:
            warnings.warn(f"explicit jump step: dt * max_rate = {dt * max_rate:.3g} >= 1; "
                          f"splitting dt = {dt:g} into {n_sub} sub-steps", RuntimeWarning, stacklevel=4)
        for _ in range(n_sub):
            _explicit_jumps(state, table, potential, law, T, dt / n_sub, nonfinite, on_large_step, depth + 1)
        state.info.substeps = max(state.info.substeps, n_sub)
        return
    _jump_round(state, None, dt, table, potential, law, T, "explicit", nonfinite, pre=(C, f0))
    state.info.jump_rounds = max(state.info.jump_rounds, 1)


def check_law(law: str | RateLaw, kappa: float, T: float) -> RateLaw:
    """The rate law ``law`` (scaled by 1/kappa); TypeError for a nonlinear law, ValueError for a T it refuses."""
    law = get_rate_law(law, kappa)
    if not law.linear:
        raise TypeError(f"rate law {law.name!r} is nonlinear (no jump rate at fixed x); particles need a "
                        "linear law: glauber, metropolis or upwind")
    law.check_temperature(T)
    return law


def check_method(method: str) -> None:
    """ValueError unless ``method`` is one of :data:`JUMP_METHODS`."""
    one_of("jump method", method, JUMP_METHODS)


def check_on_large_step(on_large_step: str) -> None:
    """ValueError unless ``on_large_step`` is ``"substep"`` or ``"raise"``."""
    one_of("on_large_step", on_large_step, ON_LARGE_STEP)


def jump_step(state: ParticleState, space: SemiDiscreteSpace, potential: Potential, law: str | RateLaw = "glauber",
              T: float = 1.0, dt: float = 0.01, *, method: str = "exact", kappa: float = 1.0,
              nonfinite: str = "raise", on_large_step: str = "substep", max_rounds: int = 10_000) -> ParticleState:
    """Jumps on G at fixed x for a time dt with rates ``k(g -> g'; x)`` of the rate law ``law``.

    Total rate ``lambda(x, g) = sum_{g'} k(g -> g'; x)``; a particle jumps with probability
    ``1 - exp(-dt lambda)`` to g' with probability ``k(g -> g'; x) / lambda`` (one uniform per
    particle decides both: jump iff ``u < P``, destination = first neighbour whose cumulative rate
    exceeds ``(u / P) lambda``). Methods:

    ``"exact"`` (default)
        the continuous-time chain at fixed x over [0, dt]: after a jump at time s the particle
        continues from its new node for the remaining ``dt - s`` (rounds over the jumpers only).
        Exact in law for any dt, so Strang splitting keeps its O(dt^2) bias.
    ``"single"``
        at most one jump per step with probability ``1 - exp(-dt lambda)`` (local error O(dt^2)).
    ``"explicit"``
        probability ``dt lambda`` (first order, the NAS code's rule). When ``dt max lambda >= 1``
        it raises (``on_large_step="raise"``) or splits dt into sub-steps with a RuntimeWarning
        (``"substep"``, default).

    Cost O(N * max_degree): f is evaluated at each particle's node and its neighbours only.
    ``kappa`` divides every rate (graph-metric scale, spec 3.3). Non-finite potential values or
    rates follow ``nonfinite``. The state is updated in place and returned; ``state.info`` holds
    the counts.
    """
    check_state(state, potential, space)
    T, dt = nonnegative("T", T), positive("dt", dt)
    check_policy(nonfinite)
    check_method(method)
    check_on_large_step(on_large_step)
    law = check_law(law, kappa, T)
    state.info = StepInfo()
    table = neighbour_table(space, state.x)
    run_jumps(state, table, potential, law, T, dt, method, nonfinite, on_large_step, max_rounds)
    state.t += dt
    return state
