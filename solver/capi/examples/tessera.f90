! Fortran bindings of tessera.h (iso_c_binding interface blocks), one for
! each of its functions (run.sh checks that none is missing). Arrays: Fortran
! is column-major,
! so a C array [batch][T][X] is u(X, T, batch) here, element for element;
! pass the first element (or the whole contiguous array). Strings must end
! with c_null_char. Every function returns a status (TESSERA_STATUS_OK = 0).
module tessera
  use, intrinsic :: iso_c_binding
  implicit none

  integer(c_int), parameter :: TESSERA_STATUS_OK = 0
  integer(c_int), parameter :: TESSERA_STATUS_NULL_POINTER = 1
  integer(c_int), parameter :: TESSERA_STATUS_INVALID_HANDLE = 2
  integer(c_int), parameter :: TESSERA_STATUS_SHAPE_MISMATCH = 3
  integer(c_int), parameter :: TESSERA_STATUS_NON_FINITE = 4
  integer(c_int), parameter :: TESSERA_STATUS_IO = 5
  integer(c_int), parameter :: TESSERA_STATUS_INVALID_RUN = 6
  integer(c_int), parameter :: TESSERA_STATUS_INVALID_ARGUMENT = 7
  integer(c_int), parameter :: TESSERA_STATUS_SOLVE_FAILED = 8
  integer(c_int), parameter :: TESSERA_STATUS_INTERNAL = 9
  integer(c_int), parameter :: TESSERA_STATUS_DEVICE = 10

  integer(c_int), parameter :: TESSERA_STOP_REASON_CONVERGED = 0
  integer(c_int), parameter :: TESSERA_STOP_REASON_MAX_ITERATIONS = 1
  integer(c_int), parameter :: TESSERA_STOP_REASON_NON_FINITE = 2
  integer(c_int), parameter :: TESSERA_STOP_REASON_SINGULAR = 3

  type, bind(C) :: tessera_shape
    integer(c_size_t) :: n_dims, nt, nx, ny, ic_len, field_len
    integer(c_size_t) :: n_experts, points_per_expert, n_equations, n_basis
  end type tessera_shape

  type, bind(C) :: tessera_solve_status
    integer(c_int) :: reason
    integer(c_int64_t) :: iterations
    real(c_double) :: initial_residual, final_residual, gradient_norm
  end type tessera_solve_status

  interface
    integer(c_size_t) function tessera_last_error(buf, len) bind(C, name="tessera_last_error")
      import :: c_char, c_size_t
      character(kind=c_char), intent(out) :: buf(*)
      integer(c_size_t), value :: len
    end function

    integer(c_int) function tessera_set_num_threads(n) bind(C, name="tessera_set_num_threads")
      import :: c_int, c_size_t
      integer(c_size_t), value :: n
    end function

    integer(c_int) function tessera_model_load(run_dir, model) bind(C, name="tessera_model_load")
      import :: c_int, c_char, c_ptr
      character(kind=c_char), intent(in) :: run_dir(*)
      type(c_ptr), intent(out) :: model
    end function

    integer(c_int) function tessera_model_load_on(run_dir, device, model) &
        bind(C, name="tessera_model_load_on")
      import :: c_int, c_char, c_ptr
      character(kind=c_char), intent(in) :: run_dir(*), device(*)
      type(c_ptr), intent(out) :: model
    end function

    integer(c_int) function tessera_model_free(model) bind(C, name="tessera_model_free")
      import :: c_int, c_ptr
      type(c_ptr), value :: model
    end function

    integer(c_int) function tessera_model_shape(model, shape) bind(C, name="tessera_model_shape")
      import :: c_int, c_ptr, tessera_shape
      type(c_ptr), value :: model
      type(tessera_shape), intent(out) :: shape
    end function

    integer(c_int) function tessera_model_coordinates(model, axis, out, n_out) &
        bind(C, name="tessera_model_coordinates")
      import :: c_int, c_ptr, c_double, c_size_t
      type(c_ptr), value :: model
      integer(c_size_t), value :: axis, n_out
      real(c_double), intent(out) :: out(*)
    end function

    integer(c_int) function tessera_model_predict(model, ic, n_ic, out, n_out, status, n_status) &
        bind(C, name="tessera_model_predict")
      import :: c_int, c_ptr, c_double, c_size_t, tessera_solve_status
      type(c_ptr), value :: model
      real(c_double), intent(in) :: ic(*)
      integer(c_size_t), value :: n_ic, n_out, n_status
      real(c_double), intent(out) :: out(*)
      type(tessera_solve_status), intent(out) :: status(*)
    end function

    integer(c_int) function tessera_model_forward(model, ic, n_ic, fields, n_fields, status, &
        n_status, forward) bind(C, name="tessera_model_forward")
      import :: c_int, c_ptr, c_double, c_size_t, tessera_solve_status
      type(c_ptr), value :: model
      real(c_double), intent(in) :: ic(*)
      integer(c_size_t), value :: n_ic, n_fields, n_status
      real(c_double), intent(out) :: fields(*)
      type(tessera_solve_status), intent(out) :: status(*)
      type(c_ptr), intent(out) :: forward
    end function

    integer(c_int) function tessera_model_forward_backward(forward, fields_bar, n_fields_bar, &
        ic_bar, n_ic_bar) bind(C, name="tessera_model_forward_backward")
      import :: c_int, c_ptr, c_double, c_size_t
      type(c_ptr), value :: forward
      real(c_double), intent(in) :: fields_bar(*)
      integer(c_size_t), value :: n_fields_bar, n_ic_bar
      real(c_double), intent(out) :: ic_bar(*)
    end function

    integer(c_int) function tessera_model_forward_free(forward) &
        bind(C, name="tessera_model_forward_free")
      import :: c_int, c_ptr
      type(c_ptr), value :: forward
    end function

    integer(c_int) function tessera_constraint_create(path, dims, n_dims, layer) &
        bind(C, name="tessera_constraint_create")
      import :: c_int, c_char, c_ptr, c_size_t
      character(kind=c_char), intent(in) :: path(*)
      integer(c_size_t), intent(in) :: dims(*)
      integer(c_size_t), value :: n_dims
      type(c_ptr), intent(out) :: layer
    end function

    integer(c_int) function tessera_constraint_free(layer) bind(C, name="tessera_constraint_free")
      import :: c_int, c_ptr
      type(c_ptr), value :: layer
    end function

    integer(c_int) function tessera_constraint_solve(layer, basis, n_basis_values, n_basis, ic, n_ic, &
        u, n_u, weights, n_weights, status, n_status) bind(C, name="tessera_constraint_solve")
      import :: c_int, c_ptr, c_double, c_size_t, tessera_solve_status
      type(c_ptr), value :: layer
      real(c_double), intent(in) :: basis(*), ic(*)
      integer(c_size_t), value :: n_basis_values, n_basis, n_ic, n_u, n_weights, n_status
      real(c_double), intent(out) :: u(*), weights(*)
      type(tessera_solve_status), intent(out) :: status(*)
    end function

    integer(c_int) function tessera_constraint_shape(layer, shape) &
        bind(C, name="tessera_constraint_shape")
      import :: c_int, c_ptr, tessera_shape
      type(c_ptr), value :: layer
      type(tessera_shape), intent(out) :: shape
    end function

    ! Flat 0-based C indices: add 1 to index a Fortran array of the field.
    integer(c_int) function tessera_constraint_points(layer, expert, out, n_out) &
        bind(C, name="tessera_constraint_points")
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: layer
      integer(c_size_t), value :: expert, n_out
      integer(c_size_t), intent(out) :: out(*)
    end function

    integer(c_int) function tessera_constraint_residual(layer, u, n_u, out, n_out) &
        bind(C, name="tessera_constraint_residual")
      import :: c_int, c_ptr, c_double, c_size_t
      type(c_ptr), value :: layer
      real(c_double), intent(in) :: u(*)
      integer(c_size_t), value :: n_u, n_out
      real(c_double), intent(out) :: out(*)
    end function

    integer(c_int) function tessera_constraint_residual_backward(layer, u, n_u, f_bar, n_f_bar, &
        u_bar, n_u_bar) bind(C, name="tessera_constraint_residual_backward")
      import :: c_int, c_ptr, c_double, c_size_t
      type(c_ptr), value :: layer
      real(c_double), intent(in) :: u(*), f_bar(*)
      integer(c_size_t), value :: n_u, n_f_bar, n_u_bar
      real(c_double), intent(out) :: u_bar(*)
    end function

    integer(c_int) function tessera_constraint_backward(layer, basis, n_basis_values, n_basis, &
        ic, n_ic, u_bar, n_u_bar, basis_bar, n_basis_bar) bind(C, name="tessera_constraint_backward")
      import :: c_int, c_ptr, c_double, c_size_t
      type(c_ptr), value :: layer
      real(c_double), intent(in) :: basis(*), ic(*), u_bar(*)
      integer(c_size_t), value :: n_basis_values, n_basis, n_ic, n_u_bar, n_basis_bar
      real(c_double), intent(out) :: basis_bar(*)
    end function

    integer(c_int) function tessera_constraint_forward(layer, basis, n_basis_values, n_basis, &
        ic, n_ic, u, n_u, weights, n_weights, status, n_status, forward) &
        bind(C, name="tessera_constraint_forward")
      import :: c_int, c_ptr, c_double, c_size_t, tessera_solve_status
      type(c_ptr), value :: layer
      real(c_double), intent(in) :: basis(*), ic(*)
      integer(c_size_t), value :: n_basis_values, n_basis, n_ic, n_u, n_weights, n_status
      real(c_double), intent(out) :: u(*), weights(*)
      type(tessera_solve_status), intent(out) :: status(*)
      type(c_ptr), intent(out) :: forward
    end function

    integer(c_int) function tessera_forward_backward(forward, u_bar, n_u_bar, basis_bar, &
        n_basis_bar) bind(C, name="tessera_forward_backward")
      import :: c_int, c_ptr, c_double, c_size_t
      type(c_ptr), value :: forward
      real(c_double), intent(in) :: u_bar(*)
      integer(c_size_t), value :: n_u_bar, n_basis_bar
      real(c_double), intent(out) :: basis_bar(*)
    end function

    integer(c_int) function tessera_forward_backward_ic(forward, u_bar, n_u_bar, basis_bar, &
        n_basis_bar, ic_bar, n_ic_bar) bind(C, name="tessera_forward_backward_ic")
      import :: c_int, c_ptr, c_double, c_size_t
      type(c_ptr), value :: forward
      real(c_double), intent(in) :: u_bar(*)
      integer(c_size_t), value :: n_u_bar, n_basis_bar, n_ic_bar
      real(c_double), intent(out) :: basis_bar(*), ic_bar(*)
    end function

    integer(c_int) function tessera_forward_free(forward) bind(C, name="tessera_forward_free")
      import :: c_int, c_ptr
      type(c_ptr), value :: forward
    end function

    ! A static C string: see tessera_version_string below.
    type(c_ptr) function tessera_version() bind(C, name="tessera_version")
      import :: c_ptr
    end function
  end interface

contains

  ! The library's version as a Fortran string.
  function tessera_version_string() result(version)
    character(len=:), allocatable :: version
    character(kind=c_char), pointer :: chars(:)
    integer :: n, i
    ! Only the characters before the terminating NUL are read.
    call c_f_pointer(tessera_version(), chars, [huge(0)])
    n = 0
    do while (chars(n + 1) /= c_null_char)
      n = n + 1
    end do
    allocate(character(len=n) :: version)
    do i = 1, n
      version(i:i) = chars(i)
    end do
  end function

  ! The last error message of this thread as a Fortran string.
  function tessera_error_message() result(message)
    character(len=:), allocatable :: message
    character(kind=c_char) :: buf(1024)
    integer(c_size_t) :: n
    integer :: i
    n = tessera_last_error(buf, int(size(buf), c_size_t))
    n = min(n, int(size(buf) - 1, c_size_t))
    allocate(character(len=n) :: message)
    do i = 1, int(n)
      message(i:i) = buf(i)
    end do
  end function
end module tessera
