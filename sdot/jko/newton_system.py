"""The Newton system of the dynamic JKO step: sparse Jacobian assembly and its linear solvers.

Unknowns interleaved per state s: (rho'_s, phi_s); rows 2s: energy equation R_E, 2s+1: continuity
R_C (see :mod:`sdot.jko.step`). The Jacobian lives on a pattern fixed by the state graph, built once;
assembly is a few scatters (diagonal sums by bincount, one slot per edge off the diagonal).

* d <= 1: banded LU (LAPACK gbtrf/gbtrs) in cell-major order, bandwidth ~ 2K; the Jacobian is written
  straight into column-major band storage.
* d = 2: GMRES with inexact-Newton tolerances, preconditioned by the Jacobian with graph couplings
  lumped on the diagonal and rho' eliminated: a 5-point Schur complement per node, one sparse LU
  per Newton iteration.
* an interaction W (dense convolution, never formed): GMRES on the full operator, preconditioned by
  the exact local Jacobian (banded LU in d <= 1; sparse LU in d = 2 up to ``EXACT_LOCAL_MAX``
  unknowns, the lumped preconditioner above beyond).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .result import JKOSolveError

__all__ = ["NewtonSystem"]


class NewtonSystem:
    """Mixin of :class:`~sdot.jko.JKOStep`: Jacobian pattern, assembly and Newton-direction solves.

    Uses the host's ``n_states, src, dst, is_graph, K, M, grid, energy, _conv`` and the caches
    ``_pattern, _band, _fpat`` (None until first use).
    """

    def _jacobian_pattern(self):
        """Sparsity of the interleaved Jacobian (rows 2s: energy equation, 2s+1: continuity; cols 2s: rho', 2s+1: phi).

        Returns (indices, indptr, nnz, pos): CSR pattern and, per block b in (E r, E phi, C r, C phi),
        the data positions of the diagonal (N) and of the edge entries (s, t) and (t, s) (each edge
        once), so that assembly is a few scatters with no sort or sum of duplicates.
        """
        if self._pattern is not None:
            return self._pattern
        N = self.n_states
        s, t = self.src, self.dst
        idx = np.arange(N, dtype=np.int64)
        n2 = 2 * N
        offs = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row, col) parity of the blocks E r, E phi, C r, C phi
        diag_keys = [(2 * idx + a) * n2 + 2 * idx + b for a, b in offs]
        st_keys = [(2 * s + a) * n2 + 2 * t + b for a, b in offs]
        ts_keys = [(2 * t + a) * n2 + 2 * s + b for a, b in offs]
        uniq, inv = np.unique(np.concatenate(diag_keys + st_keys + ts_keys), return_inverse=True)
        if uniq.size != inv.size:
            raise ValueError("the state graph has repeated edges or self-loops")
        indptr = np.zeros(n2 + 1, dtype=np.int64)
        np.cumsum(np.bincount(uniq // n2, minlength=n2), out=indptr[1:])
        cuts = np.cumsum([0] + [N] * 4 + [s.size] * 8)
        chunks = [inv[cuts[k]:cuts[k + 1]] for k in range(12)]
        pos = {"diag": chunks[0:4], "st": chunks[4:8], "ts": chunks[8:12]}
        self._pattern = ((uniq % n2).astype(np.int32), indptr.astype(np.int32), uniq.size, pos)
        return self._pattern

    def _jacobian(self, diagE, c, dca, dcb, caa, cab, cbb, dphi, tau, w_edge, frozen, band=False):
        """Sparse Jacobian (CSR arrays on the fixed pattern) of the residual (R_E, R_C).

        R_E = w_E (dF(r) [+ dF(r0)]) - phi - (tau / 2) w_edge sum_e dc_e dphi_e^2 (- mu / r)
        R_C = r - r0 + tau L(c) phi;   ``frozen``: c does not depend on r (no dc terms).
        Per block, the edge terms (ss, st, ts, tt) go to the diagonal (ss, tt: summed over edges by
        bincount) and to the edge's own off-diagonal slots (st, ts: one scatter each).
        ``band``: written straight into LAPACK band storage (d <= 1, see :meth:`_band_layout`).
        """
        indices, indptr, nnz, pos = self._jacobian_pattern()
        if band:
            pos, size = self._band_layout()[4:]
        N = self.n_states
        s, t = self.src, self.dst
        tc = tau * c
        diags = [diagE, np.full(N, -1.0), np.ones(N), np.zeros(N)]
        blocks = [None, None, None, (tc, -tc, -tc, tc)]  # (ss, st, ts, tt) of E r, E phi, C r, C phi
        if not frozen:
            q = dphi * dphi * (tau / 2) * w_edge
            qab = -cab * q
            blocks[0] = (-caa * q, qab, qab, -cbb * q)
            pa, pb = dca * (tau * dphi * w_edge), dcb * (tau * dphi * w_edge)
            blocks[1] = (-pa, pa, -pb, pb)
            ra, rb = dca * (tau * dphi), dcb * (tau * dphi)
            blocks[2] = (ra, rb, -ra, -rb)
        data = np.zeros(size) if band else np.empty(nnz)
        for b in range(4):
            v = blocks[b]
            if v is None:
                data[pos["diag"][b]] = diags[b]
                if not band:
                    data[pos["st"][b]] = 0.0
                    data[pos["ts"][b]] = 0.0
                continue
            data[pos["diag"][b]] = diags[b] + np.bincount(s, weights=v[0], minlength=N) \
                + np.bincount(t, weights=v[3], minlength=N)
            if band:
                (ps_, os_), (pt_, ot_) = pos["st"][b], pos["ts"][b]
                data[ps_] = v[1][os_]
                data[pt_] = v[2][ot_]
            else:
                data[pos["st"][b]] = v[1]
                data[pos["ts"][b]] = v[2]
        return data, indices, indptr

    def _band_layout(self):
        """Cell-major permutation of the interleaved unknowns and the LAPACK band positions (d <= 1)."""
        if getattr(self, "_band", None) is not None:
            return self._band
        indices, indptr, nnz, _ = self._jacobian_pattern()
        N, K, M = self.n_states, self.K, self.M
        s = np.arange(N)
        cellmajor = (s % M) * K + s // M
        perm = np.empty(2 * N, dtype=np.int64)
        perm[0::2], perm[1::2] = 2 * cellmajor, 2 * cellmajor + 1
        rows = np.repeat(np.arange(2 * N), np.diff(indptr))
        pr, pc = perm[rows], perm[indices]
        kl, ku = int(max((pr - pc).max(), 0)), int(max((pc - pr).max(), 0))
        # column-major (Fortran) band storage, as LAPACK reads it (no transposed copy): entry (i, j)
        # at row kl + ku + i - j of column j; the kl leading rows hold the LU fill
        flat = pc * (2 * kl + ku + 1) + (kl + ku + pr - pc)
        pos = self._jacobian_pattern()[3]
        # edge entries sorted by band position (written in memory order, the values gathered instead)
        bpos = {"diag": [flat[p] for p in pos["diag"]]}
        for k in ("st", "ts"):
            bpos[k] = []
            for p in pos[k]:
                o = np.argsort(flat[p])
                bpos[k].append((flat[p][o], o))
        self._band = (perm, kl, ku, flat, bpos, (2 * kl + ku + 1) * 2 * N)
        return self._band

    def _face_pattern(self):
        """CSR pattern (diagonal + face couplings) of the preconditioner's spatial matrices, built once."""
        if self._fpat is not None:
            return self._fpat
        N = self.n_states
        f = ~self.is_graph
        s, t = self.src[f], self.dst[f]
        idx = np.arange(N, dtype=np.int64)
        rows = np.concatenate([idx, s, s, t, t])
        cols = np.concatenate([idx, s, t, s, t])
        uniq, inv = np.unique(rows * N + cols, return_inverse=True)
        indptr = np.zeros(N + 1, dtype=np.int64)
        np.cumsum(np.bincount(uniq // N, minlength=N), out=indptr[1:])
        self._fpat = (inv, (uniq % N).astype(np.int32), indptr.astype(np.int32), uniq.size)
        return self._fpat

    def _spatial_preconditioner(self, A, parts, tau):
        """Approximate inverse of the Jacobian: graph couplings lumped on the diagonal, rho' eliminated.

        Returns ``solve(vE, vC) -> (dr, dphi)`` for the system ``A dr + (-I + Ep) dphi = vE``,
        ``(I + Cr) dr + tau L dphi = vC`` (A: diagonal of the rho'-block; Ep, Cr, L with face
        couplings kept and graph couplings lumped on the diagonal). The Schur complement
        ``tau L + (I + Cr) A^-1 (I - Ep)`` is approximated by dropping ``Cr A^-1 Ep`` (a two-hop,
        second-order term that would widen the 5-point stencil to 13 points and triple the LU fill):
        ``S = tau L + A^-1 + Cr A^-1 - A^-1 Ep``, one sparse LU (K decoupled spatial blocks).
        """
        N = self.n_states
        inv, indices, indptr, nnz = self._face_pattern()
        c, dca, dcb, dphi = parts[0], parts[1], parts[2], parts[6]
        s, t, g = self.src, self.dst, self.is_graph
        f = ~g
        if dca is None:
            dca = dcb = dphi = np.zeros_like(c)
        p = tau * dphi
        # entries (s,s), (s,t), (t,s), (t,t) of Ep (d R_E / d phi without the -I), Cr (d R_C / d r
        # without the I) and tau L
        ep = (-dca * p, dca * p, -dcb * p, dcb * p)
        cr = (dca * p, dcb * p, -dca * p, -dcb * p)
        lp = (tau * c, -tau * c, -tau * c, tau * c)
        sg, tg = s[g], t[g]

        def assemble(v, diag):
            # graph couplings: diagonal entries only (lumped)
            d = diag + np.bincount(sg, weights=v[0][g], minlength=N) + np.bincount(tg, weights=v[3][g], minlength=N)
            data = np.bincount(inv, weights=np.concatenate([d, *(x[f] for x in v)]), minlength=nnz)
            return sp.csr_matrix((data, indices, indptr), shape=(N, N))

        zero = np.zeros(N)
        Ep, Cr = assemble(ep, zero), assemble(cr, zero)
        Ai = 1.0 / A
        Epd = np.bincount(s, weights=ep[0], minlength=N) + np.bincount(t, weights=ep[3], minlength=N)
        Crd = np.bincount(s, weights=cr[0], minlength=N) + np.bincount(t, weights=cr[3], minlength=N)
        sf, tf = s[f], t[f]
        Ais, Ait = Ai[sf], Ai[tf]
        epf, crf = [x[f] for x in ep], [x[f] for x in cr]
        # (Cr A^-1 Ep) on the 5-point pattern: (s,t) = Cr_ss Ep_st / A_s + Cr_st Ep_tt / A_t, ...
        pst = Crd[sf] * epf[1] * Ais + crf[1] * Epd[tf] * Ait
        pts = Crd[tf] * epf[2] * Ait + crf[2] * Epd[sf] * Ais
        pdiag = Crd * Epd * Ai + np.bincount(sf, weights=crf[1] * epf[2] * Ait, minlength=N) \
            + np.bincount(tf, weights=crf[2] * epf[1] * Ais, minlength=N)
        sv = (lp[0] + cr[0] * Ai[s] - ep[0] * Ai[s], lp[1] + cr[1] * Ai[t] - ep[1] * Ai[s],
              lp[2] + cr[2] * Ai[s] - ep[2] * Ai[t], lp[3] + cr[3] * Ai[t] - ep[3] * Ai[t])
        S = assemble(sv, Ai)
        S = S + sp.csr_matrix((np.bincount(self._fpat[0], weights=np.concatenate(
            [-pdiag, np.zeros(sf.size), -pst, -pts, np.zeros(sf.size)]), minlength=nnz), indices, indptr), shape=(N, N))
        # CSR arrays of S read as CSC are S^T: factorise S^T and solve with trans="T".
        # Structurally symmetric, diagonally dominant in practice: a symmetric ordering and
        # diagonal pivots keep the fill at the 2-d minimum-degree level
        St = sp.csc_matrix((S.data, S.indices, S.indptr), shape=(N, N))
        luS = spla.splu(St, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})

        def solve(vE, vC):
            y = vE * Ai
            dph = luS.solve(vC - y - Cr @ y, trans="T")
            return (vE + dph - Ep @ dph) * Ai, dph

        return solve

    EXACT_LOCAL_MAX = 200_000  # with W in d = 2: exact sparse LU of the local Jacobian up to this many unknowns

    def _newton_solve(self, J, data, rhs, diagE, parts, wE, it, res, col_scale, row_scale):
        """Solve J x = rhs for the Newton direction; returns (x, number of linear solves).

        d <= 1: banded LU (LAPACK gbsv, cell-major order: bandwidth ~ 2K). d = 2: GMRES with a
        block preconditioner (r eliminated by the diagonal of J, phi by the K decoupled spatial
        blocks of tau L + diag(1/A), one sparse LU). An interaction term adds ``wE W *`` to the
        rho'-columns of the energy rows: GMRES on the full operator, the local solve as preconditioner.
        """
        N = self.n_states
        have_W = self.energy.interaction is not None
        n2 = 2 * N

        def fail(msg, exc=None):
            raise JKOSolveError(f"JKO step: {msg} at Newton iteration {it} (scaled residual {res:.3g}); "
                                "reduce tau or check that the graph is connected") from exc

        if self.grid.dim <= 1:
            from scipy.linalg.lapack import dgbtrf, dgbtrs

            perm, kl, ku, flat, _, size = self._band_layout()
            if J is None:  # assembled in band storage already
                ab = data
            else:
                ab = np.zeros(size)  # LAPACK band storage with kl rows for the pivots
                ab[flat] = data
            lub, piv, info = dgbtrf(ab.reshape(n2, 2 * kl + ku + 1).T, kl, ku, overwrite_ab=1)  # F-order view
            if info != 0:
                fail(f"singular Newton system (LAPACK dgbtrf info {info})")

            def local(v):
                pv = np.empty(n2)
                pv[perm] = v
                x, info_s = dgbtrs(lub, kl, ku, pv, piv, overwrite_b=1)
                if info_s != 0:
                    fail(f"banded solve failed (LAPACK dgbtrs info {info_s})")
                return x[perm]
        elif have_W and n2 <= self.EXACT_LOCAL_MAX:
            # with an interaction the preconditioner must be exact on the local part: GMRES then only
            # resolves the W term (numerically low rank for a smooth kernel); the lumped block
            # preconditioner below stalls at the late barrier stages of a 2-d porous medium (measured)
            try:
                luJ = spla.splu(J.tocsc(), permc_spec="MMD_AT_PLUS_A")
            except RuntimeError as exc:
                fail(f"singular Newton system ({exc})", exc)
            local = luJ.solve
        else:
            # refactorised at every Newton iteration: with a 5-point stencil the LU is cheap, and a
            # stale one (the Jacobian moves a lot in the first iterations) costs more GMRES its
            A = np.asarray(J.diagonal()[0::2], dtype=float)
            A = np.where(np.abs(A) > 0, A, 1.0)
            try:
                psolve = self._spatial_preconditioner(A, parts, float(self._tau_now))
            except RuntimeError as exc:
                fail(f"singular preconditioner ({exc})", exc)

            def local(v):
                dr_, dph = psolve(v[0::2], v[1::2])
                out = np.empty(n2)
                out[0::2], out[1::2] = dr_, dph
                return out

        if not have_W and self.grid.dim <= 1:
            return local(rhs), 1

        # GMRES on the equilibrated system: rho'-columns scaled by rho' (a step in log rho'),
        # continuity rows by 1 / max(rho', rho) (relative mass balance), so that cells with tiny
        # density are solved as accurately as the bulk
        Dc = np.ones(n2)
        Dc[0::2] = np.maximum(col_scale, 1e-300)
        Dr = np.ones(n2)
        Dr[1::2] = 1.0 / np.maximum(row_scale, 1e-300)

        def matvec(xs):
            v = Dc * xs
            out = J @ v
            if have_W:
                out[0::2] += wE * self._conv(v[0::2])
            return Dr * out

        count = [0]

        def cb(_):
            count[0] += 1

        # inexact Newton (Eisenstat-Walker-type forcing): a loose linear solve far from the root,
        # eta = O(residual) keeps the quadratic convergence near it
        eta = max(1e-10, min(1e-2, 0.1 * res))
        op = spla.LinearOperator((n2, n2), matvec=matvec)
        pre = spla.LinearOperator((n2, n2), matvec=lambda y: local(y / Dr) / Dc)
        sol, info = spla.gmres(op, Dr * rhs, M=pre, rtol=eta, atol=0.0, restart=60, maxiter=10,
                               callback=cb, callback_type="pr_norm")
        sol = Dc * sol
        if info != 0 or not np.all(np.isfinite(sol)):
            fail(f"GMRES on the Newton system did not converge (info {info}, {count[0]} iterations)")
        return sol, count[0]

