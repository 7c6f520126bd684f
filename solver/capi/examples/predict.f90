! Loads a trained run through the C ABI from Fortran, predicts test sample 0
! and checks its relative L2 error against the truth equals what
! `tessera eval` wrote to summary.json (to 1e-12).
!
!   predict_f RUN_DIR TEST_DATA.safetensors
program predict_f
  use, intrinsic :: iso_c_binding
  use tessera
  implicit none
  character(len=4096) :: run_dir, data
  type(c_ptr) :: model
  type(tessera_shape) :: shape
  type(tessera_solve_status), allocatable :: status(:)
  real(c_double), allocatable :: truth(:, :), u(:, :), x(:)
  real(c_double) :: mine, eval
  integer(c_int) :: rc

  call get_command_argument(1, run_dir)
  call get_command_argument(2, data)
  rc = tessera_set_num_threads(2_c_size_t)
  rc = tessera_model_load(trim(run_dir) // c_null_char, model)
  if (rc /= TESSERA_STATUS_OK) call fail("load: " // tessera_error_message())
  rc = tessera_model_shape(model, shape)
  if (rc /= TESSERA_STATUS_OK) call fail("shape: " // tessera_error_message())
  ! The x coordinates (the C examples compare them with the data file's grid).
  allocate(x(shape%nx))
  rc = tessera_model_coordinates(model, 1_c_size_t, x, shape%nx)
  if (rc /= TESSERA_STATUS_OK) call fail("coordinates: " // tessera_error_message())
  if (any(x(2:) <= x(:shape%nx - 1))) call fail("x coordinates do not increase")
  rc = tessera_model_coordinates(model, 1_c_size_t, x, shape%nx - 1)
  if (rc /= TESSERA_STATUS_SHAPE_MISMATCH) call fail("a short coordinate array was accepted")
  print '(a, i0, a, es10.3, a, es10.3)', "Fortran: ", shape%nx, " x coordinates from ", x(1), &
      " to ", x(shape%nx)
  ! C [T][X] is (X, T) in Fortran.
  allocate(truth(shape%nx, shape%nt), u(shape%nx, shape%nt), status(shape%n_experts))
  call read_sample(trim(data), truth)
  rc = tessera_model_predict(model, truth(:, 1), shape%ic_len, u, shape%field_len, &
                             status, shape%n_experts)
  if (rc /= TESSERA_STATUS_OK) call fail("predict: " // tessera_error_message())
  mine = sqrt(sum_sq(u - truth) / sum_sq(truth))
  eval = first_rel_l2(trim(run_dir) // "/summary.json")
  print '(a, es24.17, a, es24.17, a, i0, a, i0)', "Fortran: sample 0 rel L2 ", mine, &
      " (tessera eval ", eval, "), expert 0 stop reason ", status(1)%reason, &
      ", iterations ", status(1)%iterations
  print '(a, es10.3)', "|rel L2 - eval| = ", abs(mine - eval)
  if (abs(mine - eval) > 1e-12_c_double * eval) call fail("rel L2 differs from tessera eval's")
  rc = tessera_model_free(model)
  if (rc /= TESSERA_STATUS_OK) call fail("free: " // tessera_error_message())
  ! Use after free is a status, not a crash.
  rc = tessera_model_predict(model, truth(:, 1), shape%ic_len, u, shape%field_len, &
                             status, shape%n_experts)
  if (rc /= TESSERA_STATUS_INVALID_HANDLE) call fail("use after free not detected")
  deallocate(truth, u, x, status)
  print '(a)', "Fortran predict: all checks passed"

contains

  ! Σ v², summed in memory order (the order `tessera eval` sums in).
  real(c_double) function sum_sq(v)
    real(c_double), intent(in) :: v(:, :)
    integer :: i, j
    sum_sq = 0
    do j = 1, size(v, 2)
      do i = 1, size(v, 1)
        sum_sq = sum_sq + v(i, j) * v(i, j)
      end do
    end do
  end function

  ! Sample 0 of a .safetensors data file (tensor "0000/data", float32).
  subroutine read_sample(path, out)
    character(len=*), intent(in) :: path
    real(c_double), intent(out) :: out(:, :)
    integer(c_int64_t) :: header_len, first
    character(len=:), allocatable :: header
    real(c_float), allocatable :: values(:, :)
    integer :: unit, at
    open(newunit=unit, file=path, access="stream", form="unformatted", status="old")
    read(unit) header_len
    allocate(character(len=header_len) :: header)
    read(unit) header
    at = index(header, '"0000/data"')
    at = at + index(header(at:), '"data_offsets":[') + len('"data_offsets":[') - 1
    read(header(at:), *) first
    allocate(values(size(out, 1), size(out, 2)))
    read(unit, pos=9 + header_len + first) values
    close(unit)
    out = real(values, c_double)
  end subroutine

  ! The first entry of summary.json's "rel_l2" array.
  real(c_double) function first_rel_l2(path)
    character(len=*), intent(in) :: path
    character(len=:), allocatable :: text
    integer :: unit, size_bytes, at
    open(newunit=unit, file=path, access="stream", form="unformatted", status="old")
    inquire(unit=unit, size=size_bytes)
    allocate(character(len=size_bytes) :: text)
    read(unit) text
    close(unit)
    at = index(text, '"rel_l2": [') + len('"rel_l2": [')
    read(text(at:), *) first_rel_l2
  end function

  subroutine fail(message)
    character(len=*), intent(in) :: message
    print '(a)', "FAILED: " // message
    error stop 1
  end subroutine
end program predict_f
