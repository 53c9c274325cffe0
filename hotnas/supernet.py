"""A small NAS-Bench-201-style network on 8x8 digits, stand-alone and as a weight-sharing supernet.

Network (every cell has the same architecture, as in NAS-Bench-201)::

    x (B, 1, 8, 8) -> stem: conv3x3(1 -> C) + BN
                   -> cell_1 -> [avg-pool 2x2 -> cell_k]... (``reduce_after``: halve the resolution after these cells)
                   -> BN -> ReLU -> global average pool -> linear(C -> 10)

    cell: node_0 = cell input;  node_j = sum_{i < j} op_(j,i)(node_i), j = 1, 2, 3;  output node_3.
    edges in official string order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2), operations
    none (zero) | skip_connect (identity) | nor_conv_1x1, nor_conv_3x3 (ReLU -> conv -> BN) | avg_pool_3x3
    (stride 1, padding 1, padding not counted).

BN is batch normalisation **without affine parameters and without running statistics**: it always
normalises with the statistics of the batch it sees (as in the NAS-Bench-201 / DARTS search cells), so
the network has no buffers and a forward pass is a pure function of (weights, architecture, batch).
Evaluate on whole splits (or batches of >= 64), never one sample at a time.

Two ways to run it:
- :class:`DigitsNet` ``(arch="|...|")`` — a stand-alone network that holds only the weights its
  architecture uses and computes only its operations (fast; what :func:`train_from_scratch` trains).
- :class:`SuperNet` — one parameter set covering all 5^6 = 15,625 cells.  A particle i holds its own
  flat copy ``theta[i]`` (shape (d,)) of the shared weights; the architecture is a (6, 5) one-hot
  tensor, every operation is computed and selected by that mask (no data-dependent branching), so one
  ``torch.func.vmap(torch.func.grad_and_value(...))`` call gives the loss and gradient of P
  (weights, architecture) pairs at once (the diffusion step), and one ``vmap`` call gives the loss
  of proposed architectures under each particle's weights (the jump evaluation).

Parameter names are shared: ``stem.weight``, ``cells.{c}.edges.{e}.{op}`` (ops nor_conv_1x1,
nor_conv_3x3), ``head.weight``, ``head.bias``; a stand-alone network's parameters are the subset
of the supernet's its architecture uses, so weights move between them by name
(:meth:`SuperNet.to_network`, :meth:`SuperNet.from_network`).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from .spaces.nb201 import EDGES, OPS, arch_string, parse_arch

__all__ = [
    "CONV_OPS",
    "DigitsNet",
    "NetConfig",
    "SuperNet",
    "TrainResult",
    "arch_seed",
    "decode_arch",
    "encode_arch",
    "evaluate",
    "train_from_scratch",
    "train_steps",
    "ManyResult",
    "resolve_device",
    "train_many",
]

#: Operations that own weights, with their kernel size.
CONV_OPS: dict[str, int] = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
_BN_EPS = 1e-5
_OP_INDEX = {op: k for k, op in enumerate(OPS)}


@dataclass(frozen=True)
class NetConfig:
    """Macro skeleton. ``channels``: width C of every cell; ``n_cells``: number of cells;
    ``reduce_after``: cell indices after which a 2x2 average pool halves the resolution."""

    channels: int = 8
    n_cells: int = 2
    reduce_after: tuple[int, ...] = (0,)
    in_channels: int = 1
    n_classes: int = 10

    def __post_init__(self) -> None:
        if self.channels < 1 or self.n_cells < 1 or self.n_classes < 2 or self.in_channels < 1:
            raise ValueError(f"invalid NetConfig {self}: channels, n_cells, in_channels >= 1 and n_classes >= 2")
        bad = [c for c in self.reduce_after if not 0 <= c < self.n_cells - 1]
        if bad:
            raise ValueError(f"reduce_after {self.reduce_after}: indices {bad} not in [0, n_cells - 1)")


def encode_arch(archs: str | Sequence[str], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One-hot architecture tensor: (6, 5) for one string, (P, 6, 5) for a sequence of P strings.

    Entry [e, o] = 1 iff edge e (official string order) carries operation ``OPS[o]``.
    """
    if isinstance(archs, str):
        idx = torch.tensor([_OP_INDEX[o] for o in parse_arch(archs)])
        return F.one_hot(idx, len(OPS)).to(dtype)
    if len(archs) == 0:
        return torch.zeros(0, len(EDGES), len(OPS), dtype=dtype)
    return torch.stack([encode_arch(a, dtype) for a in archs])


