"""Implicit time stepping of the grid flow: LU-factored implicit Euler / Crank–Nicolson, Lie splitting, and
implicit Euler with Newton's method for the nonlinear log-mean law.

* implicit Euler ``(I - tau A) rho' = rho`` (an M-matrix: positive and mass conserving for every
  tau; one sparse LU per tau, reused) and Crank–Nicolson ``(I - tau A / 2) rho' = (I + tau A / 2) rho``;
* ``split``: Lie splitting into implicit transport (K independent spatial blocks; tridiagonal LAPACK
  in 1-d) and implicit reaction (M independent K x K blocks, inverted in one batched call). The
  direct LU of the coupled system fills in badly for large K n^d; splitting keeps the cost linear in
  the number of unknowns at the price of an O(tau) splitting error;
* log-mean: solve ``r - r0 - tau (A r + R(r)) = 0`` by Newton with a sparse Jacobian, damped by halving.

The methods are mixed into :class:`sdot.grid.GridSolver` (they read its assembled operator and edges).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..rates import logmean_derivatives

__all__ = ["ImplicitStepping"]


class ImplicitStepping:
    """Implicit steps of a :class:`~sdot.grid.GridSolver` (a mixin: needs ``A``, the edge arrays, ``_lu``)."""

    def _factor(self, kind: str, tau: float):
        key = (kind, float(tau))
        lu = self._lu.get(key)
        if lu is None:
            I = sp.identity(self.n_states, format="csc")
            c = tau if kind == "implicit" else tau / 2
            B = (I - c * self.A).tocsc()
            lu = spla.splu(B, permc_spec="MMD_AT_PLUS_A" if self.grid.dim == 2 else "COLAMD")
            if len(self._lu) > 8:
                self._lu.clear()
            self._lu[key] = lu
        return lu

    def _newton_step(self, r0: np.ndarray, tau: float) -> np.ndarray:
        """Implicit Euler for the log-mean law: solve G(r) = r - r0 - tau (A r + R(r)) = 0 by Newton.

        Damped by halving so that every iterate stays positive; the Jacobian is assembled sparse.
        """
        N = self.n_states
        I = sp.identity(N, format="csc")
        a, b, w = self._r_src, self._r_dst, self._r_w
        fl = self.f.ravel()
        df = fl[b] - fl[a]
        wk = w / self.law.kappa
        r = np.maximum(r0, 0.0).copy()
        floor = 1e-300
        r = np.maximum(r, floor)

        def resid(x):
            return x - r0 - tau * (self.A @ x + self._reaction_logmean(x))

        G = resid(r)
        scale = max(1.0, float(np.abs(r0).max()))
        for it in range(self.newton_maxiter):
            if np.abs(G).max() <= self.newton_tol * scale:
                return r
            dA, dB = logmean_derivatives(r[a], r[b])
            # dR_a/dr_a = w(-T + dA df), dR_a/dr_b = w(T + dB df)
            vals = np.concatenate([wk * (-self.T + dA * df), wk * (self.T + dB * df)])
            J_R = sp.csr_matrix((vals, (np.concatenate([a, a]), np.concatenate([a, b]))), shape=(N, N))
            Jac = (I - tau * (self.A + J_R)).tocsc()
            delta = spla.spsolve(Jac, -G)
            t = 1.0
            nG0 = np.abs(G).max()
            for _ in range(60):
                x = r + t * delta
                if np.all(x > 0):
                    Gx = resid(x)
                    if np.abs(Gx).max() <= (1 - 1e-4 * t) * nG0 or t < 1e-6:
                        break
                t /= 2
            r, G = x, Gx
        if np.abs(G).max() > 1e3 * self.newton_tol * scale:
            raise RuntimeError(f"implicit log-mean Newton did not converge in {self.newton_maxiter} iterations "
                               f"(residual {np.abs(G).max():.3g}); reduce tau")
        return r

    def _split_factors(self, tau: float):
        key = ("split", float(tau))
        fac = self._lu.get(key)
        if fac is None:
            N, K, M = self.n_states, self.K, self.M
            As = sp.csr_matrix((self._s_rate, (self._s_dst, self._s_src)), shape=(N, N))
            As = As - sp.diags(np.asarray(As.sum(axis=0)).ravel())
            lu_s = None
            if As.nnz and self.grid.dim == 1:
                # node-major ordering makes 1-d transport tridiagonal: LAPACK gttrf / gttrs
                from scipy.linalg import lapack

                B = (sp.identity(N, format="csr") - tau * As).todia()
                diag = {int(o): B.data[k] for k, o in enumerate(B.offsets)}
                dl, d0, du = diag.get(-1, np.zeros(N))[:-1], diag[0].copy(), diag.get(1, np.zeros(N))[1:]
                fac_t = lapack.dgttrf(dl.copy(), d0, du.copy())
                if fac_t[-1] != 0:
                    raise np.linalg.LinAlgError(f"tridiagonal factorisation failed (info = {fac_t[-1]})")
                lu_s = _Tridiagonal(fac_t[:5])
            elif As.nnz:
                lu_s = spla.splu((sp.identity(N, format="csc") - tau * As).tocsc(), permc_spec="MMD_AT_PLUS_A")
            # reaction: one K x K forward operator per cell, inverted in one batched call
            cell = self._r_src % M
            g, h = self._r_src // M, self._r_dst // M
            R = np.zeros((M, K, K))
            np.add.at(R, (cell, h, g), self._r_rate)
            np.add.at(R, (cell, g, g), -self._r_rate)
            Binv = np.linalg.inv(np.eye(K)[None] - tau * R)
            fac = self._lu[key] = (lu_s, Binv)
        return fac

    def _split_step(self, r: np.ndarray, tau: float) -> np.ndarray:
        """Lie splitting: implicit transport (every node), then implicit reaction (every cell).

        Each sub-step is an M-matrix inverse with pi invariant, so the step keeps positivity, mass
        and the discrete Gibbs state exactly and never increases F_T; the splitting adds an
        O(tau) error of the same order as implicit Euler. Factorisations are block-diagonal:
        K transport blocks of n^d cells (one sparse LU) and M dense K x K reaction blocks.
        """
        if not self.law.linear:
            raise ValueError(f"method 'split' needs a linear law, got {self.law.name!r}")
        lu_s, Binv = self._split_factors(tau)
        x = lu_s.solve(r) if lu_s is not None else r
        X = x.reshape(self.K, self.M).T  # (M, K)
        return np.einsum("mgh,mh->gm", Binv, X).ravel()


class _Tridiagonal:
    """A LAPACK gttrf factorisation with a ``solve`` like SuperLU's."""

    def __init__(self, factors):
        self.factors = factors

    def solve(self, b: np.ndarray) -> np.ndarray:
        from scipy.linalg import lapack

        x, info = lapack.dgttrs(*self.factors, b)
        if info != 0:
            raise np.linalg.LinAlgError(f"tridiagonal solve failed (info = {info})")
        return x
