r"""The spatial operators of a layer, written in UFL and assembled once by Firedrake.

On a :class:`~pdeopt.model.grid.PixelGrid` the basis is the nine products
:math:`\delta^a_x \delta^b_y`, :math:`a, b \in \{0, 1, 2\}`, of the 1-D identity, first and
second differences, each the lumped-mass :math:`Q_1` discretisation of a derivative scaled by
the cell size:

.. math::

    \delta_x = h_x M^{-1} B_x, \quad B_x = \int \partial_x u\, v \,\mathrm{d}x_\mathrm{KMV},
    \qquad
    \delta_{xx} = h_x^2 M^{-1} A_x, \quad
    A_x = -\int \partial_x u\, \partial_x v \,\mathrm{d}x_\mathrm{KMV},

with :math:`M` the lumped (vertex-quadrature, exactly diagonal) mass matrix. In the interior
:math:`\delta_x u_i = (u_{i+1} - u_{i-1})/2` and :math:`\delta_{xx} u_i = u_{i+1} - 2u_i + u_{i-1}`;
on the boundary they are the one-sided difference and the Neumann second difference
:math:`2(u_1 - u_0)`. The nine products span every 3×3 stencil, so a layer is exactly a 3×3
convolution (Ruthotto & Haber 2020). On any other mesh the basis is the subset that is defined
there: identity, :math:`\partial_x`, :math:`\partial_y` and the Laplacian.

The same span has better coordinates for training. The *shift* basis :data:`GRID_SHIFTS`
recombines the 1-D factors into

.. math::

    e_{-1} = I - \delta + \tfrac12\delta^2, \qquad e_0 = I, \qquad
    e_{+1} = I + \delta + \tfrac12\delta^2,

whose interior stencils are the unit stencils :math:`u_{i-1}`, :math:`u_i`, :math:`u_{i+1}`, and
takes the nine products :math:`e_a^x e_b^y`. A layer's mixing matrices are then the entries of
its 3×3 convolution kernel, so :math:`\|\Theta\|^2` is the Frobenius norm of the stencil: the
coordinates are orthonormal. The difference coordinates are not: the Gram matrix of their
interior stencils has condition number 22.5² ≈ 506, so a regulariser
:math:`\tfrac\alpha2\|\theta\|^2`, an initial draw and a first-order optimiser all weigh the
directions of the stencil space very unevenly there. On the boundary rows the shifts inherit the
one-sided rows of :math:`\delta` and :math:`\delta^2`: the outward shift repeats the boundary
value, the inward one extrapolates linearly (:math:`2u_1 - u_0` at :math:`i = 0`).
"""

from collections.abc import Iterable, Sequence
from types import MappingProxyType

import numpy as np
import firedrake as fd
from firedrake.functionspaceimpl import WithGeometry
from mpi4py import MPI
from petsc4py import PETSc

from pdeopt.data.validation import shown
from pdeopt.errors import InputError, OptionError
from pdeopt.model.grid import PixelGrid
from pdeopt.model.point import PointDomain
from pdeopt.model.stencil import StencilStack

__all__ = ["OperatorSet", "assemble_operators", "GRID_BASIS", "GRID_SHIFTS", "MESH_BASIS",
           "SHIFTS_FROM_DIFFERENCES"]

#: The nine stencil products on a pixel grid: name -> (order in x, order in y).
GRID_BASIS = MappingProxyType({
    "I": (0, 0), "dx": (1, 0), "dy": (0, 1), "dxx": (2, 0), "dyy": (0, 2),
    "dxy": (1, 1), "dxxy": (2, 1), "dxyy": (1, 2), "dxxyy": (2, 2)})
#: The nine shifts on a pixel grid: name -> (offset in x, offset in y).
GRID_SHIFTS = MappingProxyType({f"e({a},{b})": (a, b) for b in (-1, 0, 1) for a in (-1, 0, 1)})
#: Row a + 1 holds :math:`e_a` in the 1-D factors (identity, first, second difference).
SHIFTS_FROM_DIFFERENCES = np.array([[1.0, -1.0, 0.5], [1.0, 0.0, 0.0], [1.0, 1.0, 0.5]])
SHIFTS_FROM_DIFFERENCES.flags.writeable = False
#: The operators defined on a general mesh.
MESH_BASIS = ("I", "dx", "dy", "laplace")


def _lumped():
    return fd.dx(scheme="KMV", degree=1)


