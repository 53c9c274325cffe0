"""The solver registry: every solver of a :class:`~sdot.problem.Problem` behind ``step(state) -> state``.

=================  ==========================================================  ====================
name               solver (its public API, adapted to the contract)            state
=================  ==========================================================  ====================
``grid``           :class:`~sdot.grid.GridSolver` (``time_method``, ``spatial``) DensityState
``jko``            :class:`~sdot.jko.JKOStep` (theta from the law, ``scheme``)  DensityState
``entropic-jko``   :class:`~sdot.jko.EntropicJKOStep` (``eps``; glauber cost)   DensityState
``hamiltonian``    :class:`~sdot.hamiltonian.DampedHamiltonian` (d = 0) /       HamiltonianState
                   :class:`~sdot.hamiltonian.GridHamiltonian` (``gamma``, ``theta``)
``particles``      :class:`~sdot.particles.ParticleSolver`                      ParticleState
``strang``,        :func:`~sdot.particles.strang_step`, :func:`~sdot.particles.lie_step`,
``lie``, ``jump``  :func:`~sdot.particles.jump_step` (jumps at fixed x)         ParticleState
``nasgd``,         :class:`~sdot.nas_rules.NASGD`, :class:`~sdot.nas_rules.NASAGD` (T = 0,   ParticleState
``nasagd``         upwind; ``c = 1 / kappa``; ``energies`` per step)            (labels)
=================  ==========================================================  ====================

Add one with one call, ``register_solver(name, factory, temperature=..., stochastic=...)``, where
``factory(problem, dt=None, **options)`` returns an object following :class:`~sdot.problem.Solver`
(subclass :class:`SolverBase` for the plumbing). The declarations tell the conformance tests
(``tests/test_conformance.py``) which closed form to check: ``temperature`` ``"positive"`` (the
long-time node masses are the Gibbs masses ``p_g ∝ exp(-f_g / T)``) or ``"zero"`` (all mass on the
lowest node), ``stochastic`` (a statistical tolerance) and ``test_options`` (options for that run).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .backend import to_numpy
from .grid import GridSolver, check_density
from .hamiltonian import DampedHamiltonian, GridHamiltonian
from .jko import EntropicJKOStep, JKOStep
from .problem import DensityState, HamiltonianState, Problem, Solver, State
from .registry import Registry
from .validation import nonnegative_int, one_of, positive, positive_int

__all__ = ["SOLVERS", "register_solver", "get_solver", "make_solver", "SolverBase", "GridScheme", "JKOScheme",
           "EntropicJKOScheme", "HamiltonianScheme", "ParticleScheme", "StrangScheme", "LieScheme", "JumpScheme",
           "NASGDScheme", "NASAGDScheme"]

#: name -> solver factory ``factory(problem, dt=None, **options)`` (one :class:`sdot.registry.Registry`).
SOLVERS: Registry = Registry("solver", package="sdot",
                             hint="add one with sdot.register_solver(name, factory, temperature=...)")


def _check_factory(name: str, factory: Any) -> None:
    if not callable(factory):
        raise TypeError(f"solver {name!r}: the factory must be callable as factory(problem, dt=None, **options), "
                        f"got {type(factory).__name__}")


SOLVERS.on_register(_check_factory)


def register_solver(name: str, factory: Any = None, *, temperature: str = "positive", stochastic: bool = False,
                    test_options: dict | None = None, replace: bool = False, **meta: Any) -> Any:
    """Register ``factory(problem, dt=None, **options) -> Solver`` under ``name`` (a decorator without factory).

    ``factory`` may be a lazy ``"module:attr"`` string. ``temperature``: ``"positive"`` (needs T > 0; its
    long-time state is Gibbs), ``"zero"`` (a T = 0 rule: all mass reaches the lowest node) or ``"any"``.
    """
    one_of("temperature", temperature, ("positive", "zero", "any"))
    return SOLVERS.register(name, factory, replace=replace, temperature=temperature, stochastic=bool(stochastic),
                            test_options=dict(test_options or {}), **meta)


def get_solver(name: str) -> Callable[..., Solver]:
    """The factory registered under ``name`` (unknown names raise with a did-you-mean)."""
    return SOLVERS.load(name)


def make_solver(problem: Problem, method: str = "grid", dt: float | None = None, **options: Any) -> Solver:
    """``get_solver(method)(problem, dt=dt, **options)``, checked against the :class:`~sdot.problem.Solver` contract."""
    if not isinstance(problem, Problem):
        raise TypeError(f"make_solver needs a sdot.Problem, got {type(problem).__name__}")
    solver = get_solver(method)(problem, dt=dt, **options)
    if not isinstance(solver, Solver):
        missing = [a for a in ("problem", "dt", "init", "step", "node_masses", "diagnose") if not hasattr(solver, a)]
        raise TypeError(f"solver {method!r} built a {type(solver).__name__} without {missing}; a solver needs "
                        "problem, dt, init(initial), step(state), node_masses(state) and diagnose(state)")
    return solver


# ----------------------------------------------------------------------------------------------
# the shared plumbing
# ----------------------------------------------------------------------------------------------
class SolverBase:
    """Plumbing for a solver: the problem, the step ``dt`` (settable), the temperature of a step."""

    def __init__(self, problem: Problem, dt: float | None = None):
        if not isinstance(problem, Problem):
            raise TypeError(f"a solver needs a sdot.Problem, got {type(problem).__name__}")
        self.problem = problem
        self.dt = dt

    @property
    def dt(self) -> float | None:
        return self._dt

    @dt.setter
    def dt(self, value: float | None) -> None:
        self._dt = None if value is None else positive("dt", value)
        self._on_dt(self._dt)

    def _on_dt(self, dt: float | None) -> None:
        """Hook: pass a new step to the wrapped object."""

    def _step_size(self) -> float:
        if self._dt is None:
            raise ValueError(f"{type(self).__name__}: no step size; pass dt= or set solver.dt before stepping")
        return self._dt

    def temperature(self, state: State) -> float | None:
        """T of the step that starts at ``state`` (the problem's schedule at (t, n_steps))."""
        return self.problem.temperature(state.t, state.n_steps)

    def diagnose(self, state: State) -> dict:
        m = np.asarray(self.node_masses(state), dtype=float)
        return {"t": state.t, "T": self.temperature(state), "mass": float(m.sum()), "m_g": m.tolist()}

    def node_masses(self, state: State) -> np.ndarray:  # pragma: no cover - each solver defines it
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.problem!r}, dt={self._dt})"


