"""External peers: Optuna's TPE and GP samplers behind our ask/tell, over a space's categorical encoding.

    opt = get_optimiser("optuna-tpe", NB201Space(), seed=0)      # needs: pip install 'sdot-nas[peers]'
    res = run_search(opt, bench, budget=200)

The space declares its encoding (:meth:`categorical_encoding` -> ``((name, choices), ...)``, with
:meth:`decode` from a code vector to the architecture string; NB201: 6 edges x 5 operations). Each
Optuna trial suggests one choice per variable; the decoded architecture is canonicalised by the space.

**Query accounting, the same as ours:** each distinct architecture costs one query. A suggestion that
decodes to an architecture already evaluated (or already asked in this batch; NB201 has several codes
per cell once ``none`` edges disconnect parts of it) is answered from the cache: the trial is told
the cached value at once and costs no query. After ``max_repeats`` consecutive repeated suggestions
(the sampler has converged on known points) the peer proposes a uniformly random unevaluated
architecture instead, counted in :attr:`n_fallbacks` and told to Optuna as an added trial, so the
sampler's model sees it. A non-finite evaluation is told as a failed trial.

Samplers: ``optuna-tpe`` = ``optuna.samplers.TPESampler(seed=s)`` and ``optuna-gp`` =
``optuna.samplers.GPSampler(seed=s)``, Optuna's defaults (pass ``sampler_options`` to change them),
maximising the validation value; ``s`` is drawn from the optimiser's seed.

**Refused:** a space without a categorical encoding (TypeError naming the space and the methods it
needs); Optuna not installed (ImportError with the install command).
**State:** :meth:`state_dict` stores the finished trials (codes, values); :meth:`load_state_dict`
re-creates the study from them. The sampler's own random state is not restorable through Optuna's
API, so a resumed peer continues validly but not bit-identically (unlike our optimisers).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..benchmarks.base import Evaluation
from ..spaces.base import SearchSpace
from .base import Optimiser, register_optimiser
from .random import sample_unseen

__all__ = ["OptunaPeer", "OptunaTPE", "OptunaGP", "require_optuna", "categorical_encoding"]

log = logging.getLogger("hotnas.optuna")
INSTALL = "pip install 'sdot-nas[peers]'  (or: pip install 'optuna>=4')"


def require_optuna():
    """Import Optuna or raise ImportError with the install command."""
    try:
        import optuna
    except ImportError as e:  # pragma: no cover - exercised by monkeypatching in the tests
        raise ImportError(f"the Optuna peers need the optional extra 'peers': {INSTALL}") from e
    return optuna


def categorical_encoding(space: SearchSpace) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """The space's declared categorical encoding, checked; TypeError when it has none."""
    fn = getattr(space, "categorical_encoding", None)
    if not callable(fn) or not callable(getattr(space, "decode", None)):
        raise TypeError(f"search space {getattr(space, 'name', type(space).__name__)!r} declares no categorical "
                        "encoding, so an Optuna peer cannot express it: the space needs categorical_encoding() -> "
                        "((name, choices), ...) and decode(codes) -> architecture (NB201Space has both)")
    enc = tuple((str(n), tuple(c)) for n, c in fn())
    if not enc or any(len(c) < 1 for _, c in enc):
        raise ValueError(f"space {space.name!r} declares an empty categorical encoding: {enc!r}")
    return enc


