! The constraint layer from Fortran, as projection.c does it from C: project
! a pseudo-random basis B(N, X, T) (C's [T][X][N]) for the initial condition
! sin(pi x); check that each expert's field B w_k meets the PDE at that
! expert's sampled points to the solver's tolerance, that the backward pass
! matches central finite differences of the projected field (and the
! residual's backward pass those of the residual), that a kept forward
! pass gives the solve's field and the backward pass's gradient bit for bit,
! also after its layer is freed, and that its gradient in the initial
! condition matches central differences.
!
!   projection_f SCENARIO.toml
program projection_f
  use, intrinsic :: iso_c_binding
  use tessera
  implicit none
  integer(c_size_t), parameter :: n = 48, nb = 8
  real(c_double), parameter :: pi = 3.14159265358979323846_c_double
  character(len=4096) :: scenario
  type(c_ptr) :: layer, forward
  type(tessera_shape) :: shape
  type(tessera_solve_status), allocatable :: status(:)
  real(c_double), allocatable :: basis(:, :, :), small(:, :, :), direction(:, :, :)
  real(c_double), allocatable :: grad(:, :, :), grad_kept(:, :, :), ic(:), u(:, :), u_kept(:, :)
  real(c_double), allocatable :: u_bar(:, :), weights(:, :), ones(:, :), ic_bar(:), ic_direction(:)
  real(c_double) :: before, after, solver, eps, analytic, numeric
  integer(c_size_t) :: g, s, k, nx, nt, keep(1)
  integer(c_int) :: rc
  integer(c_int64_t) :: state
  integer :: i, j, q

  call get_command_argument(1, scenario)
  print '(a, a)', "Fortran: tessera ", tessera_version_string()
  ! n_dims = 0 keeps the scenario's grid (keep is not read).
  rc = tessera_constraint_create(trim(scenario) // c_null_char, keep, 0_c_size_t, layer)
  if (rc /= TESSERA_STATUS_OK) call fail("create: " // tessera_error_message())
  rc = tessera_constraint_shape(layer, shape)
  if (rc /= TESSERA_STATUS_OK) call fail("shape: " // tessera_error_message())
  g = shape%field_len
  s = shape%ic_len
  k = shape%n_experts
  nx = shape%nx
  nt = shape%nt
  allocate(basis(n, nx, nt), ic(nx), u(nx, nt), weights(n, k), ones(n, k), status(k))
  state = 12345
  do j = 1, int(nt)
    do i = 1, int(nx)
      do q = 1, int(n)
        state = state * 6364136223846793005_c_int64_t + 1442695040888963407_c_int64_t
        basis(q, i, j) = real(ishft(state, -11), c_double) / 2.0_c_double**52 - 1.0_c_double
      end do
    end do
  end do
  do i = 1, int(nx)
    ic(i) = sin(pi * (i - 0.5_c_double) / nx)
  end do
  rc = tessera_constraint_solve(layer, basis, g * n, n, ic, s, u, g, weights, k * n, status, k)
  if (rc /= TESSERA_STATUS_OK) call fail("solve: " // tessera_error_message())
  if (any(status%reason /= TESSERA_STOP_REASON_CONVERGED)) call fail("an expert did not converge")
  ones = 1
  before = residual_at_points(basis, ones)
  after = residual_at_points(basis, weights)
  solver = maxval(status%final_residual)
  print '(a, es10.3, a, es10.3, a, es10.3, a)', "Fortran: max |F| at the sampled points ", &
      before, " before, ", after, " after (solver residual ", solver, ")"
  if (after > solver) call fail("residual at the points above the solver's residual")
  if (after > 1e-6_c_double * before) call fail("residual at the points above the tolerance")

  ! Backward with nb basis functions (overdetermined, well conditioned):
  ! <dL/dB, V> against central differences of <u_bar, u(B + eps V)>.
  allocate(small(nb, nx, nt), direction(nb, nx, nt), grad(nb, nx, nt), grad_kept(nb, nx, nt))
  allocate(u_bar(nx, nt), u_kept(nx, nt))
  small = basis(1:nb, :, :)
  do j = 1, int(nt)
    do i = 1, int(nx)
      u_bar(i, j) = sin(1.3_c_double * ((j - 1) * nx + i - 1))
      do q = 1, int(nb)
        direction(q, i, j) = cos(0.7_c_double * (((j - 1) * nx + i - 1) * nb + q - 1))
      end do
    end do
  end do
  rc = tessera_constraint_backward(layer, small, g * nb, nb, ic, s, u_bar, g, grad, g * nb)
  if (rc /= TESSERA_STATUS_OK) call fail("backward: " // tessera_error_message())
  eps = 1e-6_c_double
  analytic = sum(grad * direction)
  numeric = (projected_dot(small + eps * direction, ic) &
      - projected_dot(small - eps * direction, ic)) / (2 * eps)
  print '(a, es18.10, a, es18.10)', "Fortran: backward ", analytic, ", finite differences ", numeric
  if (abs(analytic - numeric) > 1e-5_c_double * max(1.0_c_double, abs(analytic))) &
      call fail("backward differs from finite differences")

  ! The residual's backward pass at the projected field: <u_bar_r, v> against
  ! central differences of <f_bar, F(u)> (one equation here, m = 1).
  call check_residual_backward(u)

  ! A kept forward pass: the solve's u, then the backward pass's gradient
  ! without solving again, after the layer's handle is freed.
  rc = tessera_constraint_forward(layer, small, g * nb, nb, ic, s, u_kept, g, weights, k * nb, &
                                  status, k, forward)
  if (rc /= TESSERA_STATUS_OK) call fail("forward: " // tessera_error_message())
  rc = tessera_constraint_solve(layer, small, g * nb, nb, ic, s, u, g, weights, k * nb, status, k)
  if (rc /= TESSERA_STATUS_OK) call fail("solve (nb): " // tessera_error_message())
  if (any(u /= u_kept)) call fail("the kept forward pass's u differs from the solve's")

  ! The backward pass in the initial condition, while the layer can still
  ! solve: <dL/dic, d> against central differences of <u_bar, u(ic + eps d)>
  ! (the heat equation's initial rows take ic as right-hand sides, so u is
  ! linear in it), and its gradient in the basis is the backward pass's.
  allocate(ic_bar(nx), ic_direction(nx))
  do i = 1, int(nx)
    ic_direction(i) = sin(0.5_c_double * (i - 1))
  end do
  rc = tessera_forward_backward_ic(forward, u_bar, g, grad_kept, g * nb, ic_bar, s)
  if (rc /= TESSERA_STATUS_OK) call fail("backward in ic: " // tessera_error_message())
  if (any(grad /= grad_kept)) call fail("backward in ic's basis gradient differs from backward's")
  analytic = sum(ic_bar * ic_direction)
  numeric = (projected_dot(small, ic + eps * ic_direction) &
      - projected_dot(small, ic - eps * ic_direction)) / (2 * eps)
  print '(a, es18.10, a, es18.10)', "Fortran: backward in ic ", analytic, ", finite differences ", &
      numeric
  if (abs(analytic) <= 1e-8_c_double) call fail("the gradient in ic is zero")
  if (abs(analytic - numeric) > 1e-5_c_double * max(1.0_c_double, abs(analytic))) &
      call fail("backward in ic differs from finite differences")

  rc = tessera_constraint_free(layer)
  if (rc /= TESSERA_STATUS_OK) call fail("free: " // tessera_error_message())
  rc = tessera_forward_backward(forward, u_bar, g, grad_kept, g * nb)
  if (rc /= TESSERA_STATUS_OK) call fail("kept backward: " // tessera_error_message())
  if (any(grad /= grad_kept)) call fail("the kept backward pass differs from the backward pass")
  rc = tessera_forward_free(forward)
  if (rc /= TESSERA_STATUS_OK) call fail("free forward: " // tessera_error_message())
  rc = tessera_forward_free(forward)
  if (rc /= TESSERA_STATUS_INVALID_HANDLE) call fail("double free of a forward pass not detected")
  print '(a)', "Fortran: kept forward pass: the solve's u and the backward pass's gradient"
  deallocate(basis, small, direction, grad, grad_kept, ic, ic_bar, ic_direction, u, u_kept, u_bar, &
      weights, ones, status)
  print '(a)', "Fortran projection: all checks passed"

contains

  ! max |F| at expert e's sampled points of the field B w_e, over the experts.
  real(c_double) function residual_at_points(b, w)
    real(c_double), intent(in) :: b(n, g), w(n, k)
    real(c_double), allocatable :: field(:), f(:)
    integer(c_size_t), allocatable :: points(:)
    integer(c_size_t) :: e
    allocate(field(g), f(g), points(shape%points_per_expert))
    residual_at_points = 0
    do e = 1, k
      field = matmul(w(:, e), b)
      rc = tessera_constraint_residual(layer, field, g, f, g)
      if (rc /= TESSERA_STATUS_OK) call fail("residual: " // tessera_error_message())
      rc = tessera_constraint_points(layer, e - 1, points, shape%points_per_expert)
      if (rc /= TESSERA_STATUS_OK) call fail("points: " // tessera_error_message())
      ! C's 0-based flat indices are 1-based here.
      residual_at_points = max(residual_at_points, maxval(abs(f(points + 1))))
    end do
  end function

  ! <u_bar, u(b)> with nb basis functions, for the initial condition c.
  real(c_double) function projected_dot(b, c)
    real(c_double), intent(in) :: b(nb, nx, nt), c(nx)
    real(c_double) :: field(nx, nt), w(nb, k)
    type(tessera_solve_status) :: st(k)
    rc = tessera_constraint_solve(layer, b, g * nb, nb, c, s, field, g, w, k * nb, st, k)
    if (rc /= TESSERA_STATUS_OK) call fail("solve (differences): " // tessera_error_message())
    projected_dot = sum(field * u_bar)
  end function

  subroutine check_residual_backward(field)
    real(c_double), intent(in) :: field(nx, nt)
    real(c_double) :: f_bar(nx, nt), v(nx, nt), u_bar_r(nx, nt), f_plus(nx, nt), f_minus(nx, nt)
    real(c_double) :: r_analytic, r_numeric
    integer :: i, j
    if (shape%n_equations /= 1) call fail("this check assumes one equation")
    do j = 1, int(nt)
      do i = 1, int(nx)
        f_bar(i, j) = cos(0.3_c_double * ((j - 1) * nx + i - 1))
        v(i, j) = sin(0.9_c_double * ((j - 1) * nx + i - 1))
      end do
    end do
    rc = tessera_constraint_residual_backward(layer, field, g, f_bar, g, u_bar_r, g)
    if (rc /= TESSERA_STATUS_OK) call fail("residual backward: " // tessera_error_message())
    rc = tessera_constraint_residual(layer, field + eps * v, g, f_plus, g)
    if (rc /= TESSERA_STATUS_OK) call fail("residual: " // tessera_error_message())
    rc = tessera_constraint_residual(layer, field - eps * v, g, f_minus, g)
    if (rc /= TESSERA_STATUS_OK) call fail("residual: " // tessera_error_message())
    r_analytic = sum(u_bar_r * v)
    r_numeric = sum(f_bar * (f_plus - f_minus)) / (2 * eps)
    print '(a, es18.10, a, es18.10)', "Fortran: residual backward ", r_analytic, &
        ", finite differences ", r_numeric
    if (abs(r_analytic - r_numeric) > 1e-6_c_double * max(1.0_c_double, abs(r_analytic))) &
        call fail("residual backward differs from finite differences")
  end subroutine

  subroutine fail(message)
    character(len=*), intent(in) :: message
    print '(a, a)', "FAILED: ", message
    error stop 1
  end subroutine
end program projection_f