def _masses_or_density(initial: Any, K: int, M: int, vol: float) -> np.ndarray:
    """A density (K, M) from a density or, when M = 1, node masses (K,); checked (mass one, >= 0, finite)."""
    if isinstance(initial, DensityState):
        initial = initial.rho
    r = np.asarray(to_numpy(initial), dtype=float)
    if r.shape == (K,) and M == 1:
        r = r[:, None]
    return check_density(r, (K, M), vol, name="rho0")


# ----------------------------------------------------------------------------------------------
# Eulerian: grid schemes, JKO forms
# ----------------------------------------------------------------------------------------------
class GridScheme(SolverBase):
    """:class:`~sdot.grid.GridSolver` behind the contract; ``time_method`` is its ``method``."""

    def __init__(self, problem: Problem, dt: float | None = None, *, time_method: str = "implicit", **options: Any):
        super().__init__(problem, dt)
        T0 = problem.temperature(0.0, 0)
        if T0 is None:
            raise ValueError("the grid solver needs a temperature (Problem(T=...)); got T = None")
        self.impl = GridSolver(problem.space, problem.potential, problem.grid, T0, law=problem.law_or("glauber"),
                               method=time_method, **options)

    @classmethod
    def wrap(cls, solver: GridSolver, schedule: Any = None) -> "GridScheme":
        """Drive an existing GridSolver (with ``schedule``, default its own T, constant)."""
        obj = cls.__new__(cls)
        SolverBase.__init__(obj, Problem(solver.space, solver.potential, solver.T if schedule is None else schedule,
                                         solver.law, solver.grid))
        obj.impl = solver
        return obj

    def _set_temperature(self, state: State) -> None:
        T = self.temperature(state)
        if T is not None:
            self.impl.set_temperature(T)

    def init(self, initial: Any) -> DensityState:
        s = self.impl
        state = DensityState(_masses_or_density(initial, s.K, s.M, s.grid.cell_volume))
        if isinstance(initial, DensityState):
            state.t, state.n_steps = initial.t, initial.n_steps
        self._set_temperature(state)
        return state

    def step(self, state: DensityState) -> DensityState:
        dt = self._step_size()
        self._set_temperature(state)
        rho = self.impl.step(state.rho, dt, check=False)
        return DensityState(rho, state.t + dt, state.n_steps + 1)

    def node_masses(self, state: DensityState) -> np.ndarray:
        return self.impl.node_masses(state.rho)

    def diagnose(self, state: DensityState) -> dict:
        from .diagnostics import diagnose

        return diagnose(self.impl, state.rho, state.t)


