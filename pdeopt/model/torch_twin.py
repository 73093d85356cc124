r"""The torch twin: the same discrete network written independently with torch operations.

The operators are rebuilt from their 1-D stencils as dense matrices along each image axis —
interior :math:`\delta u_i = (u_{i+1}-u_{i-1})/2`, :math:`\delta^2 u_i = u_{i+1}-2u_i+u_{i-1}`,
boundary rows one-sided and Neumann — not from Firedrake's assembly, so agreement verifies the
UFL operators, the schemes and every pyadjoint derivative (gradient by autograd, Hessian-vector
products by double backward). Images are ``(batch, channels, ny, nx)`` tensors in float64.
On grids of at most ``DENSE_POINTS`` pixels the stencils are also formed as dense
:math:`n \times n` matrices :math:`D_s = Y_s \otimes X_s`, and a layer's operator
:math:`\sum_s \Theta_s \otimes D_s` acts on the whole batch as one matrix product (≈ 3.6× faster
than the axis-wise products for the 8×8 digits, where it serves the first-order baselines of
``benchmarks/optimizers.py``); larger grids use the axis-wise products.
"""

import numpy as np
import torch

from pdeopt.data.validation import shown
from pdeopt.errors import InputError
from pdeopt.model.grid import PixelGrid
from pdeopt.model.model import Model
from pdeopt.model.operators import GRID_BASIS, GRID_SHIFTS, SHIFTS_FROM_DIFFERENCES
from pdeopt.model.readout import FieldMisfit, ProbeRegression

__all__ = ["TorchTwin"]

DENSE_POINTS = 1024


def _difference_matrices(n):
    """Identity, first and second difference (n × n) with pdeopt's boundary rows."""
    eye = torch.eye(n, dtype=torch.float64)
    d1 = torch.zeros(n, n, dtype=torch.float64)
    d2 = torch.zeros(n, n, dtype=torch.float64)
    i = torch.arange(1, n - 1)
    d1[i, i - 1], d1[i, i + 1] = -0.5, 0.5
    d1[0, 0], d1[0, 1], d1[-1, -2], d1[-1, -1] = -1.0, 1.0, -1.0, 1.0
    d2[i, i - 1], d2[i, i], d2[i, i + 1] = 1.0, -2.0, 1.0
    d2[0, 0], d2[0, 1], d2[-1, -2], d2[-1, -1] = -2.0, 2.0, 2.0, -2.0
    return [eye, d1, d2]


def _q1_1d(n, h):
    """Consistent 1-D linear-element mass and stiffness matrices on n nodes, spacing h."""
    M = torch.zeros(n, n, dtype=torch.float64)
    K = torch.zeros(n, n, dtype=torch.float64)
    for e in range(n - 1):
        idx = [e, e + 1]
        M[np.ix_(idx, idx)] += h / 6 * torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
        K[np.ix_(idx, idx)] += torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64) / h
    return M, K