class OptunaPeer(Optimiser):
    """An Optuna sampler as an ask/tell optimiser over the space's categorical encoding (module doc).

    Args:
        space: a space with ``categorical_encoding()`` and ``decode(codes)``.
        seed: seed or Generator (the sampler's seed is drawn from it, and the random fallbacks).
        sampler_options: keyword arguments of the Optuna sampler.
        max_repeats: consecutive cached suggestions before a random unevaluated architecture is
            proposed instead (the cap on suggestions).
        budget: accepted for the config runner; unused (the peer has no schedule).
    """

    name = "optuna"
    sampler_name = ""

    def __init__(self, space: SearchSpace, seed: int | np.random.Generator | None = 0, *,
                 sampler_options: dict[str, Any] | None = None, max_repeats: int = 20,
                 budget: int | None = None):
        super().__init__(space, seed)
        self._optuna = require_optuna()
        self.encoding = categorical_encoding(space)
        if not isinstance(max_repeats, (int, np.integer)) or max_repeats < 1:
            raise ValueError(f"max_repeats must be a positive integer, got {max_repeats!r}")
        self.max_repeats = int(max_repeats)
        self.sampler_options = dict(sampler_options or {})
        self._sampler_seed = int(self.rng.integers(2**31 - 1))
        self._dists = {n: self._optuna.distributions.CategoricalDistribution(list(range(len(c))))
                       for n, c in self.encoding}
        self.values: dict[str, float] = {}      # every architecture told, finite or not
        self._waiting: dict[str, list[Any]] = {}  # asked architecture -> its open trials
        self._history: list[tuple[list[int], float | None]] = []
        self._fallback_codes: dict[str, list[int]] = {}
        self.n_suggestions = 0
        self.n_cached = 0
        self.n_fallbacks = 0
        self._study = self._new_study()

    def _make_sampler(self):
        raise NotImplementedError

    def _new_study(self):
        optuna = self._optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return optuna.create_study(direction="maximize", sampler=self._make_sampler())

    def _codes(self, params: dict[str, int]) -> list[int]:
        return [int(params[n]) for n, _ in self.encoding]

    def _arch(self, codes: list[int]) -> str:
        return self.space.canonical(self.space.decode(codes))

    def _tell_trial(self, trial, codes: list[int], value: float) -> None:
        TS = self._optuna.trial.TrialState
        if np.isfinite(value):
            self._study.tell(trial, float(value))
            self._history.append((codes, float(value)))
        else:
            self._study.tell(trial, state=TS.FAIL)
            self._history.append((codes, None))

    def _add_trial(self, codes: list[int], value: float) -> None:
        """Tell Optuna about an architecture it did not suggest (a fallback) as a finished trial."""
        ft = self._optuna.trial.create_trial(
            params={n: c for (n, _), c in zip(self.encoding, codes)}, distributions=self._dists,
            value=float(value) if np.isfinite(value) else None,
            state=self._optuna.trial.TrialState.COMPLETE if np.isfinite(value) else self._optuna.trial.TrialState.FAIL)
        self._study.add_trial(ft)
        self._history.append((codes, float(value) if np.isfinite(value) else None))

    # ------------------------------------------------------------------ ask / tell
    def ask(self, n: int = 1) -> list[str]:
        out: list[str] = []
        repeats = 0
        while len(out) < n:
            trial = self._study.ask(self._dists)
            self.n_suggestions += 1
            codes = self._codes(trial.params)
            arch = self._arch(codes)
            if arch in self.values:          # answered from the cache: no query
                self._tell_trial(trial, codes, self.values[arch])
                self.n_cached += 1
                repeats += 1
            elif arch in self._waiting:      # a duplicate within the open batch: told when its twin is
                self._waiting[arch].append((trial, codes))
                self.n_cached += 1
                repeats += 1
            else:
                self._waiting[arch] = [(trial, codes)]
                out.append(arch)
                repeats = 0
                continue
            if repeats >= self.max_repeats:  # the cap: a random unevaluated architecture instead
                taken = set(self.values) | set(self._waiting) | set(out)
                extra = sample_unseen(self.space, self.rng, taken, 1)
                if not extra:
                    break
                self._waiting[extra[0]] = []  # no open trial: added to the study when told
                self._fallback_codes[extra[0]] = [int(c) for c in self.space.encoding(extra[0])]
                self.n_fallbacks += 1
                log.info("optuna peer: %d repeated suggestions in a row; proposing a random architecture", repeats)
                out.append(extra[0])
                repeats = 0
        return out

    def tell(self, evals: list[Evaluation]) -> None:
        evals = self.check_evaluations(evals)
        good = []
        for ev in evals:
            self.values[ev.arch] = float(ev.value)
            trials = self._waiting.pop(ev.arch, None)
            if trials is None:
                raise ValueError(f"{ev.arch!r} was not asked by this optimiser")
            if not trials:
                self._add_trial(self._fallback_codes.pop(ev.arch), ev.value)
            for trial, codes in trials:
                self._tell_trial(trial, codes, ev.value)
            if np.isfinite(ev.value):
                good.append(ev)
            else:
                self._seen.add(ev.arch)
        super().tell(good)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        if self._waiting:
            raise ValueError("an Optuna peer can be saved only between batches (every asked architecture told)")
        s = super().state_dict()
        s.update(history=[[list(c), v] for c, v in self._history], values=dict(self.values),
                 counters=[self.n_suggestions, self.n_cached, self.n_fallbacks], sampler_seed=self._sampler_seed)
        return s

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._sampler_seed = int(state["sampler_seed"])
        self.values = {a: float(v) for a, v in state["values"].items()}
        self.n_suggestions, self.n_cached, self.n_fallbacks = (int(v) for v in state["counters"])
        self._study = self._new_study()
        self._history = []
        for codes, v in state["history"]:
            self._add_trial([int(c) for c in codes], float("nan") if v is None else float(v))
        self._waiting = {}


@register_optimiser("optuna-tpe")
class OptunaTPE(OptunaPeer):
    """Optuna's ``TPESampler`` (defaults unless ``sampler_options``) as a peer; see the module doc."""

    name = "optuna-tpe"

    def _make_sampler(self):
        return self._optuna.samplers.TPESampler(seed=self._sampler_seed, **self.sampler_options)


@register_optimiser("optuna-gp")
class OptunaGP(OptunaPeer):
    """Optuna's ``GPSampler`` (defaults unless ``sampler_options``) as a peer; see the module doc."""

    name = "optuna-gp"

    def _make_sampler(self):
        return self._optuna.samplers.GPSampler(seed=self._sampler_seed, **self.sampler_options)