#: the JKO conductance theta that realises each rate law's metric (the tau -> 0 limit is that law's flow)
JKO_THETA = {"glauber": "logmean_pi", "metropolis": "logmean_pi_min", "logmean": "logmean"}


class JKOScheme(GridScheme):
    """:class:`~sdot.jko.JKOStep` behind the contract; theta from the problem's law unless given."""

    def __init__(self, problem: Problem, dt: float | None = None, **options: Any):
        SolverBase.__init__(self, problem, dt)
        if "theta" not in options and problem.law is not None:
            if problem.law.name not in JKO_THETA:
                raise ValueError(f"the JKO step realises the laws {sorted(JKO_THETA)} (theta {JKO_THETA}); got law "
                                 f"{problem.law.name!r} (pass theta= to choose the metric directly)")
            options["theta"] = JKO_THETA[problem.law.name]
        self.impl = JKOStep(problem.space, problem.potential, problem.grid, problem.temperature(0.0, 0),
                            kappa=problem.kappa, **options)

    @classmethod
    def wrap(cls, step: JKOStep, schedule: Any = None) -> "JKOScheme":
        """Drive an existing JKOStep (a schedule needs U = entropy)."""
        if schedule is not None and step.T is None:
            raise ValueError(f"a temperature schedule needs U = entropy; the JKO step's energy is {step.energy!r}")
        obj = cls.__new__(cls)
        SolverBase.__init__(obj, Problem(step.space, step.potential, step.T if schedule is None else schedule,
                                         None, step.grid))
        obj.impl = step
        return obj

    def _set_temperature(self, state: State) -> None:
        T = self.temperature(state)
        if T is None:
            return
        if T <= 0:
            raise ValueError(f"schedule gave T = {T!r} at step {state.n_steps}; the JKO step needs T > 0")
        self.impl.set_temperature(T)

    def step(self, state: DensityState) -> DensityState:
        dt = self._step_size()
        self._set_temperature(state)
        # no renormalisation: the mass drift of the optimiser shows in the diagnostics
        res = self.impl.step(state.rho, dt)
        return DensityState(res.rho, state.t + dt, state.n_steps + 1, res.info)

    def node_masses(self, state: DensityState) -> np.ndarray:
        return state.rho.sum(axis=1) * self.impl.grid.cell_volume

    def diagnose(self, state: DensityState) -> dict:
        from .diagnostics import diagnose_jko

        return diagnose_jko(self.impl, state.rho, state.t)