class OperatorSet:
    r"""The assembled operators :math:`D_s`, their transposes and the lumped mass.

    Attributes
    ----------
    names : tuple of str
        The basis, in the order of the mixing matrices :math:`\Theta_s`.
    mats : list of PETSc.Mat
        :math:`D_s`, assembled.
    mass : numpy.ndarray
        The owned diagonal of the lumped mass matrix :math:`M`.
    forward, transpose : StencilStack
        :math:`[D_s]` and :math:`[D_s^T]` on this rank's rows.
    mass_adjoint, mass_adjoint_transpose : StencilStack
        :math:`[M^{-1} D_s^T M]`, the adjoints of the :math:`D_s` in the lumped-mass inner
        product, and their Euclidean transposes :math:`[M D_s M^{-1}]`.
    space : firedrake.FunctionSpace
        The scalar space the operators act on.
    comm : mpi4py.MPI.Comm
        The spatial communicator (the mesh's).
    cell_size : tuple of float or None
        The pixel size :math:`(h_x, h_y)` on a :class:`~pdeopt.model.grid.PixelGrid`, ``None``
        on any other mesh.
    length_scales : tuple of float
        The lengths :math:`(h_x, h_y)` the operators are scaled by (:math:`\delta_x = h_x
        M^{-1}B_x`, the Laplacian by :math:`h_xh_y`): the cell size on a grid, the mean cell
        width on a mesh, 1 on a point.
    """

    def __init__(self, space: WithGeometry, names: Sequence[str], mats: list[PETSc.Mat],
                 mass: np.ndarray, comm: MPI.Comm,
                 cell_size: tuple[float, float] | None = None,
                 length_scales: tuple[float, float] = (1.0, 1.0)):
        self.space = space
        self.cell_size = None if cell_size is None else tuple(float(h) for h in cell_size)
        self.length_scales = tuple(float(h) for h in length_scales)
        self.names = tuple(names)
        self.mats = mats
        self.mass = mass
        self.comm = comm
        self.forward = StencilStack(mats, comm)
        transposes = [m.transpose(PETSc.Mat()) for m in mats]
        self.transpose = StencilStack(transposes, comm)
        # K_s^* = M^{-1} D_s^T M and its transpose M D_s M^{-1}: the mass scalings folded in
        m = PETSc.Vec().createWithArray(mass, comm=comm)
        m_inv = PETSc.Vec().createWithArray(1.0 / mass, comm=comm)
        for A in transposes:
            A.diagonalScale(L=m_inv, R=m)
        self.mass_adjoint = StencilStack(transposes, comm)
        self.mass_adjoint_transpose = StencilStack([A.transpose(PETSc.Mat())
                                                    for A in transposes], comm)

    @property
    def S(self) -> int:
        """The number of operators in the basis."""
        return len(self.names)

    @property
    def n_owned(self) -> int:
        """Points owned by this rank."""
        return self.forward.n


def _scaled(form, mass_inv, scale):
    A = fd.assemble(form, mat_type="aij").petscmat
    A.diagonalScale(L=mass_inv)
    A.scale(scale)
    return A


def assemble_operators(domain: PixelGrid | WithGeometry,
                       basis: Sequence[str] | None = None) -> OperatorSet:
    """Assemble the stencil basis on a :class:`PixelGrid` or a Firedrake function space.

    Parameters
    ----------
    domain
        A :class:`PixelGrid` (all of :data:`GRID_BASIS` available), a scalar continuous
        :math:`P_1`/:math:`Q_1` ``FunctionSpace`` on any mesh (only :data:`MESH_BASIS`), or a
        :class:`~pdeopt.model.point.PointDomain` (only the identity ``"I"``).
    basis
        Names of the operators, in order, at least one, each once: from :data:`GRID_BASIS` (the
        default on a grid), :data:`GRID_SHIFTS` and ``"laplace"`` on a grid, from
        :data:`MESH_BASIS` (the default) elsewhere. A name that is none of these is an
        :class:`~pdeopt.errors.OptionError`; a grid operator on another mesh, an
        :class:`~pdeopt.errors.InputError`.
    """
    if isinstance(domain, PointDomain):
        return _point_operators(domain, basis)
    V, (hx, hy), available = _domain(domain)
    basis = _basis(basis, domain, available)
    comm = V.mesh().comm
    u, v = fd.TrialFunction(V), fd.TestFunction(V)
    dxl = _lumped()
    mass = fd.assemble(v * dxl).dat.data_ro.copy()
    mass_inv = PETSc.Vec().createWithArray(1.0 / mass, comm=comm)
    ident = _scaled(u * v * dxl, mass_inv, 1.0)
    first = [_scaled(u.dx(i) * v * dxl, mass_inv, h) for i, h in enumerate((hx, hy))]
    second = [_scaled(-u.dx(i) * v.dx(i) * dxl, mass_inv, h * h) for i, h in enumerate((hx, hy))]
    factors = [[ident, first[0], second[0]], [ident, first[1], second[1]]]
    if any(name in GRID_SHIFTS for name in basis):
        shifts = [{a: _combination(factors[axis], SHIFTS_FROM_DIFFERENCES[a + 1])
                   for a in (-1, 0, 1)} for axis in (0, 1)]
    mats = []
    for name in basis:
        if name == "laplace":
            mats.append(_scaled(-fd.inner(fd.grad(u), fd.grad(v)) * dxl, mass_inv, hx * hy))
            continue
        if name in GRID_SHIFTS:
            a, b = GRID_SHIFTS[name]
            E = shifts[0][a].matMult(shifts[1][b])
            E.chop(1e-12)  # the cancelling entries of the combinations: round-off, not stencil
            mats.append(E)
            continue
        a, b = GRID_BASIS[name]
        X, Y = factors[0][a], factors[1][b]
        mats.append(X.copy() if b == 0 else (Y.copy() if a == 0 else X.matMult(Y)))
    return OperatorSet(V, basis, mats, mass, comm,
                       cell_size=domain.cell_size if isinstance(domain, PixelGrid) else None,
                       length_scales=(hx, hy))