class TorchTwin:
    """The discrete network and loss of a pdeopt :class:`~pdeopt.model.model.Model` in torch.

    Parameters
    ----------
    model
        The pdeopt model on a :class:`~pdeopt.model.grid.PixelGrid`.
    grid
        That grid.
    regularizer
        The pdeopt :class:`~pdeopt.problem.regularizer.Regularizer` to mirror, or ``None``.
    """

    def __init__(self, model: Model, grid: PixelGrid, regularizer=None):
        if not isinstance(model, Model) or not isinstance(grid, PixelGrid):
            raise InputError(f"TorchTwin: model={shown(model)} and grid={shown(grid)} must be a "
                             f"Model and the PixelGrid it was built on.")
        points = model.comm.allreduce(model.network.ops.n_owned)
        if points != grid.nx * grid.ny:
            raise InputError(f"TorchTwin: the model has {points} points, the grid "
                             f"{grid.ny}x{grid.nx}; give the grid the model was built on.")
        net = model.network
        self.model, self.grid, self.regularizer = model, grid, regularizer
        self.scheme = net.scheme
        self.sigma = net.scheme.forcing.sigma
        self.N, self.C = net.N, net.C
        names = net.ops.names
        hx, hy = grid.cell_size
        self.X = torch.stack(_difference_matrices(grid.nx))
        self.Y = torch.stack(_difference_matrices(grid.ny))
        if all(n in GRID_BASIS for n in names):
            slot = GRID_BASIS
        elif all(n in GRID_SHIFTS for n in names):
            T = torch.tensor(SHIFTS_FROM_DIFFERENCES)
            self.X, self.Y = (torch.einsum("ab,bij->aij", T, F) for F in (self.X, self.Y))
            slot = {n: (a + 1, b + 1) for n, (a, b) in GRID_SHIFTS.items()}
        else:
            raise InputError(f"the torch twin supports the grid basis {list(GRID_BASIS)} or the "
                             f"shifts {list(GRID_SHIFTS)}, one of them; got {list(names)}.")
        # stencil s = Y[iy] (x) X[ix]: its mixing matrix goes to slot (iy, ix) of a 3x3 grid
        self.slots = torch.tensor([[slot[n][1], slot[n][0]] for n in names])
        wx = torch.full((grid.nx,), hx, dtype=torch.float64)
        wy = torch.full((grid.ny,), hy, dtype=torch.float64)
        wx[[0, -1]] *= 0.5
        wy[[0, -1]] *= 0.5
        self.mass = wy[:, None] * wx[None, :]
        self.D = (torch.stack([torch.kron(self.Y[iy], self.X[ix])
                               for iy, ix in self.slots.tolist()])
                  if grid.nx * grid.ny <= DENSE_POINTS else None)
        if self.scheme.name == "imex":
            Mx, Kx = _q1_1d(grid.nx, hx)
            My, Ky = _q1_1d(grid.ny, hy)
            # L = kappa int (h_x^2 u_x v_x + h_y^2 u_y v_y): each axis in its own pixel units
            stiffness = hx * hx * torch.kron(My, Kx) + hy * hy * torch.kron(Ky, Mx)
            self.A = (torch.diag(self.mass.reshape(-1))
                      + self.scheme.h * self.scheme.diffusivity * stiffness)

    # -- operators ------------------------------------------------------------------------
    def _grid(self, W):
        """The mixing matrices on the 3x3 grid of 1-D factor pairs (zero where unused)."""
        Wg = W.new_zeros((3, 3) + tuple(W.shape[1:]))
        Wg[self.slots[:, 0], self.slots[:, 1]] = W
        return Wg

    def _dense(self, W):
        r""":math:`\sum_s \Theta_s \otimes D_s`, rows (output channel, pixel), columns (input
        channel, pixel)."""
        S, c_out, c_in = W.shape
        n = self.D.shape[1]
        return torch.einsum("sdc,spq->dpcq", W, self.D).reshape(c_out * n, c_in * n)

    def L(self, u: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        r""":math:`\sum_s D_s u \Theta_s^T`, :math:`D_s u = Y_s u X_s^T` on every image."""
        if self.D is not None:
            B, _, ny, nx = u.shape
            return (u.reshape(B, -1) @ self._dense(W).T).reshape(B, W.shape[1], ny, nx)
        V = torch.einsum("eyi,bcij,axj->eabcyx", self.Y, u, self.X)
        return torch.einsum("eadc,eabcyx->bdyx", self._grid(W), V)

    def K_star(self, a: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        r""":math:`M^{-1}\sum_s D_s^T (M a)\Theta_s`."""
        if self.D is not None:
            B, _, ny, nx = a.shape
            Ma = (self.mass * a).reshape(B, -1)
            return (Ma @ self._dense(W)).reshape(B, W.shape[2], ny, nx) / self.mass
        V = torch.einsum("eiy,bcij,ajx->eabcyx", self.Y, self.mass * a, self.X)
        return torch.einsum("eacd,eabcyx->bdyx", self._grid(W), V) / self.mass

    # -- network --------------------------------------------------------------------------
    def _views(self, theta):
        lay = self.model.layout
        return {n: theta[lay.slice(n)].reshape(lay.shapes[i]) for i, n in enumerate(lay.names)}

    def output(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r""":math:`u_N` for ``theta`` (flat tensor) and images ``x`` ``(B, c_in, ny, nx)``."""
        v = self._views(theta)
        net = self.model.network
        if net.lift:
            u = self.L(x, v["opening.weight"]) + v["opening.bias"][None, :, None, None]
            if net.opening_activation is not None:
                u = net.opening_activation.torch(u)
        else:
            u = x
        h, name = self.scheme.h, self.scheme.name
        if name == "delay":
            return self._delay(u, v)
        W, b = v["layers.weight"], v["layers.bias"]
        if name == "verlet":
            return self._verlet(u, W, b)
        p = u
        for k in range(self.N):
            z = self.L(u, W[k]) + b[k][None, :, None, None]
            if name == "forward_euler":
                u = u + h * self.sigma.torch(z)
            elif name == "parabolic":
                u = u - h * self.K_star(self.sigma.torch(z), W[k])
            elif name == "leapfrog":
                c = (0.5 if k == 0 else 1.0) * h * h
                p, u = u, 2 * u - p - c * self.K_star(self.sigma.torch(z), W[k])
            elif name == "imex":
                w = self.mass * (u + h * self.sigma.torch(z))
                B, C, ny, nx = w.shape
                rhs = w.reshape(B * C, ny * nx).T
                u = torch.linalg.solve(self.A, rhs).T.reshape(B, C, ny, nx)
            else:
                raise InputError(f"the torch twin has no scheme {name!r}.")
        return u

    def _verlet(self, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        r"""The Verlet pair from :math:`(y_0, z_0) = (u_0, 0)`; :math:`u_N = y_N`.

        :math:`y_{k+1} = y_k + hK_{k,1}^*\sigma(K_{k,1}z_k + b_{k,1})`,
        :math:`z_{k+1} = z_k - c_kK_{k,2}^*\sigma(K_{k,2}y_{k+1} + b_{k,2})`
        (:math:`c_0 = \tfrac32 h`, :math:`c_k = h`: the second-order start), the sets
        ``W[k, 0]``, ``W[k, 1]``.
        """
        h, z = self.scheme.h, torch.zeros_like(y)
        for k in range(self.N):
            a = self.sigma.torch(self.L(z, W[k, 0]) + b[k, 0][None, :, None, None])
            y = y + h * self.K_star(a, W[k, 0])
            a = self.sigma.torch(self.L(y, W[k, 1]) + b[k, 1][None, :, None, None])
            z = z - (1.5 if k == 0 else 1.0) * h * self.K_star(a, W[k, 1])
        return y

    def _delay(self, u: torch.Tensor, v: dict) -> torch.Tensor:
        r"""The delay layers :math:`u_{k+1} = u_k + hF(u_k, v_k)` on a ring of states,
        :math:`v_k = (1 - s)u_{k-m} + s u_{k-m-1}`, for the
        :class:`~pdeopt.model.delay_forcing.DelayedPerceptron`
        :math:`F = \sigma(L(u;A) + L(v;B) + b)E^T + c`."""
        scheme, net = self.scheme, self.model.network
        f = scheme.forcing
        if not hasattr(f, "present"):
            raise InputError(f"the torch twin has no delay forcing {type(f).__name__}; it "
                             f"mirrors the DelayedPerceptron.")
        L, h = scheme.ring, scheme.h
        if scheme.history == "constant":
            ring = [u] * L
        else:
            C = u.shape[1] // L
            ring = [u[:, j * C:(j + 1) * C] for j in range(L)]
        for k in range(self.N):
            th = {field: (v[name][k] if per_layer else v[name]) for (name, per_layer), field
                  in zip(net.control_fields, scheme.control_type._fields)}
            if scheme.learned:
                d = th["delay"][0] / h
                m = int(np.floor(float(d)))
                s = d - m
                delayed = (1 - s) * ring[-1 - m] + s * ring[-2 - m]
            else:
                delayed = ring[-1 - scheme.delay]
            z = self.L(delayed, th["B"]) + th["b"][None, :, None, None]
            if f.present:
                z = z + self.L(ring[-1], th["A"])
            a = self.sigma.torch(z)
            if f.H is not None:
                a = torch.einsum("bhyx,ch->bcyx", a, th["E"]) + th["c"][None, :, None, None]
            ring = ring[1:] + [ring[-1] + h * a]
        return ring[-1]

    def logits(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The classifier's logits ``(B, K)``: pooled features of :math:`u_N`, then ``W F + c``."""
        v = self._views(theta)
        u = self.output(theta, x)
        F = torch.nn.functional.avg_pool2d(u, 2)
        F = F.permute(0, 2, 3, 1).reshape(u.shape[0], -1)
        return F @ v["readout.weight"].T + v["readout.bias"]

    def predictions(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The probe regression's predictions ``(B, K)``: :math:`u_N` at the probe pixels
        (probe major, channel minor), then ``W F + c``."""
        v = self._views(theta)
        u = self.output(theta, x)
        iy, ix = torch.as_tensor(self.model.readout.probes).T
        F = u[:, :, iy, ix].permute(0, 2, 1).reshape(u.shape[0], -1)
        return F @ v["readout.weight"].T + v["readout.bias"]

    def regularization(self, theta: torch.Tensor) -> torch.Tensor:
        """:math:`R(\\theta)` as a torch scalar (zero without a regulariser)."""
        r = self.regularizer
        if r is None:
            return torch.zeros((), dtype=theta.dtype)
        v = self._views(theta)
        R = 0.5 * r.alpha * torch.sum(torch.as_tensor(r.decayed) * theta * theta)
        for name in r.layer_blocks:
            d = v[name][1:] - v[name][:-1]
            R = R + 0.5 * r.beta / r.h * torch.sum(d * d)
        return R

    def loss(self, theta: torch.Tensor, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The readout loss plus the regulariser, as a torch scalar."""
        if isinstance(self.model.readout, FieldMisfit):
            u = self.output(theta, x)
            J = 0.5 * torch.sum(self.mass * (u - target) ** 2) / u.shape[0]
        elif isinstance(self.model.readout, ProbeRegression):
            J = 0.5 * torch.sum((self.predictions(theta, x) - target) ** 2) / x.shape[0]
        else:
            J = torch.nn.functional.cross_entropy(self.logits(theta, x), target)
        return J + self.regularization(theta)

    def gauss_newton_product(self, theta: np.ndarray, x: torch.Tensor,
                             direction: np.ndarray) -> np.ndarray:
        r""":math:`(J_\ell^T \nabla^2\mathrm{CE}\, J_\ell + H_R) d` by forward- and reverse-mode
        autograd (classifier only)."""
        t = torch.tensor(theta, dtype=torch.float64)
        d = torch.tensor(direction, dtype=torch.float64)
        ell, Jd = torch.autograd.functional.jvp(lambda s: self.logits(s, x), t, d)
        p = torch.softmax(ell, dim=1)
        HJd = (p * Jd - p * torch.sum(p * Jd, dim=1, keepdim=True)) / ell.shape[0]
        _, out = torch.autograd.functional.vjp(lambda s: self.logits(s, x), t, HJd)
        _, HRd = torch.autograd.functional.hvp(self.regularization, t, d)
        return (out + HRd).numpy()

    # -- conversions ----------------------------------------------------------------------
    def images(self, field: np.ndarray) -> torch.Tensor:
        """A pdeopt block ``(n_owned, B, C)`` as a torch tensor ``(B, C, ny, nx)`` (collective)."""
        return torch.from_numpy(np.ascontiguousarray(
            self.grid.to_image(field).transpose(0, 3, 1, 2)))

    def derivatives(self, theta: np.ndarray, x: torch.Tensor, target: torch.Tensor,
                    direction: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Loss, gradient and Hessian-vector product by autograd (NumPy in, NumPy out)."""
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        d = torch.tensor(direction, dtype=torch.float64)
        J = self.loss(t, x, target)
        (g,) = torch.autograd.grad(J, t, create_graph=True)
        (Hd,) = torch.autograd.grad(g @ d, t)
        return float(J.detach()), g.detach().numpy(), Hd.numpy()
