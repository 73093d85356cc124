r"""The fused stencil kernel: a layer's linear part without the :math:`S`-fold spread.

For a stacked operator :math:`[D_1; \dots; D_S]` (CSR rows :math:`s n + i`) and a block
:math:`X` ``(n, batch, c_in)`` the kernel forms, one point :math:`i` and a tile of samples at a
time,

.. math::

    y_s = (D_s X)_{i,b} \in \mathbb{R}^{c_\mathrm{in}}, \qquad
    \text{out}_{i,b} \mathrel{+}= \sum_s \Phi_s y_s, \qquad
    G_s \mathrel{+}= y_s\, W_{i,b}^T,

so the mix :math:`\sum_s D_s X \Phi_s^T` and the contraction :math:`G_s = (D_s X)^T W` (the
gradient of a mix with respect to :math:`\Phi`) read :math:`X` once and never store the spread
:math:`D_s X` (``9 × n × batch × c`` doubles: 40 MB per layer at the digits demo's size). The
:math:`y_s` of one tile live in registers and L1.

The C source is specialised to the channel counts and compiled once by PyOP2 (the compiler PETSc
was configured with, cached on disk, rank 0 compiling for the communicator), as Firedrake
compiles its own kernels.
"""

import ctypes

from mpi4py import MPI
from pyop2 import compilation

__all__ = ["stencil_kernel"]

#: Samples per tile: ``BT × c`` doubles of :math:`y_s` stay in L1.
_TILE = 16