class EntropicJKOScheme(SolverBase):
    """:class:`~sdot.jko.EntropicJKOStep` behind the contract (``eps`` required; default ``graph_cost="glauber"``,
    the tilted cost whose stationary state is Gibbs). A new temperature rebuilds the step."""

    def __init__(self, problem: Problem, dt: float | None = None, *, eps: float, **options: Any):
        super().__init__(problem, dt)
        if "graph_cost" not in options:
            if problem.law is not None and problem.law.name != "glauber":
                raise ValueError(f"the entropic JKO step realises the glauber law (graph_cost='glauber'); got law "
                                 f"{problem.law.name!r} (pass graph_cost= to choose the cost directly)")
            options["graph_cost"] = "glauber"
        self._rate_given = "rate" in options  # else the jump rate scale is T / kappa, following T
        self.eps, self.options = positive("eps", eps), options
        self.impl: EntropicJKOStep | None = None
        self._build(problem.temperature(0.0, 0))

    def _build(self, T: float | None) -> None:
        if T is None:
            raise ValueError("the entropic JKO step needs a temperature (Problem(T=...)); got T = None")
        if self.impl is not None and self.impl.T == T:
            return
        opts = dict(self.options)
        if not self._rate_given and self.problem.kappa != 1.0:
            opts["rate"] = T / self.problem.kappa
        self.impl = EntropicJKOStep(self.problem.space, self.problem.potential, self.problem.grid, T, self.eps, **opts)

    def init(self, initial: Any) -> DensityState:
        s = self.impl
        state = DensityState(_masses_or_density(initial, s.K, s.M, s.grid.cell_volume))
        if isinstance(initial, DensityState):
            state.t, state.n_steps = initial.t, initial.n_steps
        return state

    def step(self, state: DensityState) -> DensityState:
        dt = self._step_size()
        self._build(self.temperature(state))
        rho, info = self.impl.step(state.rho, dt)
        return DensityState(rho, state.t + dt, state.n_steps + 1, info)

    def node_masses(self, state: DensityState) -> np.ndarray:
        return state.rho.sum(axis=1) * self.impl.grid.cell_volume


# ----------------------------------------------------------------------------------------------
# Hamiltonian
# ----------------------------------------------------------------------------------------------
class HamiltonianScheme(SolverBase):
    """:class:`~sdot.hamiltonian.DampedHamiltonian` (d = 0) or :class:`~sdot.hamiltonian.GridHamiltonian`
    behind the contract (options ``theta``, ``gamma``, ``restart``, ``newton_tol``; ``phi0`` at init).
    A new temperature rebuilds the flow (phi is kept)."""

    def __init__(self, problem: Problem, dt: float | None = None, **options: Any):
        super().__init__(problem, dt)
        self.options = options
        self.impl: DampedHamiltonian | None = None
        self._build(problem.temperature(0.0, 0))

    def _build(self, T: float | None) -> None:
        if T is None:
            raise ValueError("the Hamiltonian flow needs a temperature (Problem(T=...), T >= 0); got T = None")
        if self.impl is not None and self.impl.T == T:
            return
        p = self.problem
        if p.dim == 0:
            self.impl = DampedHamiltonian(p.space, p.potential, T, kappa=p.kappa, **self.options)
        else:
            self.impl = GridHamiltonian(p.space, p.potential, p.grid, T, kappa=p.kappa, **self.options)

    def init(self, initial: Any, phi0: Any = None) -> HamiltonianState:
        if isinstance(initial, HamiltonianState):
            return HamiltonianState(np.array(initial.rho, dtype=float), np.array(initial.phi, dtype=float),
                                    initial.t, initial.n_steps)
        h = self.impl
        rho = h._check_rho0(initial).reshape(h.shape)
        phi = np.zeros(h.shape) if phi0 is None else h._flat(phi0, "phi0").reshape(h.shape).copy()
        return HamiltonianState(rho, phi)

    def step(self, state: HamiltonianState) -> HamiltonianState:
        dt = self._step_size()
        self._build(self.temperature(state))
        h = self.impl
        rho, phi = h.step(state.rho, state.phi, state.t, dt)
        t1, restarted = state.t + dt, False
        if h.restart == "gradient" and h.should_restart(t1, rho, phi):  # as DampedHamiltonian.run does
            phi, restarted = np.zeros_like(phi), True
        return HamiltonianState(rho, phi, t1, state.n_steps + 1, restarted)

    def node_masses(self, state: HamiltonianState) -> np.ndarray:
        rho = np.asarray(state.rho, dtype=float)
        return rho if rho.ndim == 1 else rho.sum(axis=-1) * self.impl.cell_volume

    def diagnose(self, state: HamiltonianState) -> dict:
        out = super().diagnose(state)
        K, F = self.impl.kinetic(state.rho, state.phi), self.impl.free_energy(state.rho)
        out.update(kinetic=K, F=F, H=K + F, restarted=state.restarted)
        return out


