r"""Torch backend of the batched fused-GW conditional gradient (CPU or CUDA), and device checks.

The same iteration as :func:`hotnas.distances.fgw_cg.fgw_cg_batch` — linearise, exact LP, exact line
search on the quadratic segment, POT's stopping rule — with the batched tensor algebra (the
products :math:`C_1 G C_2^\top`, gradients, line search, compaction of finished pairs) in torch on
``device``.  The exact LP of each pair is still POT's network simplex (or the assignment solver) on
the host: once per iteration the running pairs' linearised costs go to the CPU as one (B, n, m)
array and the vertices come back as one array.  Float64 on the CPU agrees with the numpy path to
round-off (the LP sees costs equal to ~1e-16; see ``tests/hotnas/test_engine_torch.py`` for the measured
agreement); on a GPU, matrix products sum in another order, so a tie of the LP may be broken
differently on rare pairs.

numpy stays the default; select this path with ``backend="torch"`` (and ``device="cuda"``) in
:class:`~hotnas.distances.ifgw.IFGWOptions`, ``PairwiseDistances(..., backend="torch")`` or
``hotnas.distance(..., backend="torch")``.  torch is imported only here, when asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_device", "fgw_cg_batch_torch", "entropic_start_torch"]

_EMD_MAX_ITER = 100000


def check_device(backend: str, device: str | None) -> None:
    """Validate ``backend`` / ``device`` at the edge.

    Raises:
        ValueError: unknown backend, a device given for the numpy backend, a malformed device
            string, or ``cuda`` asked for where torch has no usable CUDA device (the message says
            which torch build was found).
        ImportError: ``backend="torch"`` without torch installed.
    """
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"device={device!r} needs backend='torch' (the numpy backend runs on the CPU)")
        return
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a dependency of the project
        raise ImportError("backend='torch' needs PyTorch (pip install torch)") from e
    if device is None:
        return
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'cpu', 'cuda' or 'cuda:0', got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"device {device!r} is not a torch device string ('cpu', 'cuda', 'cuda:0', ...)") from e
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: only 'cpu' and 'cuda' are supported")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was asked for but CUDA is not available (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda}); use device='cpu' or the numpy backend"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) visible")


def _torch_device(device: str | None):
    import torch

    return torch.device(device or "cpu")


def _const_c(C1sq, C2sq, p, q):
    """(C1^2 p) 1^T + 1 (q^T C2^2^T), as :func:`hotnas.distances.fgw_cg._const_c`."""
    return C1sq @ p[:, :, None] + q[:, None, :] @ C2sq.transpose(1, 2)


def fgw_cg_batch_torch(M: np.ndarray, C1: np.ndarray, C2: np.ndarray, p: np.ndarray, q: np.ndarray, alpha: float,
                       G0: np.ndarray, max_iter: int = 10000, tol_rel: float = 1e-9, tol_abs: float = 1e-9,
                       track: bool = False, assignment: bool = False, device: str | None = None) -> tuple[np.ndarray, ...]:
    """:func:`hotnas.distances.fgw_cg.fgw_cg_batch` with the tensor algebra in torch float64 on ``device``.

    Same arguments and returns (numpy arrays in, numpy arrays out).
    """
    import torch

    from .emd import emd_rows
    from .fgw_cg import _uniform, _unique_lp, assignment_plans

    if assignment and (M.shape[1] != M.shape[2] or not _uniform(p) or not _uniform(q)):
        raise ValueError("assignment=True needs square problems with uniform masses")
    dev = _torch_device(device)
    B, n, m = M.shape
    G_out_np = np.array(G0, dtype=float, copy=True)
    if B == 0:
        return (np.zeros(0), G_out_np, np.zeros(0, dtype=bool)) if track else (np.zeros(0), G_out_np)

    def T(x):
        return torch.as_tensor(np.ascontiguousarray(x, dtype=float), device=dev)

    Mt, C1t, C2t, pt, qt = T(M), T(C1), T(C2), T(p), T(q)
    G_out = T(G_out_np)
    ids = torch.arange(B, device=dev)
    G = G_out.clone()
    Mlin = (1.0 - alpha) * Mt
    C1c, C2c = C1t, C2t
    C1T, C2T = C1c.transpose(1, 2).contiguous(), C2c.transpose(1, 2).contiguous()
    C1sq, C2sq = C1c * C1c, C2c * C2c
    constC = _const_c(C1sq, C2sq, pt, qt)
    constCt = _const_c(C1sq.transpose(1, 2), C2sq.transpose(1, 2), pt, qt)
    pp = np.ascontiguousarray(p, dtype=float)
    qs = np.ascontiguousarray(q * p.sum(1)[:, None] / q.sum(1)[:, None])
    ids_np = np.arange(B)
    hG = C1c @ G @ C2T
    cost = (Mlin * G).sum((1, 2)) + alpha * ((constC - 2.0 * hG) * G).sum((1, 2))
    running = torch.ones(B, dtype=torch.bool, device=dev)
    degen = np.zeros(B, dtype=bool)
    degen_out = np.zeros(B, dtype=bool)
    it = 0
    while True:
        it += 1
        Mi = Mlin + alpha * (0.5 * (2.0 * (constC - 2.0 * hG) + 2.0 * (constCt - 2.0 * (C1T @ G @ C2c))))
        run_np = running.cpu().numpy()
        idx = np.flatnonzero(run_np)
        Mi_np = Mi[torch.as_tensor(idx, device=dev)].cpu().numpy() if idx.size < run_np.size else Mi.cpu().numpy()
        Gc_np = np.empty((idx.size, n, m))
        if track:
            U, V = np.zeros((idx.size, n)), np.zeros((idx.size, m))
        if assignment:
            assignment_plans(Mi_np, np.arange(idx.size), Gc_np)
        else:
            emd_rows(pp[idx], qs[idx], np.ascontiguousarray(Mi_np), np.arange(idx.size), Gc_np,
                     U if track else None, V if track else None, _EMD_MAX_ITER)
        if track:
            chk = np.flatnonzero(~degen[idx])
            if chk.size:
                degen[idx[chk]] = ~_unique_lp(Mi_np[chk] - U[chk][:, :, None] - V[chk][:, None, :])
        Gc = G.clone()
        idx_t = torch.as_tensor(idx, device=dev)
        Gc[idx_t] = torch.as_tensor(Gc_np, device=dev)
        D = Gc - G
        dD = C1c @ D @ C2T
        a = -2.0 * alpha * (dD * D).sum((1, 2))
        b = (Mlin * D).sum((1, 2)) - 2.0 * alpha * ((dD * G).sum((1, 2)) + (hG * D).sum((1, 2)))
        pos = a > 0
        one, zero = torch.ones_like(a), torch.zeros_like(a)
        step = torch.where(pos, torch.clamp(-b / torch.where(pos, 2.0 * a, one), 0.0, 1.0),
                           torch.where(a + b < 0, one, zero))
        step = torch.where(running, step, zero)
        new = cost + a * (step**2) + b * step
        absd = torch.abs(new - cost)
        cost = torch.where(running, new, cost)
        G = G + step[:, None, None] * D
        hG = C1c @ G @ C2T
        rel = absd / torch.abs(new)  # inf / nan where new == 0, as numpy's (the flags below are False)
        done = running & ((rel < tol_rel) | (absd < tol_abs))
        if it >= max_iter:
            done = running.clone()
        running = running & ~done
        n_run = int(running.sum())
        if n_run == 0:
            break
        if n_run <= 0.6 * running.numel() and running.numel() > 64:
            fin = ~running
            G_out[ids[fin]] = G[fin]
            keep_np = running.cpu().numpy()
            degen_out[ids_np[~keep_np]] = degen[~keep_np]
            keep = running
            ids, G, Mlin, C1c, C2c, C1T, C2T, constC, constCt, hG, cost = (
                x[keep] for x in (ids, G, Mlin, C1c, C2c, C1T, C2T, constC, constCt, hG, cost)
            )
            ids_np, pp, qs, degen = ids_np[keep_np], pp[keep_np], qs[keep_np], degen[keep_np]
            running = torch.ones(ids.numel(), dtype=torch.bool, device=dev)
    G_out[ids] = G
    degen_out[ids_np] = degen
    vals = fgw_values_torch(Mt, C1t, C2t, pt, qt, alpha, G_out)
    out = (vals.cpu().numpy(), G_out.cpu().numpy())
    return out + (degen_out,) if track else out


def fgw_values_torch(M, C1, C2, p, q, alpha: float, G):
    """Batched FGW objective, as :func:`hotnas.distances.ifgw.fgw_values` (torch tensors)."""
    constC = _const_c(C1 * C1, C2 * C2, p, q)
    tens = constC - 2.0 * (C1 @ G @ C2.transpose(1, 2))
    return (1.0 - alpha) * (M * G).sum((1, 2)) + alpha * (tens * G).sum((1, 2))


def entropic_start_torch(M, C1, C2, p, q, alpha: float, epsilon: float = 0.05, iters: int = 20,
                         sinkhorn_iters: int = 10, device: str | None = None) -> np.ndarray:
    """:func:`hotnas.distances.ifgw.entropic_start` in torch float64 on ``device`` (numpy in and out)."""
    import torch

    dev = _torch_device(device)

    def T(x: Any):
        return torch.as_tensor(np.ascontiguousarray(x, dtype=float), device=dev)

    M, C1, C2, p, q = T(M), T(C1), T(C2), T(p), T(q)
    C1T, C2T = C1.transpose(1, 2), C2.transpose(1, 2)
    constC = _const_c(C1 * C1, C2 * C2, p, q)
    constCt = _const_c(C1T * C1T, C2T * C2T, p, q)
    Mlin = (1.0 - alpha) * M
    inv_eps = (1.0 / T(np.array(np.broadcast_to(np.asarray(epsilon, dtype=float), (M.shape[0],)))))[:, None, None]
    P = p[:, :, None] * q[:, None, :]
    tiny = 1e-300
    v = torch.ones_like(q)
    for _ in range(iters):
        grad = Mlin + alpha * ((constC - 2.0 * (C1 @ P @ C2T)) + (constCt - 2.0 * (C1T @ P @ C2)))
        grad = grad - grad.amin((1, 2), keepdim=True)
        K = torch.exp(torch.clamp(grad * inv_eps, max=700.0) * -1.0)
        for _ in range(sinkhorn_iters):
            u = p / torch.einsum("bij,bj->bi", K, v)
            v = q / torch.einsum("bij,bi->bj", K, u)
        P = u[:, :, None] * K * v[:, None, :]
    P = P * torch.clamp(p / torch.clamp(P.sum(2), min=tiny), max=1.0)[:, :, None]
    P = P * torch.clamp(q / torch.clamp(P.sum(1), min=tiny), max=1.0)[:, None, :]
    ea, eb = p - P.sum(2), q - P.sum(1)
    tot = ea.sum(1)
    P = P + ea[:, :, None] * eb[:, None, :] / torch.where(tot > 0, tot, torch.ones_like(tot))[:, None, None]
    return P.cpu().numpy()