_SOURCE = r"""
#include <stdint.h>
#include <string.h>
#define CIN %(cin)d
#define COUT %(cout)d
#define CW %(cw)d
#define VO %(vo)d
#define VW %(vw)d
#define BT %(tile)d
typedef double vo_t __attribute__((vector_size(VO * 8), aligned(8)));
typedef double vw_t __attribute__((vector_size(VW * 8), aligned(8)));
#define NO (COUT / VO)
#define NW (CW / VW)

/* y[q, :] += sum over the CSR row r of v_e X[j_e, b + q, :], q < m */
static inline void gather(int32_t r, const int32_t *restrict p, const int32_t *restrict j,
                          const double *restrict v, const double *restrict X, int64_t B,
                          int64_t b, int64_t m, double *restrict y)
{
    for (int32_t e = p[r]; e < p[r + 1]; e++) {
        const double w = v[e];
        const double *restrict x = X + ((int64_t)j[e] * B + b) * CIN;
        if (m == BT) for (int k = 0; k < BT * CIN; k++) y[k] += w * x[k];
        else for (int64_t k = 0; k < m * CIN; k++) y[k] += w * x[k];
    }
}

/* acc[q] += y[q] Phi^T for q < m (P: Phi^T as CIN rows of NO vectors) */
static inline void mix(const double *restrict y, const vo_t *restrict P, int64_t m,
                       vo_t (*restrict acc)[NO])
{
    for (int64_t q = 0; q < m; q++)
        for (int k = 0; k < NO; k++) {
            vo_t a = acc[q][k];
            for (int c = 0; c < CIN; c++) a += y[q * CIN + c] * P[c * NO + k];
            acc[q][k] = a;
        }
}

/* acc[q] += v_e X[j_e, b + q] Phi^T over the CSR row r: no y for a row of one entry */
static inline void mix_row(int32_t r, const int32_t *restrict p, const int32_t *restrict j,
                           const double *restrict v, const double *restrict X, int64_t B,
                           int64_t b, int64_t m, const vo_t *restrict P, vo_t (*restrict acc)[NO])
{
    for (int32_t e = p[r]; e < p[r + 1]; e++) {
        const double w = v[e];
        const double *restrict x = X + ((int64_t)j[e] * B + b) * CIN;
        for (int64_t q = 0; q < m; q++)
            for (int k = 0; k < NO; k++) {
                vo_t a = {0}, a1 = {0};  /* two chains of FMAs: half the latency */
                int c = 0;
                for (; c + 1 < CIN; c += 2) {
                    a += x[q * CIN + c] * P[c * NO + k];
                    a1 += x[q * CIN + c + 1] * P[(c + 1) * NO + k];
                }
                if (c < CIN) a += x[q * CIN + c] * P[c * NO + k];
                acc[q][k] += w * (a + a1);
            }
    }
}

/* The flattened (point, sample) pairs in tiles of BT. Over the operators s:
   out (+)= sum_s (D_s X) Phi_s^T + bias (if PhiT; += if accumulate; the bias if given) and
   G_s += (D_s X)^T W (if W). Rows of one entry are mixed directly; longer
   rows, and every row when contracting, are first gathered into y = (D_s X) of the tile. */
void pdeopt_stencil(int32_t n, int32_t S, int32_t B,
                    const int32_t *op, const int32_t *oj, const double *ov, const double *X,
                    const int32_t *gp, const int32_t *gj, const double *gv, const double *Xg,
                    const double *restrict PhiT, double *restrict out, int32_t accumulate,
                    const double *restrict bias, const double *restrict W, double *restrict G)
{
    const int64_t np = (int64_t)n * B;
    for (int64_t p0 = 0; p0 < np; p0 += BT) {
        const int64_t m = np - p0 < BT ? np - p0 : BT;
        vo_t acc[BT][NO];
        memset(acc, 0, sizeof acc);
        for (int32_t s = 0; s < S; s++) {
            const vo_t *P = PhiT ? (const vo_t *)(PhiT + (int64_t)s * CIN * COUT) : 0;
            double y[BT * CIN];
            if (W) memset(y, 0, m * CIN * sizeof(double));
            for (int64_t i = p0 / B; i * B < p0 + m; i++) {
                const int32_t r = s * n + i;
                const int64_t lo = i * B > p0 ? i * B : p0;
                const int64_t hi = (i + 1) * B < p0 + m ? (i + 1) * B : p0 + m;
                const int64_t b = lo - i * B, q0 = lo - p0;
                const int32_t entries = op[r + 1] - op[r] + (gp ? gp[r + 1] - gp[r] : 0);
                if (!W && entries == 1) {
                    mix_row(r, op, oj, ov, X, B, b, hi - lo, P, acc + q0);
                    if (gp) mix_row(r, gp, gj, gv, Xg, B, b, hi - lo, P, acc + q0);
                    continue;
                }
                double *yi = y + q0 * CIN;
                if (!W) memset(yi, 0, (hi - lo) * CIN * sizeof(double));
                gather(r, op, oj, ov, X, B, b, hi - lo, yi);
                if (gp) gather(r, gp, gj, gv, Xg, B, b, hi - lo, yi);
                if (!W) mix(yi, P, hi - lo, acc + q0);
            }
            if (!W) continue;
            if (PhiT) mix(y, P, m, acc);
            vw_t *Gs = (vw_t *)(G + (int64_t)s * CIN * CW);
            const vw_t *w = (const vw_t *)(W + p0 * CW);
            for (int k = 0; k < NW; k++) {
                vw_t g[CIN];
                for (int c = 0; c < CIN; c++) g[c] = Gs[c * NW + k];
                for (int64_t q = 0; q < m; q++) {
                    const vw_t wq = w[q * NW + k];
                    for (int c = 0; c < CIN; c++) g[c] += y[q * CIN + c] * wq;
                }
                for (int c = 0; c < CIN; c++) Gs[c * NW + k] = g[c];
            }
        }
        if (PhiT) {
            vo_t *z = (vo_t *)(out + p0 * COUT);
            if (bias)
                for (int64_t q = 0; q < m; q++)
                    for (int k = 0; k < NO; k++) acc[q][k] += ((const vo_t *)bias)[k];
            if (accumulate)
                for (int64_t q = 0; q < m; q++)
                    for (int k = 0; k < NO; k++) z[q * NO + k] += acc[q][k];
            else
                for (int64_t q = 0; q < m; q++)
                    for (int k = 0; k < NO; k++) z[q * NO + k] = acc[q][k];
        }
    }
}
"""

_compiled = {}


def _width(c):
    """The SIMD width (doubles) for rows of ``c`` channels: the largest power of two up to 8
    dividing ``c``."""
    return next(w for w in (8, 4, 2, 1) if c % w == 0)


def stencil_kernel(c_in: int, c_out: int, c_w: int, comm: MPI.Comm = MPI.COMM_WORLD):
    """The compiled ``pdeopt_stencil`` for ``c_in`` input, ``c_out`` mixed and ``c_w``
    contracted channels (collective over ``comm`` the first time: rank 0 compiles)."""
    key = (c_in, c_out, c_w, comm.py2f())
    if key not in _compiled:
        code = _SOURCE % {"cin": c_in, "cout": c_out, "cw": c_w, "tile": _TILE,
                          "vo": _width(c_out), "vw": _width(c_w)}
        fn = compilation.load(code, "c", comm=comm).pdeopt_stencil
        fn.argtypes = ([ctypes.c_int32] * 3 + [ctypes.c_void_p] * 10 + [ctypes.c_int32]
                       + [ctypes.c_void_p] * 3)
        fn.restype = None
        _compiled[key] = fn
    return _compiled[key]