# ----------------------------------------------------------------------------------------------
# particles and NAS rules (ParticleState, updated in place and returned)
# ----------------------------------------------------------------------------------------------
class _ParticleBase(SolverBase):
    """Particles from a ParticleState, or on d = 0 from node masses (``n_particles`` labels, ``seed``)."""

    def __init__(self, problem: Problem, dt: float | None = None, n_particles: int = 10_000, seed: Any = None):
        super().__init__(problem, dt)
        self.n_particles, self.seed = positive_int("n_particles", n_particles), seed

    def init(self, initial: Any):
        from .particles import ParticleState

        if isinstance(initial, ParticleState):
            return initial
        K = self.problem.n_nodes
        if self.problem.dim != 0:
            raise ValueError(f"particles on d = {self.problem.dim} start from a ParticleState (e.g. "
                             "ParticleState.sample); node masses are enough on d = 0 only")
        m = _masses_or_density(initial, K, 1, 1.0).ravel()
        rng = np.random.default_rng(self.seed)
        return ParticleState.from_labels(rng.choice(K, size=self.n_particles, p=m / m.sum()), rng=rng)

    def node_masses(self, state: Any) -> np.ndarray:
        return state.node_fractions(self.problem.n_nodes)


class ParticleScheme(_ParticleBase):
    """:class:`~sdot.particles.ParticleSolver` behind the contract (its options; ``diffusion`` defaults to
    ``"none"`` on d = 0, ``"langevin"`` otherwise)."""

    def __init__(self, problem: Problem, dt: float | None = None, *, n_particles: int = 10_000, seed: Any = None,
                 **options: Any):
        from .particles import ParticleSolver

        self.impl = None
        super().__init__(problem, dt, n_particles, seed)
        options.setdefault("diffusion", "none" if problem.dim == 0 else "langevin")
        T0 = problem.temperature(0.0, 0)
        self.impl = ParticleSolver(problem.space, problem.potential, 1.0 if T0 is None else T0,
                                   problem.law_or("glauber"), dt=1.0 if dt is None else dt, **options)

    def _on_dt(self, dt: float | None) -> None:
        if dt is not None and self.impl is not None:
            self.impl.dt = dt

    def step(self, state: Any):
        self._step_size()
        T = self.temperature(state)
        if T is not None and self.impl.interaction is None:
            self.impl.T = T
        return self.impl.step(state)


class _SplitStepScheme(_ParticleBase):
    """One particle step function (``strang_step`` / ``lie_step`` / ``jump_step``) behind the contract."""

    _function = ""

    def __init__(self, problem: Problem, dt: float | None = None, *, n_particles: int = 10_000, seed: Any = None,
                 **options: Any):
        super().__init__(problem, dt, n_particles, seed)
        if self._function != "jump_step":
            options.setdefault("diffusion", "none" if problem.dim == 0 else "langevin")
        self.law, self.options = problem.law_or("glauber"), options

    def step(self, state: Any):
        from . import particles

        dt = self._step_size()
        T = self.temperature(state)
        getattr(particles, self._function)(state, self.problem.space, self.problem.potential, self.law,
                                           1.0 if T is None else T, dt, **self.options)
        if self._function == "jump_step":
            state.n_steps += 1  # jump_step advances the clock only
        return state


class StrangScheme(_SplitStepScheme):
    """:func:`~sdot.particles.strang_step`: diffusion dt/2, jumps dt, diffusion dt/2."""

    _function = "strang_step"


class LieScheme(_SplitStepScheme):
    """:func:`~sdot.particles.lie_step`: diffusion dt, then jumps dt."""

    _function = "lie_step"


