! Loads a trained run through the C ABI from Fortran, predicts test sample 0
! and checks its relative L2 error against the truth equals what
! `tessera eval` wrote to summary.json (to 1e-12); then keeps the prediction
! (tessera_model_forward) and checks its fields are predict's and its gradient
! in the initial condition matches central finite differences of predictions,
! the same bits again after the model is freed.
!
!   predict_f RUN_DIR TEST_DATA.safetensors
program predict_f
  use, intrinsic :: iso_c_binding
  use tessera
  implicit none
  character(len=4096) :: run_dir, data
  type(c_ptr) :: model, forward
  type(tessera_shape) :: shape
  type(tessera_solve_status), allocatable :: status(:)
  real(c_double), allocatable :: truth(:, :), u(:, :), x(:), u_kept(:, :), fields_bar(:, :)
  real(c_double), allocatable :: ic_bar(:), ic_bar_again(:), direction(:)
  real(c_double) :: mine, eval, eps, analytic, numeric
  integer(c_int) :: rc
  integer :: i, j

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

  ! A kept prediction: predict's fields, and the gradient of <fields_bar, u>
  ! in the initial condition (through the backbone and the constraint layer)
  ! against central differences of predictions (a step of 1e-5: where a solve
  ! stops moves the fields by about 1e-10).
  allocate(u_kept(shape%nx, shape%nt), fields_bar(shape%nx, shape%nt), ic_bar(shape%nx), &
      ic_bar_again(shape%nx), direction(shape%nx))
  rc = tessera_model_forward(model, truth(:, 1), shape%ic_len, u_kept, shape%field_len, &
                             status, shape%n_experts, forward)
  if (rc /= TESSERA_STATUS_OK) call fail("forward: " // tessera_error_message())
  if (any(u_kept /= u)) call fail("the kept prediction's fields differ from predict's")
  do j = 1, int(shape%nt)
    do i = 1, int(shape%nx)
      fields_bar(i, j) = sin(1.3_c_double * ((j - 1) * shape%nx + i - 1))
    end do
  end do
  do i = 1, int(shape%nx)
    direction(i) = sin(0.71_c_double * (i - 1))
  end do
  rc = tessera_model_forward_backward(forward, fields_bar, shape%field_len, ic_bar, shape%ic_len)
  if (rc /= TESSERA_STATUS_OK) call fail("backward in ic: " // tessera_error_message())
  eps = 1e-5_c_double
  analytic = sum(ic_bar * direction)
  numeric = (predicted_dot(truth(:, 1) + eps * direction) &
      - predicted_dot(truth(:, 1) - eps * direction)) / (2 * eps)
  print '(a, es18.10, a, es18.10)', "Fortran: backward in ic ", analytic, ", finite differences ", &
      numeric
  if (abs(analytic) <= 1e-6_c_double) call fail("the gradient in ic is zero")
  if (abs(analytic - numeric) > 1e-5_c_double * max(abs(analytic), abs(numeric))) &
      call fail("backward in ic differs from finite differences")

  rc = tessera_model_free(model)
  if (rc /= TESSERA_STATUS_OK) call fail("free: " // tessera_error_message())
  ! Use after free is a status, not a crash.
  rc = tessera_model_predict(model, truth(:, 1), shape%ic_len, u, shape%field_len, &
                             status, shape%n_experts)
  if (rc /= TESSERA_STATUS_INVALID_HANDLE) call fail("use after free not detected")
  ! The kept prediction holds its model: the same gradient, bit for bit.
  rc = tessera_model_forward_backward(forward, fields_bar, shape%field_len, ic_bar_again, &
                                      shape%ic_len)
  if (rc /= TESSERA_STATUS_OK) call fail("kept backward: " // tessera_error_message())
  if (any(ic_bar_again /= ic_bar)) call fail("the gradient differs after the model's free")
  rc = tessera_model_forward_free(forward)
  if (rc /= TESSERA_STATUS_OK) call fail("free forward: " // tessera_error_message())
  rc = tessera_model_forward_free(forward)
  if (rc /= TESSERA_STATUS_INVALID_HANDLE) call fail("double free of a kept prediction missed")
  print '(a)', "Fortran: kept prediction: predict's fields, the same gradient after the model's free"
  deallocate(truth, u, x, status, u_kept, fields_bar, ic_bar, ic_bar_again, direction)
  print '(a)', "Fortran predict: all checks passed"

contains

  ! <fields_bar, u(c)>: the prediction for the initial condition c.
  real(c_double) function predicted_dot(c)
    real(c_double), intent(in) :: c(:)
    real(c_double) :: field(shape%nx, shape%nt)
    rc = tessera_model_predict(model, c, shape%ic_len, field, shape%field_len, &
                               status, shape%n_experts)
    if (rc /= TESSERA_STATUS_OK) call fail("predict (differences): " // tessera_error_message())
    predicted_dot = sum(field * fields_bar)
  end function

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
