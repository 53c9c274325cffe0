"""Representation transfer by optimal transport (after Li, Grandvalet, Flamary, Courty, Dou, 2020).

Spec: ``shared/spec/representation-transfer.md``. A layer is the uniform empirical distribution of
its neurons, a neuron being its activation vector on a probe batch X = (x_1..x_n). For a teacher
layer A in R^{p x n_e} and a student layer B in R^{q x n_e} (row j = neuron j):

    C_jk = ||A_j - B_k||^2 / n_e                          (ot.dist(A, B) / n_e)
    D(A, B) = min_{P >= 0, P 1 = 1_p/p, P^T 1 = 1_q/q} <C, P>      (ot.emd2; entropic: ot.sinkhorn2)
    dD/dB = (2 / n_e) (diag(b) B - P^T A)                 (envelope theorem, P the optimal plan)

Dense layers: n_e = n. Convolutional layers (n, C, H, W): neuron = channel; batch and positions
are flattened (n_e = n H W) when both layers have the same resolution, otherwise both are
adaptive-average-pooled to a common resolution (default 1 x 1, n_e = n).

With torch tensors the distance is differentiable in the student's activations (POT back-propagates
through C with the plan held fixed), so it serves as a loss (:func:`transfer`, ``mode="init"``) and
as a regulariser added to the task loss (``mode="regularise"``, lambda decaying linearly to 0).

:func:`init_after_jump` initialises the network of a particle that jumped from one NB201 cell to
another (independent-networks flow): ``fresh`` initialisation, ``carry`` (weights carried over by
name and shape), or ``transfer`` (carry-over, then OT representation transfer from the old network).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import ot
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "NORMALIZATIONS",
    "TransferResult",
    "carry_over",
    "depth_pairs",
    "hidden_representations",
    "init_after_jump",
    "layer_distance",
    "neuron_matrix",
    "normalize_neurons",
    "representation_distance",
    "transfer",
]

NORMALIZATIONS = ("none", "center", "zscore", "l2")
_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.SiLU, nn.Softplus)


# ---------------------------------------------------------------------------------------------------
# The distance
# ---------------------------------------------------------------------------------------------------
def normalize_neurons(M: torch.Tensor, normalize: str = "none", eps: float = 1e-8) -> torch.Tensor:
    """Per-neuron (row) normalisation of a neuron matrix (q, n_e).

    ``none``; ``center`` (subtract the row mean); ``zscore`` (centre, divide by the row standard
    deviation: invariant to a per-neuron affine map s a + t, s > 0); ``l2`` (scale the row to unit
    root-mean-square, ||row|| = sqrt(n_e), so costs stay O(1)). Rows with (near-)zero spread or norm
    (dead neurons) are left at zero rather than blown up.
    """
    if normalize == "none":
        return M
    if normalize == "center":
        return M - M.mean(dim=1, keepdim=True)
    if normalize == "zscore":
        Z = M - M.mean(dim=1, keepdim=True)
        std = Z.pow(2).mean(dim=1, keepdim=True).sqrt()
        return Z / std.clamp_min(eps)
    if normalize == "l2":
        rms = M.pow(2).mean(dim=1, keepdim=True).sqrt()
        return M / rms.clamp_min(eps)
    raise ValueError(f"unknown normalize {normalize!r}; expected one of {NORMALIZATIONS}")


def layer_distance(A, B, *, normalize: str = "none", solver: str = "emd", reg: float = 0.05,
                   return_plan: bool = False):
    """OT distance D(A, B) between two layers given as neuron matrices A (p, n_e), B (q, n_e).

    Uniform weights on neurons, squared-Euclidean cost divided by n_e. ``solver``: ``emd`` (exact,
    ``ot.emd2``) or ``sinkhorn`` (entropic, ``ot.sinkhorn2`` in the log domain with ``reg``; biased,
    D_reg(A, A) > 0). Torch inputs are computed in float64 and give a differentiable 0-d tensor;
    numpy inputs give a float. ``return_plan``: also return the plan P (p, q) (detached / numpy).
    """
    if solver not in ("emd", "sinkhorn"):
        raise ValueError(f"unknown solver {solver!r}; expected 'emd' or 'sinkhorn'")
    is_torch = isinstance(A, torch.Tensor) or isinstance(B, torch.Tensor)
    A = torch.as_tensor(A if isinstance(A, torch.Tensor) else np.ascontiguousarray(A)).to(torch.float64)
    B = torch.as_tensor(B if isinstance(B, torch.Tensor) else np.ascontiguousarray(B)).to(torch.float64)
    if A.dim() != 2 or B.dim() != 2 or A.shape[1] != B.shape[1]:
        raise ValueError(f"neuron matrices must be (p, n_e) and (q, n_e) with the same n_e, got "
                         f"{tuple(A.shape)} and {tuple(B.shape)}")
    if A.shape[0] == 0 or B.shape[0] == 0:
        raise ValueError("a layer needs at least one neuron")
    A, B = normalize_neurons(A, normalize), normalize_neurons(B, normalize)
    p, q, n_e = A.shape[0], B.shape[0], A.shape[1]
    # squared Euclidean; |a|^2 + |b|^2 - 2ab can dip below 0 by rounding
    C = (ot.dist(A, B) / n_e).clamp_min(0.0)
    a = torch.full((p,), 1.0 / p, dtype=torch.float64)
    b = torch.full((q,), 1.0 / q, dtype=torch.float64)
    plan = None
    if solver == "emd":
        if return_plan:
            plan = ot.emd(a, b, C.detach())
            value = (plan * C).sum()
        else:
            value = ot.emd2(a, b, C)
    else:
        kw = dict(method="sinkhorn_log", numItermax=10000, stopThr=1e-12)
        value = ot.sinkhorn2(a, b, C, reg, **kw)
        if return_plan:
            plan = ot.sinkhorn(a, b, C.detach(), reg, **kw)
    if not is_torch:
        value = float(value)
        plan = None if plan is None else plan.numpy()
    return (value, plan) if return_plan else value


def neuron_matrix(h: torch.Tensor, resolution: tuple[int, int] | None = None) -> torch.Tensor:
    """Neuron matrix (neurons, n_e) of activations ``h``: dense (n, q) -> (q, n); convolutional
    (n, C, H, W) -> (C, n H W), after adaptive average pooling to ``resolution`` when given."""
    if h.dim() == 2:
        return h.t()
    if h.dim() == 4:
        if resolution is not None and tuple(h.shape[2:]) != tuple(resolution):
            h = F.adaptive_avg_pool2d(h, resolution)
        return h.transpose(0, 1).reshape(h.shape[1], -1)
    raise ValueError(f"activations must be (n, q) or (n, C, H, W), got shape {tuple(h.shape)}")


def representation_distance(h_old: torch.Tensor, h_new: torch.Tensor, *, pool_to: tuple[int, int] = (1, 1),
                            **options) -> torch.Tensor:
    """D between two layers' activations on the same probe batch (dense or convolutional).

    Convolutional layers of equal resolution are compared position by position (n_e = n H W);
    otherwise both are pooled to ``pool_to``. A dense layer against a convolutional one pools the
    latter to 1 x 1. ``options`` go to :func:`layer_distance`.
    """
    if h_old.shape[0] != h_new.shape[0]:
        raise ValueError(f"both layers must see the same probe batch, got {h_old.shape[0]} and {h_new.shape[0]} rows")
    res = None
    if h_old.dim() == 4 and h_new.dim() == 4 and h_old.shape[2:] != h_new.shape[2:]:
        res = pool_to
    if h_old.dim() != h_new.dim():
        h_old = h_old.mean(dim=(2, 3)) if h_old.dim() == 4 else h_old
        h_new = h_new.mean(dim=(2, 3)) if h_new.dim() == 4 else h_new
    return layer_distance(neuron_matrix(h_old, res), neuron_matrix(h_new, res), **options)


# ---------------------------------------------------------------------------------------------------
# Which layers
# ---------------------------------------------------------------------------------------------------
def hidden_representations(net: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None) -> list[torch.Tensor]:
    """Hidden activations of ``net`` on ``x`` in depth (call) order.

    ``layers=None``: ``net.hidden(x)`` when the network defines it (:class:`hotnas.supernet.DigitsNet`
    does), else the outputs of its activation modules (ReLU, Tanh, ...). Otherwise the outputs of
    the named submodules, in the order they are called.
    """
    if layers is None and callable(getattr(net, "hidden", None)):
        return list(net.hidden(x))
    if layers is None:
        modules = [m for m in net.modules() if isinstance(m, _ACTIVATIONS)]
        if not modules:
            raise ValueError(f"{type(net).__name__} has no hidden() method and no activation modules; "
                             "name the layers to compare with layers=[...]")
    else:
        modules = [net.get_submodule(name) for name in layers]
    out: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _i, o: out.append(o)) for m in dict.fromkeys(modules)]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    return out


def _spatial(shape: torch.Size) -> tuple[int, ...]:
    return tuple(shape[2:]) if len(shape) == 4 else ()


def depth_pairs(old_shapes: Sequence[torch.Size], new_shapes: Sequence[torch.Size]) -> list[tuple[int, int]]:
    """Pair each student layer with the teacher layer of nearest relative depth (k / (L - 1) in
    [0, 1]) among those of the same spatial resolution (all layers when none has it); ties go to the
    deeper teacher layer. The pair of last hidden layers is always included."""
    L_old, L_new = len(old_shapes), len(new_shapes)
    if L_old == 0 or L_new == 0:
        raise ValueError("both networks need at least one hidden layer")

    def pos(k: int, L: int) -> float:
        return k / (L - 1) if L > 1 else 1.0

    pairs = []
    for j in range(L_new):
        same = [i for i in range(L_old) if _spatial(old_shapes[i]) == _spatial(new_shapes[j])]
        cands = same or list(range(L_old))
        i = min(cands, key=lambda i: (abs(pos(i, L_old) - pos(j, L_new)), -i))
        pairs.append((i, j))
    if (L_old - 1, L_new - 1) not in pairs:
        pairs.append((L_old - 1, L_new - 1))
    return pairs


def _resolve_pairs(pairs, old_shapes, new_shapes) -> list[tuple[int, int]]:
    if pairs == "depth":
        return depth_pairs(old_shapes, new_shapes)
    if pairs == "last":
        return [(len(old_shapes) - 1, len(new_shapes) - 1)]
    if isinstance(pairs, str):
        raise ValueError(f"unknown pairs {pairs!r}; expected 'depth', 'last' or a list of (old, new) indices")
    out = [(int(i), int(j)) for i, j in pairs]
    for i, j in out:
        if not (0 <= i < len(old_shapes) and 0 <= j < len(new_shapes)):
            raise ValueError(f"layer pair ({i}, {j}) out of range: {len(old_shapes)} teacher and "
                             f"{len(new_shapes)} student layers")
    return out


# ---------------------------------------------------------------------------------------------------
# Transfer
# ---------------------------------------------------------------------------------------------------
@dataclass
class TransferResult:
    """What :func:`transfer` did. ``distance_*``: sum over layer pairs of D on the whole probe set."""

    net: nn.Module
    pairs: list[tuple[int, int]]
    distance_before: float
    distance_after: float
    steps: int
    seconds: float
    history: list[float] = field(default_factory=list)  # summed D (on the step's batch) per step


def _probe_split(data) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(data, torch.Tensor):
        return data, None
    if hasattr(data, "x_train"):  # DigitsData
        return data.x_train, data.y_train
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise ValueError("data must be a tensor X, a pair (X, y) or a DigitsData")


def transfer(old_net: nn.Module, new_net: nn.Module, data, steps: int = 200, *, mode: str = "init",
             lam: float = 1.0, pairs: str | Sequence[tuple[int, int]] = "depth", normalize: str = "none",
             solver: str = "emd", reg: float = 0.05, lr: float = 0.01, batch_size: int | None = None,
             params: Iterable[torch.Tensor] | None = None, warmup: int | None = None,
             layers_old: Sequence[str] | None = None, layers_new: Sequence[str] | None = None,
             generator: torch.Generator | None = None) -> TransferResult:
    """Pull ``new_net``'s hidden representation towards ``old_net``'s by OT (Adam on ``new_net``, in place).

    Loss at step t on probe batch X_t (spec 2):

        L(theta') = L_task(theta') + lam(t) sum_{(l, l') in S} D(A_l(X_t), B_l'(X_t; theta'))

    ``mode="init"``: L_task omitted, lam(t) = lam. ``mode="regularise"``: cross-entropy on labels
    plus the penalty with lam(t) = lam max(0, 1 - t / warmup) (``warmup`` defaults to ``steps``).
    ``data``: probe inputs X, a pair (X, y) (labels needed for "regularise") or a DigitsData (its
    training split). ``batch_size=None`` uses all of X at every step (teacher activations computed
    once); otherwise random minibatches from ``generator``. ``params``: the parameters to optimise
    (default all of ``new_net``'s). The teacher runs in eval mode without gradients and is not
    modified; the student's mode is left as it is.
    ``pairs``: "depth" (:func:`depth_pairs`), "last", or explicit (teacher, student) indices into
    :func:`hidden_representations`.
    """
    if mode not in ("init", "regularise"):
        raise ValueError(f"unknown mode {mode!r}; expected 'init' or 'regularise'")
    if steps < 0 or lam < 0:
        raise ValueError(f"need steps >= 0 and lam >= 0, got steps={steps}, lam={lam}")
    X, y = _probe_split(data)
    if mode == "regularise" and y is None:
        raise ValueError("mode='regularise' needs labels: pass data=(X, y)")
    t0 = time.perf_counter()
    opts = dict(normalize=normalize, solver=solver, reg=reg)

    def teacher(xb):  # in eval mode (dropout off, BN running statistics), as spec 4 asks
        was_training = old_net.training
        old_net.eval()
        try:
            with torch.no_grad():
                return [h.detach() for h in hidden_representations(old_net, xb, layers_old)]
        finally:
            old_net.train(was_training)

    def total_distance(hs_old, hs_new, S) -> torch.Tensor:
        return sum(representation_distance(hs_old[i], hs_new[j], **opts) for i, j in S)

    full_old = teacher(X)
    with torch.no_grad():
        full_new = hidden_representations(new_net, X, layers_new)
    S = _resolve_pairs(pairs, [h.shape for h in full_old], [h.shape for h in full_new])
    before = float(total_distance(full_old, full_new, S))

    param_list = list(params) if params is not None else [p for p in new_net.parameters() if p.requires_grad]
    history: list[float] = []
    if steps and param_list:
        opt = torch.optim.Adam(param_list, lr=lr)
        warm = warmup if warmup is not None else steps
        n = X.shape[0]
        for t in range(steps):
            if batch_size is None or batch_size >= n:
                idx, xb, hs_old = None, X, full_old
            else:
                idx = torch.randperm(n, generator=generator)[:batch_size]
                xb = X[idx]
                hs_old = teacher(xb)
            hs_new = hidden_representations(new_net, xb, layers_new)
            dist = total_distance(hs_old, hs_new, S)
            if mode == "init":
                loss = lam * dist
            else:
                yb = y if idx is None else y[idx]
                lam_t = lam * max(0.0, 1.0 - t / warm) if warm > 0 else 0.0
                loss = F.cross_entropy(new_net(xb), yb) + lam_t * dist
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.append(float(dist.detach()))
    with torch.no_grad():
        after = float(total_distance(full_old, hidden_representations(new_net, X, layers_new), S))
    return TransferResult(new_net, S, before, after, steps, time.perf_counter() - t0, history)


# ---------------------------------------------------------------------------------------------------
# Carry-over and jumps of an independent network
# ---------------------------------------------------------------------------------------------------
def carry_over(old_net: nn.Module, new_net: nn.Module, morph: bool = False) -> list[str]:
    """Copy every parameter (and buffer) of ``old_net`` into ``new_net`` whose name and shape match.

    ``morph``: also map NB201 convolutions across a 1x1 <-> 3x3 change of the same edge
    (``...edges.e.nor_conv_1x1`` <-> ``...edges.e.nor_conv_3x3``): a 1x1 kernel is zero-padded to 3x3
    (function-preserving: the new network computes exactly the old function), a 3x3 kernel keeps
    its centre tap (an approximation). Returns the names of ``new_net``'s tensors that were set.
    """
    old = dict(old_net.named_parameters()) | dict(old_net.named_buffers())
    copied = []
    with torch.no_grad():
        for name, t in list(new_net.named_parameters()) + list(new_net.named_buffers()):
            src = old.get(name)
            if src is not None and src.shape == t.shape:
                t.copy_(src)
                copied.append(name)
            elif morph and src is None:
                for a, b in (("nor_conv_1x1", "nor_conv_3x3"), ("nor_conv_3x3", "nor_conv_1x1")):
                    if name.endswith(b) and name[: -len(b)] + a in old:
                        w = old[name[: -len(b)] + a]
                        if w.shape[-1] == 1 and t.shape[-1] == 3 and w.shape[:2] == t.shape[:2]:
                            t.zero_()
                            t[..., 1:2, 1:2].copy_(w)
                            copied.append(name)
                        elif w.shape[-1] == 3 and t.shape[-1] == 1 and w.shape[:2] == t.shape[:2]:
                            t.copy_(w[..., 1:2, 1:2])
                            copied.append(name)
    return copied


def init_after_jump(old_net: nn.Module, old_arch: str, new_arch: str, mode: str = "transfer", *, probe=None,
                    steps: int = 20, lam: float = 1.0, lr: float = 0.02, normalize: str = "none",
                    solver: str = "emd", pairs="depth", trainable: str = "all", morph: bool = False,
                    seed: int = 0, config=None) -> tuple[nn.Module, dict]:
    """The stand-alone network of ``new_arch`` for a particle whose network ``old_net`` (of ``old_arch``)
    just jumped: the jump kernel of the independent-networks flow (issue 8 item 2).

    ``mode``: ``fresh`` (seeded initialisation, nothing kept), ``carry`` (fresh, then every weight
    whose name and shape match is copied: stem, head and the weights of unchanged edges), or
    ``transfer`` (carry, then ``steps`` Adam steps of OT representation transfer, init mode, on
    ``probe`` with ``lam``, ``normalize``, ``solver``, ``pairs`` as in :func:`transfer`).
    ``trainable``: ``all`` parameters move during the transfer, or only the ``new`` ones (those not
    carried over). ``morph``: carry convolutions across 1x1 <-> 3x3 (see :func:`carry_over`).
    ``probe``: inputs X, (X, y) or a DigitsData (default: the first 128 images of the digits
    training split, seed 0). The defaults (20 steps at lr 0.02 on 128 probe images, all layer pairs
    by depth, no normalisation) cost about 0.3-0.5 s of one CPU core for the default network.
    ``config``: the network skeleton (default ``old_net.config``).

    Returns (new network, info) with info = {"mode", "copied" (count), "distance_before",
    "distance_after" (transfer only, else None), "seconds"}.
    """
    from .spaces.nb201 import arch_string, parse_arch
    from .supernet import DigitsNet

    if mode not in ("fresh", "carry", "transfer"):
        raise ValueError(f"unknown mode {mode!r}; expected 'fresh', 'carry' or 'transfer'")
    if trainable not in ("all", "new"):
        raise ValueError(f"unknown trainable {trainable!r}; expected 'all' or 'new'")
    old_arch, new_arch = arch_string(parse_arch(old_arch)), arch_string(parse_arch(new_arch))
    if getattr(old_net, "arch", old_arch) != old_arch:
        raise ValueError(f"old_net is a network of {old_net.arch!r}, not of old_arch {old_arch!r}")
    t0 = time.perf_counter()
    new_net = DigitsNet(new_arch, config or getattr(old_net, "config", None), seed=seed)
    info: dict = {"mode": mode, "copied": 0, "distance_before": None, "distance_after": None}
    if mode != "fresh":
        copied = carry_over(old_net, new_net, morph=morph)
        info["copied"] = len(copied)
        if mode == "transfer":
            if probe is None:
                from .datasets import load_digits_splits

                probe = load_digits_splits(0).x_train[:128]
            X, _ = _probe_split(probe)
            params = None
            if trainable == "new":
                params = [p for n, p in new_net.named_parameters() if n not in set(copied)]
            if params is None or params:
                res = transfer(old_net, new_net, X, steps, mode="init", lam=lam, lr=lr, normalize=normalize,
                               solver=solver, pairs=pairs, params=params)
                info["distance_before"], info["distance_after"] = res.distance_before, res.distance_after
    info["seconds"] = time.perf_counter() - t0
    return new_net, info