class JumpScheme(_SplitStepScheme):
    """:func:`~sdot.particles.jump_step`: jumps on G at fixed x only (``method`` exact / single / explicit)."""

    _function = "jump_step"


class _NASRuleScheme(_ParticleBase):
    """A NAS rule (labels only, T = 0, the upwind law; ``c = 1 / kappa`` unless given). ``energies``: an
    array (K,), an array (n_steps, K) read at step n, or a callable n -> (K,); default the problem's node energies."""

    def __init__(self, problem: Problem, dt: float | None = None, *, n_particles: int = 10_000, seed: Any = None,
                 energies: Any = None, c: float | None = None, **options: Any):
        super().__init__(problem, dt, n_particles, seed)
        if problem.law is not None and problem.law.name != "upwind":
            raise ValueError(f"the NAS rules are the upwind (T = 0) flow; got law {problem.law.name!r}")
        self._check_T(problem.temperature(0.0, 0), 0)
        self.energies = problem.node_energies() if energies is None else energies
        self.rule = self._make(problem.space, 1.0 if dt is None else dt, 1.0 / problem.kappa if c is None else c,
                               **options)

    @staticmethod
    def _check_T(T: float | None, k: int) -> None:
        if T not in (None, 0.0):
            raise ValueError(f"the NAS rules are T = 0 rules; the problem's temperature is T = {T!r} at step {k}")

    def _on_dt(self, dt: float | None) -> None:
        if dt is not None and getattr(self, "rule", None) is not None:
            self.rule.dt = dt

    def energies_at(self, n: int) -> np.ndarray:
        """The node energies E_g of step n."""
        E = self.energies
        if callable(E):
            return np.asarray(E(nonnegative_int("n", n)), dtype=float)
        E = np.asarray(E, dtype=float)
        return E[n] if E.ndim == 2 else E

    def step(self, state: Any):
        self._step_size()
        self._check_T(self.temperature(state), state.n_steps)
        return self.rule.step(state, self.energies_at(state.n_steps))


class NASGDScheme(_NASRuleScheme):
    """:class:`~sdot.nas_rules.NASGD`: labels jump downhill with probability ``dt c w (E_g - E_g')_+``."""

    @staticmethod
    def _make(space, dt, c, **options):
        from .nas_rules import NASGD

        return NASGD(space, dt, c, **options)


class NASAGDScheme(_NASRuleScheme):
    """:class:`~sdot.nas_rules.NASAGD`: the velocity-potential rule with adaptive restart (phi lives on the rule)."""

    @staticmethod
    def _make(space, dt, c, **options):
        from .nas_rules import NASAGD

        return NASAGD(space, dt, c, **options)


# ----------------------------------------------------------------------------------------------
# the built-in solvers (lazy entries: imported on first use)
# ----------------------------------------------------------------------------------------------
_STOCHASTIC = {"n_particles": 20_000, "seed": 0}
register_solver("grid", ".solvers:GridScheme")
register_solver("jko", ".solvers:JKOScheme")
register_solver("entropic-jko", ".solvers:EntropicJKOScheme", test_options={"eps": 0.01, "tol": 1e-9})
register_solver("hamiltonian", ".solvers:HamiltonianScheme", temperature="any", test_options={"gamma": 2.0})
register_solver("particles", ".solvers:ParticleScheme", stochastic=True, test_options=_STOCHASTIC)
register_solver("strang", ".solvers:StrangScheme", stochastic=True, test_options=_STOCHASTIC)
register_solver("lie", ".solvers:LieScheme", stochastic=True, test_options=_STOCHASTIC)
register_solver("jump", ".solvers:JumpScheme", stochastic=True, test_options=_STOCHASTIC)
register_solver("nasgd", ".solvers:NASGDScheme", temperature="zero", stochastic=True, test_options=_STOCHASTIC)
register_solver("nasagd", ".solvers:NASAGDScheme", temperature="zero", stochastic=True, test_options=_STOCHASTIC)