def _point_operators(domain: PointDomain, basis) -> OperatorSet:
    """The identity on one point: the :math:`DG_0` mass of the single unit cell."""
    if basis is not None and tuple(basis) != ("I",):
        raise InputError(f"assemble_operators: basis={shown(basis)} on a PointDomain; a point "
                         f"has no neighbours, so its only operator is the identity: basis=('I',) "
                         f"or None.")
    u, v = fd.TrialFunction(domain.V), fd.TestFunction(domain.V)
    ident = fd.assemble(u * v * fd.dx, mat_type="aij").petscmat
    mass = fd.assemble(v * fd.dx).dat.data_ro.copy()
    return OperatorSet(domain.V, ("I",), [ident], mass, domain.comm)


def _domain(domain) -> tuple[WithGeometry, tuple[float, float], tuple[str, ...]]:
    """The space, the cell size and the operators available on ``domain``, checked."""
    if isinstance(domain, PixelGrid):
        return domain.V, domain.cell_size, tuple(GRID_BASIS) + tuple(GRID_SHIFTS) + ("laplace",)
    if not isinstance(domain, WithGeometry):
        raise InputError(f"assemble_operators: domain={shown(domain)} must be a PixelGrid, a "
                         f"Firedrake FunctionSpace or a PointDomain; build a grid with "
                         f"pdeopt.PixelGrid(nx, ny).")
    element = domain.ufl_element()
    if domain.value_shape != () or element.family() not in ("Lagrange", "Q") \
            or element.degree() != 1:
        raise InputError(f"assemble_operators: domain is a {element.family()} space of degree "
                         f"{element.degree()} and value shape {domain.value_shape}; the operators "
                         f"need a scalar continuous P1 or Q1 space, "
                         f"fd.FunctionSpace(mesh, 'CG', 1).")
    mesh = domain.mesh()
    area = fd.assemble(fd.Constant(1.0) * fd.dx(domain=mesh))
    h = float(np.sqrt(area / mesh.comm.allreduce(mesh.cell_set.size)))
    return domain, (h, h), MESH_BASIS


def _basis(basis, domain, available) -> tuple[str, ...]:
    """The operator names, checked: known, available on ``domain``, at least one, distinct."""
    if basis is None:
        return tuple(GRID_BASIS) if isinstance(domain, PixelGrid) else MESH_BASIS
    if isinstance(basis, str) or not isinstance(basis, Iterable):
        raise InputError(f"assemble_operators: basis={shown(basis)} must be a sequence of operator "
                         f"names, e.g. ('I', 'dx', 'dy') or tuple(pdeopt.GRID_SHIFTS).")
    basis = tuple(basis)
    if not basis:
        raise InputError("assemble_operators: basis=() is empty; a layer needs at least one "
                         "operator, e.g. ('I',), or None for the default basis.")
    known = tuple(GRID_BASIS) + tuple(GRID_SHIFTS) + MESH_BASIS
    unknown = [b for b in basis if not isinstance(b, str) or b not in known]
    if unknown:
        raise OptionError(f"assemble_operators: unknown operators {unknown} in basis; choose "
                          f"from {list(available)}.")
    unavailable = [b for b in basis if b not in available]
    if unavailable:
        raise InputError(f"assemble_operators: the operators {unavailable} in basis are not "
                         f"available on this domain; choose from {list(available)} (the "
                         f"products need a PixelGrid).")
    repeated = sorted({b for b in basis if basis.count(b) > 1})
    if repeated:
        raise InputError(f"assemble_operators: basis repeats {repeated}; give each operator "
                         f"once (a repeated operator adds no stencil, only a redundant "
                         f"control).")
    return basis


def _combination(mats, coefficients):
    r""":math:`\sum_i c_i A_i` as a new PETSc matrix (the union of the sparsity patterns)."""
    A = mats[0].copy()
    A.scale(coefficients[0])
    for c, B in zip(coefficients[1:], mats[1:]):
        if c:
            A.axpy(c, B, structure=PETSc.Mat.Structure.DIFFERENT_NONZERO_PATTERN)
    return A