def decode_arch(onehot: torch.Tensor) -> str | list[str]:
    """Inverse of :func:`encode_arch` (argmax per edge)."""
    if onehot.dim() == 2:
        return arch_string([OPS[int(k)] for k in onehot.argmax(-1)])
    return [decode_arch(a) for a in onehot]  # type: ignore[misc]


def arch_seed(base_seed: int, arch: str) -> int:
    """A stable 31-bit seed from a base seed and an architecture string (same in every process)."""
    return int(np.random.SeedSequence([int(base_seed), zlib.crc32(arch.encode("utf-8"))]).generate_state(1)[0] >> 1)


def _bn(h: torch.Tensor) -> torch.Tensor:
    """Per-channel batch normalisation with batch statistics, no affine parameters (vmap-safe)."""
    return F.batch_norm(h, None, None, training=True, eps=_BN_EPS)


@lru_cache(maxsize=64)
def _pool3_constants(channels: int, height: int, width: int, dtype: torch.dtype,
                     device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    ones = torch.ones(1, 1, height, width, dtype=dtype, device=device)
    inv_count = 1.0 / F.conv2d(ones, torch.ones(1, 1, 3, 3, dtype=dtype, device=device), padding=1)
    return torch.ones(channels, 1, 3, 3, dtype=dtype, device=device), inv_count


def _pool3(h: torch.Tensor) -> torch.Tensor:
    """3x3 average pool, stride 1, padding 1, padding not counted (as a depthwise convolution: it is
    several times faster than ``avg_pool2d`` on these small maps, and batches well under vmap)."""
    kernel, inv_count = _pool3_constants(h.shape[-3], h.shape[-2], h.shape[-1], h.dtype, h.device)
    return F.conv2d(h, kernel, padding=1, groups=h.shape[-3]) * inv_count


def _edge(channels: int, ops: Sequence[str]) -> nn.ParameterDict:
    """The weights of one edge: op name -> (C, C, k, k) kernel, for the convolutions among ``ops``."""
    return nn.ParameterDict(
        {op: nn.Parameter(torch.empty(channels, channels, k, k)) for op, k in CONV_OPS.items() if op in ops}
    )


class _Cell(nn.Module):
    def __init__(self, channels: int, edge_ops: Sequence[Sequence[str]]) -> None:
        super().__init__()
        self.edges = nn.ModuleList(_edge(channels, ops) for ops in edge_ops)


class DigitsNet(nn.Module):
    """NB201-style network on digits; ``arch=None`` makes the supernet module (all operations).

    ``forward(x)`` for a stand-alone network; ``forward(x, arch_onehot)`` with a one-hot (6, 5) mask
    (:func:`encode_arch`) for the supernet module, which computes every operation and selects by the
    mask (exact for one-hot masks only, see ``_mixed_edges``). Returns logits (B, n_classes).

    ``hidden(x)`` returns the hidden representations (stem output, then each cell's nodes 1..3), the
    layers OT representation transfer compares (see :mod:`hotnas.transfer`).
    """

    def __init__(self, arch: str | None = None, config: NetConfig | None = None,
                 seed: int | torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config or NetConfig()
        self.arch = None if arch is None else arch_string(parse_arch(arch))
        self.edge_ops: tuple[str, ...] | None = None if arch is None else parse_arch(arch)
        C = self.config.channels
        per_edge = [tuple(OPS)] * len(EDGES) if self.edge_ops is None else [(o,) for o in self.edge_ops]
        self.stem = nn.Conv2d(self.config.in_channels, C, 3, padding=1, bias=False)
        self.cells = nn.ModuleList(_Cell(C, per_edge) for _ in range(self.config.n_cells))
        self.head = nn.Linear(C, self.config.n_classes)
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | torch.Generator | None = None) -> None:
        """Kaiming-uniform convolutions, PyTorch-default linear head; seeded by ``seed`` when given."""
        gen = seed if isinstance(seed, torch.Generator) or seed is None else torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for name, p in self.named_parameters():
                fan_in = self.head.in_features if p.dim() == 1 else p[0].numel()
                # kaiming_uniform_(a=sqrt(5)) bound = 1/sqrt(fan_in) for the linear layer (PyTorch default);
                # sqrt(6 / fan_in) (ReLU gain) for convolutions.
                bound = 1.0 / math.sqrt(fan_in) if name.startswith("head") else math.sqrt(6.0 / fan_in)
                p.uniform_(-bound, bound, generator=gen)

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, arch: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self._features(x, arch, collect=None))

    def hidden(self, x: torch.Tensor, arch: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Hidden representations in depth order: stem output, then nodes 1, 2, 3 of every cell."""
        out: list[torch.Tensor] = []
        self._features(x, arch, collect=out)
        return out

    def _features(self, x: torch.Tensor, arch: torch.Tensor | None, collect: list | None) -> torch.Tensor:
        if (arch is None) != (self.edge_ops is not None):
            raise ValueError("a stand-alone network takes no mask (forward(x)); the supernet module needs one "
                             "(forward(x, encode_arch(arch)))")
        h = _bn(self.stem(x))
        if collect is not None:
            collect.append(h)
        for c, cell in enumerate(self.cells):
            h = self._cell(cell, h, arch, collect)
            if c in self.config.reduce_after:
                h = F.avg_pool2d(h, 2)
        h = F.relu(_bn(h))
        return h.mean(dim=(2, 3))

    def _cell(self, cell: _Cell, h0: torch.Tensor, arch: torch.Tensor | None, collect: list | None) -> torch.Tensor:
        nodes = [h0]
        # outputs of each edge, filled source node by source node (edges out of node i only need node i)
        edge_out: list[torch.Tensor | None] = [None] * len(EDGES)
        for src in range(3):
            h = nodes[src]
            out_edges = [e for e, (_, s) in enumerate(EDGES) if s == src]
            if arch is None:
                self._static_edges(cell, h, out_edges, edge_out)
            else:
                self._mixed_edges(cell, h, out_edges, edge_out, arch)
            dst = src + 1
            terms = [edge_out[e] for e, (d, _) in enumerate(EDGES) if d == dst]
            terms = [t for t in terms if t is not None]
            node = terms[0] if terms else torch.zeros_like(h0)
            for t in terms[1:]:
                node = node + t
            nodes.append(node)
            if collect is not None:
                collect.append(node)
        return nodes[3]

    def _conv_group(self, cell: _Cell, h: torch.Tensor, edges: list[int], op: str) -> list[torch.Tensor]:
        """One convolution for all ``edges`` (same source) carrying ``op``: ReLU -> conv -> BN, split per edge."""
        C = self.config.channels
        weight = torch.cat([cell.edges[e][op] for e in edges]) if len(edges) > 1 else cell.edges[edges[0]][op]
        y = _bn(F.conv2d(F.relu(h), weight, padding=CONV_OPS[op] // 2))
        return list(y.split(C, dim=1)) if len(edges) > 1 else [y]

    def _static_edges(self, cell: _Cell, h: torch.Tensor, out_edges: list[int], edge_out: list) -> None:
        ops = self.edge_ops
        assert ops is not None
        pooled = None
        for e in out_edges:
            if ops[e] == "skip_connect":
                edge_out[e] = h
            elif ops[e] == "avg_pool_3x3":
                pooled = _pool3(h) if pooled is None else pooled
                edge_out[e] = pooled
        for op in CONV_OPS:
            edges = [e for e in out_edges if ops[e] == op]
            if edges:
                for e, y in zip(edges, self._conv_group(cell, h, edges, op)):
                    edge_out[e] = y

    def _mixed_edges(self, cell: _Cell, h: torch.Tensor, out_edges: list[int], edge_out: list,
                     arch: torch.Tensor) -> None:
        """Every edge's output under a one-hot mask, with one convolution and one BN per source node.

        The convolution of edge e uses the kernel w_3x3 W_3x3 + w_1x1 pad(W_1x1) (a 1x1 kernel
        zero-padded to 3x3 computes the same map): with a one-hot row w it is the selected
        convolution's kernel, or zero when neither is selected, and BN(conv(., 0)) = 0 exactly. So the
        output equals w_skip h + w_pool pool(h) + w_1x1 BN(conv1x1) + w_3x3 BN(conv3x3) for one-hot w
        (not for soft mixtures), at the cost of one 3x3 convolution per edge.
        """
        C = self.config.channels
        i1, i3 = _OP_INDEX["nor_conv_1x1"], _OP_INDEX["nor_conv_3x3"]
        kernels = [arch[e, i3] * cell.edges[e]["nor_conv_3x3"]
                   + arch[e, i1] * F.pad(cell.edges[e]["nor_conv_1x1"], (1, 1, 1, 1)) for e in out_edges]
        conv = _bn(F.conv2d(F.relu(h), torch.cat(kernels), padding=1)).split(C, dim=1)
        pooled = _pool3(h)
        for e, y in zip(out_edges, conv):
            edge_out[e] = arch[e, _OP_INDEX["skip_connect"]] * h + arch[e, _OP_INDEX["avg_pool_3x3"]] * pooled + y


# ---------------------------------------------------------------------------------------------------
# Stand-alone training
# ---------------------------------------------------------------------------------------------------
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy in %) of ``net`` on the whole batch (x, y), without gradients."""
    with torch.no_grad():
        logits = net(x)
        loss = F.cross_entropy(logits, y).item()
        acc = 100.0 * (logits.argmax(1) == y).double().mean().item()
    return loss, acc


def train_steps(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, *, lr: float = 0.05,
                batch_size: int = 64, optimizer: torch.optim.Optimizer | None = None,
                generator: torch.Generator | None = None, extra_loss=None,
                cosine: bool = False) -> torch.optim.Optimizer:
    """``steps`` Adam steps of cross-entropy on random minibatches of (x, y) drawn with ``generator``.

    ``cosine``: anneal the learning rate as lr (1 + cos(pi t / steps)) / 2 over these steps.

    ``extra_loss``: optional callable ``(net, xb, yb, step) -> tensor`` added to the loss (a
    regulariser such as the OT representation distance). Returns the optimiser, so training can go on.
    """
    opt = optimizer or torch.optim.Adam(net.parameters(), lr=lr)
    n = x.shape[0]
    order = torch.randperm(n, generator=generator)
    pos = 0
    for step in range(steps):
        if pos + batch_size > n:
            order, pos = torch.randperm(n, generator=generator), 0
        idx = order[pos:pos + batch_size].to(x.device)
        pos += batch_size
        xb, yb = x[idx], y[idx]
        loss = F.cross_entropy(net(xb), yb)
        if extra_loss is not None:
            loss = loss + extra_loss(net, xb, yb, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cosine:
            for group in opt.param_groups:
                group["lr"] = 0.5 * lr * (1.0 + math.cos(math.pi * step / steps))
        opt.step()
    return opt


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_from_scratch`. Accuracies in %, losses are mean cross-entropy."""

    arch: str
    val_acc: float
    test_acc: float
    val_loss: float
    test_loss: float
    train_acc: float
    epochs: int
    seconds: float
    seed: int
    n_params: int


def train_from_scratch(arch: str, data=None, *, epochs: int = 8, seed: int = 0, config: NetConfig | None = None,
                       lr: float = 0.05, batch_size: int = 64, cosine: bool = True, return_net: bool = False,
                       device: str | torch.device | None = None):
    """Train a stand-alone :class:`DigitsNet` of ``arch`` from a seeded initialisation.

    Adam (``lr``), ``epochs`` passes over the training split in minibatches of ``batch_size``
    (the last incomplete batch is dropped), initialisation and shuffling from one
    ``torch.Generator`` seeded by ``seed``: the same (arch, seed, config, data) gives the same result
    on the same machine and thread count. ``data``: a :class:`hotnas.datasets.DigitsData`
    (default ``load_digits_splits(0)``).

    ``device``: where the network and the data live (``"cuda"``...; refused when unavailable); the
    random stream stays on the CPU, so a seed draws the same initialisation and batches everywhere.

    Returns a :class:`TrainResult`, and the trained network too when ``return_net``.
    """
    from .datasets import load_digits_splits

    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    dev = resolve_device(device)
    data = data if data is not None else load_digits_splits(0)
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(int(seed))
    net = DigitsNet(arch, config, seed=gen).to(dev)
    xs = {k: getattr(data, k).to(dev) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
    n = xs["x_train"].shape[0]
    steps = epochs * (n // batch_size)
    if steps and sum(p.numel() for p in net.parameters()) > 0:
        train_steps(net, xs["x_train"], xs["y_train"], steps, lr=lr, batch_size=batch_size, generator=gen,
                    cosine=cosine)
    _, train_acc = evaluate(net, xs["x_train"], xs["y_train"])
    val_loss, val_acc = evaluate(net, xs["x_val"], xs["y_val"])
    test_loss, test_acc = evaluate(net, xs["x_test"], xs["y_test"])
    res = TrainResult(net.arch or "", val_acc, test_acc, val_loss, test_loss, train_acc, epochs,
                      time.perf_counter() - t0, int(seed), sum(p.numel() for p in net.parameters()))
    return (res, net) if return_net else res


# ---------------------------------------------------------------------------------------------------
# Weight-sharing supernet, batched over particles
# ---------------------------------------------------------------------------------------------------
class SuperNet:
    """Functional weight-sharing supernet, vectorised over particles with ``torch.func``.

    A particle's weights are a flat vector ``theta`` of length :attr:`dim` (layout :attr:`names`,
    :attr:`shapes`); a population is ``theta`` of shape (P, d) and architectures ``archs`` of shape
    (P, 6, 5) (:func:`encode_arch`). The potential of particle i is

        f(theta_i, g_i) = mean_b CE(net(x_b; theta_i, g_i), y_b) + (weight_decay / 2) ||theta_i||^2

    (the weight decay keeps f confining in the coordinates g_i does not use, so Langevin noise on them
    stays bounded). Minibatches ``x`` (B, 1, 8, 8), ``y`` (B,) are shared by all particles, or per
    particle with a leading P axis: ``x`` (P, B, 1, 8, 8), ``y`` (P, B).

    Example (one diffusion step and one jump evaluation for 16 particles)::

        sn = SuperNet(NetConfig(channels=8), weight_decay=1e-4)
        theta = sn.init(16, seed=0)                                   # (16, d)
        archs = encode_arch([space.sample(rng) for _ in range(16)])  # (16, 6, 5)
        theta, losses = sn.step(theta, archs, xb, yb, lr=0.05, temperature=0.0)      # SGD (T = 0) or Langevin
        proposed_losses = sn.losses(theta, encode_arch(proposals), xb, yb)          # same minibatch
    """

    def __init__(self, config: NetConfig | None = None, weight_decay: float = 0.0) -> None:
        self.config = config or NetConfig()
        self.weight_decay = float(weight_decay)
        self.module = DigitsNet(None, self.config, seed=0)
        self.module.requires_grad_(False)
        params = dict(self.module.named_parameters())
        self.names: tuple[str, ...] = tuple(params)
        self.shapes: tuple[torch.Size, ...] = tuple(p.shape for p in params.values())
        self.sizes: tuple[int, ...] = tuple(p.numel() for p in params.values())
        self.dim: int = int(sum(self.sizes))
        self._batched = {}

    # -- layout ----------------------------------------------------------------------------------
    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of one flat vector (d,) as the named parameter tensors."""
        out, offset = {}, 0
        for name, shape, size in zip(self.names, self.shapes, self.sizes):
            out[name] = theta[offset:offset + size].view(shape)
            offset += size
        return out

    def flatten(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Flat vector (d,) of a full named parameter dict (inverse of :meth:`unflatten`)."""
        missing = [n for n in self.names if n not in params]
        if missing:
            raise ValueError(f"parameters missing for {missing[:3]}{'...' if len(missing) > 3 else ''}")
        return torch.cat([params[n].reshape(-1) for n in self.names])

    def init(self, n_particles: int, seed: int = 0, same: bool = False) -> torch.Tensor:
        """(P, d) initial weights: an independent seeded initialisation per particle (or one shared if ``same``)."""
        if n_particles < 1:
            raise ValueError(f"n_particles must be >= 1, got {n_particles}")
        gen = torch.Generator().manual_seed(int(seed))
        net = DigitsNet(None, self.config, seed=0)  # re-drawn below; seed 0 leaves torch's global RNG alone
        rows = []
        for _ in range(1 if same else n_particles):
            net.reset_parameters(gen)
            rows.append(self.flatten({k: v.detach() for k, v in net.named_parameters()}))
        theta = torch.stack(rows)
        return theta.expand(n_particles, -1).clone() if same else theta

    # -- single particle -------------------------------------------------------------------------
    def logits(self, theta: torch.Tensor, arch: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, 10) of one particle: theta (d,), arch (6, 5), x (B, 1, 8, 8)."""
        return functional_call(self.module, self.unflatten(theta), (x, arch))

    def loss(self, theta: torch.Tensor, arch: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The potential f(theta, arch) on the minibatch (x, y): scalar."""
        value = F.cross_entropy(self.logits(theta, arch, x), y)
        if self.weight_decay:
            value = value + 0.5 * self.weight_decay * (theta * theta).sum()
        return value

    def _loss_and_acc(self, theta, arch, x, y):
        logits = self.logits(theta, arch, x)
        return F.cross_entropy(logits, y), (logits.argmax(-1) == y).to(theta.dtype).mean() * 100.0

    # -- batched over particles ------------------------------------------------------------------
    def _vmapped(self, kind: str, per_particle_batch: bool):
        key = (kind, per_particle_batch)
        if key not in self._batched:
            fn = {"loss": self.loss, "grad": grad_and_value(self.loss), "acc": self._loss_and_acc}[kind]
            data_dim = 0 if per_particle_batch else None
            self._batched[key] = vmap(fn, in_dims=(0, 0, data_dim, data_dim))
        return self._batched[key]

    def _check(self, theta: torch.Tensor, archs: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> bool:
        if theta.dim() != 2 or theta.shape[1] != self.dim:
            raise ValueError(f"theta must have shape (P, {self.dim}), got {tuple(theta.shape)}")
        if archs.shape != (theta.shape[0], len(EDGES), len(OPS)):
            raise ValueError(f"archs must have shape ({theta.shape[0]}, 6, 5) (encode_arch), got {tuple(archs.shape)}")
        per_particle = x.dim() == 5
        if per_particle and (x.shape[0] != theta.shape[0] or y.shape[:1] != x.shape[:1]):
            raise ValueError(f"per-particle minibatches need x (P, B, 1, 8, 8) and y (P, B), got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
        return per_particle

    def losses(self, theta: torch.Tensor, archs: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """f(theta_i, archs_i) for every particle, one vmapped call, no gradient: (P,). The jump evaluation."""
        per_particle = self._check(theta, archs, x, y)
        with torch.no_grad():
            return self._vmapped("loss", per_particle)(theta, archs.to(theta.dtype), x, y)

    def loss_and_grad(self, theta: torch.Tensor, archs: torch.Tensor, x: torch.Tensor,
                      y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f (P,), grad_theta f (P, d)) of every particle in one ``vmap(grad_and_value)`` call."""
        per_particle = self._check(theta, archs, x, y)
        grads, values = self._vmapped("grad", per_particle)(theta.detach(), archs.to(theta.dtype), x, y)
        return values, grads

    def step(self, theta: torch.Tensor, archs: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, lr: float,
             temperature: float = 0.0, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One diffusion step for all particles: theta - lr grad f + sqrt(2 lr T) xi, xi ~ N(0, I).

        ``temperature = 0`` is plain SGD; T > 0 is the unadjusted Langevin (Euler-Maruyama) step of
        d theta = -grad f dt + sqrt(2 T) dW. Returns (new theta (P, d), f before the step (P,)).
        """
        if lr <= 0 or temperature < 0:
            raise ValueError(f"need lr > 0 and temperature >= 0, got lr={lr}, temperature={temperature}")
        values, grads = self.loss_and_grad(theta, archs, x, y)
        new = theta - lr * grads
        if temperature > 0:
            noise = torch.randn(theta.shape, generator=generator, dtype=theta.dtype)
            new = new + math.sqrt(2.0 * lr * temperature) * noise
        return new, values

    def evaluate(self, theta: torch.Tensor, archs: torch.Tensor, x: torch.Tensor,
                 y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(cross-entropy (P,), accuracy % (P,)) of every particle on (x, y), no weight decay, no gradient."""
        per_particle = self._check(theta, archs, x, y)
        with torch.no_grad():
            return self._vmapped("acc", per_particle)(theta, archs.to(theta.dtype), x, y)

    # -- to and from stand-alone networks --------------------------------------------------------
    def to_network(self, theta: torch.Tensor, arch: str) -> DigitsNet:
        """A stand-alone :class:`DigitsNet` of ``arch`` holding particle weights ``theta`` (d,) (copied)."""
        net = DigitsNet(arch, self.config, seed=0)  # overwritten below
        full = self.unflatten(theta.detach())
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(full[name])
        return net

    def from_network(self, net: DigitsNet, theta: torch.Tensor | None = None) -> torch.Tensor:
        """Flat weights (d,): ``net``'s parameters written into ``theta`` (default zeros) by name."""
        full = {k: v.clone() for k, v in self.unflatten(
            theta.detach().clone() if theta is not None else torch.zeros(self.dim)).items()}
        for name, p in net.named_parameters():
            if name not in full:
                raise ValueError(f"parameter {name!r} is not a supernet parameter")
            full[name] = p.detach().reshape(full[name].shape)
        return self.flatten(full)


# ---------------------------------------------------------------------------------------------------
# Many independent networks at once (the ground-truth table's training)
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ManyResult:
    """Outcome of :func:`train_many` for K networks: arrays of shape (K,) (accuracies in %)."""

    val_acc: np.ndarray
    test_acc: np.ndarray
    val_loss: np.ndarray
    test_loss: np.ndarray
    train_loss: np.ndarray
    seconds: float


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``torch.device`` of ``device`` (default CPU); ValueError naming it when it is unknown or unavailable."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r} ({e})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} is not available: torch.cuda.is_available() is False "
                             "(no GPU, or a CPU-only torch build)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} is not available: {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device {device!r} is not available")
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r}: expected 'cpu', 'cuda', 'cuda:<i>' or 'mps'")
    return dev


def train_many(archs: Sequence[str], seeds: Sequence[int], data=None, *, epochs: int = 4,
               config: NetConfig | None = None, lr: float = 0.05, batch_size: int = 64, cosine: bool = True,
               device: str | torch.device | None = None) -> ManyResult:
    """Train K independent networks (``archs[k]`` from seed ``seeds[k]``) at once, vectorised.

    Network k is the supernet under the one-hot mask of ``archs[k]`` (the same function as a
    stand-alone :class:`DigitsNet`; a 1x1 convolution is computed as a zero-padded 3x3 one) with its
    own weights theta_k (d,), initialised by :meth:`DigitsNet.reset_parameters` from
    ``torch.Generator().manual_seed(seeds[k])``, trained by Adam (beta = (0.9, 0.999), eps = 1e-8,
    step ``lr``, cosine-annealed ``lr (1 + cos(pi t / steps)) / 2`` when ``cosine``) for
    ``epochs * (n_train // batch_size)`` steps on its own minibatches: every epoch a fresh permutation
    of the training split from the same generator, the last incomplete batch dropped. One
    ``vmap(grad_and_value)`` call per step covers all K networks, and each network's batch
    normalisation sees only its own batch, so network k's result does not depend on the other K - 1
    (up to float rounding of batched kernels). Weights a network's architecture does not use get zero
    gradients and stay at their initial values.

    Returns a :class:`ManyResult` with validation and test accuracy / cross-entropy on the whole splits.
    """
    from .datasets import load_digits_splits

    archs, seeds = list(archs), [int(s) for s in seeds]
    if len(archs) != len(seeds) or not archs:
        raise ValueError(f"need as many seeds as architectures (>= 1), got {len(archs)} and {len(seeds)}")
    if epochs < 0 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 0, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    dev = resolve_device(device)
    data = data if data is not None else load_digits_splits(0)
    t0 = time.perf_counter()
    sn = SuperNet(config)
    net = DigitsNet(None, sn.config, seed=0)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    rows = []
    for g in gens:
        net.reset_parameters(g)
        rows.append(sn.flatten({k: v.detach() for k, v in net.named_parameters()}))
    theta = torch.stack(rows).to(dev)
    sn.module.to(dev)
    A = encode_arch(archs).to(dev)
    x_train, y_train = data.x_train.to(dev), data.y_train.to(dev)
    n = x_train.shape[0]
    per_epoch = n // batch_size
    steps = epochs * per_epoch
    m = torch.zeros_like(theta)
    v = torch.zeros_like(theta)
    train_loss = torch.full((len(archs),), float("nan"))
    order = None
    for t in range(steps):
        if t % per_epoch == 0:
            order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(dev)   # (K, n)
        idx = order[:, (t % per_epoch) * batch_size:(t % per_epoch + 1) * batch_size]  # (K, B)
        values, grads = sn.loss_and_grad(theta, A, x_train[idx], y_train[idx])
        m.mul_(0.9).add_(grads, alpha=0.1)
        v.mul_(0.999).addcmul_(grads, grads, value=0.001)
        step_lr = 0.5 * lr * (1.0 + math.cos(math.pi * t / steps)) if cosine else lr
        denom = (v / (1.0 - 0.999 ** (t + 1))).sqrt_().add_(1e-8)
        theta = theta - step_lr / (1.0 - 0.9 ** (t + 1)) * m / denom
        train_loss = values.detach().cpu()
    out = {}
    for split in ("val", "test"):
        x, y = data.split(split)
        loss, acc = sn.evaluate(theta, A, x.to(dev), y.to(dev))
        out[split] = (acc.double().cpu().numpy(), loss.double().cpu().numpy())
    return ManyResult(out["val"][0], out["test"][0], out["val"][1], out["test"][1],
                      train_loss.double().numpy(), time.perf_counter() - t0)
