/*
 * tessera.hpp: C++17 wrappers over tessera.h, header-only. Handles free
 * themselves (RAII, movable, not copyable), a failed call throws
 * tessera::Error (the status and the library's message), and arrays come
 * back as std::vector<double>. Inputs are tessera::Values: a std::vector,
 * or a pointer and a length into the caller's own storage (no copy). The
 * layout rules are tessera.h's: float64, row-major, a batch is consecutive
 * arrays of one shape.
 *
 *   tessera::Model model("runs/my-run");
 *   std::vector<double> u = model.predict(ic);              // [batch][T][X]
 *   tessera::ModelForward kept = model.forward(ic);         // kept.fields() == u
 *   std::vector<double> ic_bar = kept.backward(fields_bar); // dL/dics
 *
 *   tessera::ConstraintLayer layer("scenarios/quickstart.toml");
 *   tessera::Forward fwd = layer.forward(basis, n_basis, ic);
 *   std::vector<double> basis_bar = fwd.backward(u_bar);   // dL/dbasis
 *   tessera::Gradient both = fwd.backward_with_ic(u_bar);  // and dL/dics
 */
#ifndef TESSERA_HPP
#define TESSERA_HPP

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tessera.h"

namespace tessera {

/** A call the library refused: status() says which kind, what() the library's message. */
class Error : public std::runtime_error {
public:
    Error(TesseraStatus status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    TesseraStatus status() const noexcept { return status_; }

private:
    TesseraStatus status_;
};

/** Read-only float64 values: a std::vector's, or `size` values at `data` (not copied). */
struct Values {
    const double *data;
    std::size_t size;
    Values(const std::vector<double> &v) : data(v.data()), size(v.size()) {}
    Values(const double *data, std::size_t size) : data(data), size(size) {}
};

namespace detail {

/** Throws the thread's last error for a status that is not OK. */
inline void check(TesseraStatus status) {
    if (status == TESSERA_STATUS_OK) return;
    std::vector<char> message(tessera_last_error(nullptr, 0) + 1);
    tessera_last_error(message.data(), message.size());
    throw Error(status, std::string(message.data()));
}

template <typename T, TesseraStatus (*Free)(T *)>
struct Deleter {
    void operator()(T *handle) const noexcept { Free(handle); }
};

/** How many arrays of `len` values `n` values hold; SHAPE_MISMATCH unless a
 *  positive whole number (found here: the output arrays are sized from it). */
inline std::size_t batch_of(std::size_t n, std::size_t len, const char *what) {
    if (len == 0 || n == 0 || n % len != 0)
        throw Error(TESSERA_STATUS_SHAPE_MISMATCH,
                    std::string(what) + " has " + std::to_string(n) +
                        " values, not a positive multiple of " + std::to_string(len));
    return n / len;
}

}  // namespace detail

/** The library's version. */
inline std::string version() { return tessera_version(); }

/** Worker threads of each handle created afterwards (0: RAYON_NUM_THREADS, else one per core). */
inline void set_num_threads(std::size_t n) { detail::check(tessera_set_num_threads(n)); }

/** A prediction kept for its gradient in the initial conditions
 *  (Model::forward). It holds its model; it outlives the Model. */
class ModelForward {
public:
    /** The fields [batch][T][X](/[Y]): Model::predict's, bit for bit. */
    const std::vector<double> &fields() const noexcept { return fields_; }
    /** Each expert's solve, [batch][K]. */
    const std::vector<TesseraSolveStatus> &statuses() const noexcept { return statuses_; }

    /** dL/dics (laid out like the initial conditions) for fields_bar = dL/dfields,
     *  through the constraint layer and the backbone. */
    std::vector<double> backward(Values fields_bar) const {
        std::vector<double> out(ic_len_);
        detail::check(tessera_model_forward_backward(handle_.get(), fields_bar.data,
                                                     fields_bar.size, out.data(), out.size()));
        return out;
    }

private:
    friend class Model;
    ModelForward(TesseraModelForward *handle, std::vector<double> fields,
                 std::vector<TesseraSolveStatus> statuses, std::size_t ic_len)
        : handle_(handle), fields_(std::move(fields)), statuses_(std::move(statuses)),
          ic_len_(ic_len) {}

    std::unique_ptr<TesseraModelForward,
                    detail::Deleter<TesseraModelForward, tessera_model_forward_free>>
        handle_;
    std::vector<double> fields_;
    std::vector<TesseraSolveStatus> statuses_;
    std::size_t ic_len_;
};

/** A trained run (config.toml and checkpoint.safetensors of a run directory). */
class Model {
public:
    /** Loads `run_dir` onto `device` ("cpu", "cuda", "cuda:N"). */
    explicit Model(const std::string &run_dir, const std::string &device = "cpu") {
        TesseraModel *handle = nullptr;
        detail::check(tessera_model_load_on(run_dir.c_str(), device.c_str(), &handle));
        handle_.reset(handle);
        detail::check(tessera_model_shape(handle_.get(), &shape_));
    }

    const TesseraShape &shape() const noexcept { return shape_; }

    /** Where the values lie along `axis` (0: t, 1: x, 2: y). */
    std::vector<double> coordinates(std::size_t axis) const {
        std::size_t n = axis == 0 ? shape_.nt : axis == 1 ? shape_.nx : shape_.ny;
        std::vector<double> out(n);
        detail::check(tessera_model_coordinates(handle_.get(), axis, out.data(), out.size()));
        return out;
    }

    /** The constrained fields [batch][T][X](/[Y]) for initial conditions
     *  [batch][X](/[Y]); each expert's solve in `statuses` ([batch][K]) if given. */
    std::vector<double> predict(Values ics, std::vector<TesseraSolveStatus> *statuses = nullptr) const {
        Outputs o = outputs(ics);
        detail::check(tessera_model_predict(handle_.get(), ics.data, ics.size, o.fields.data(),
                                            o.fields.size(), o.statuses.data(), o.statuses.size()));
        if (statuses) *statuses = std::move(o.statuses);
        return std::move(o.fields);
    }

    /** predict(), kept for its gradient in the initial conditions. */
    ModelForward forward(Values ics) const {
        Outputs o = outputs(ics);
        TesseraModelForward *handle = nullptr;
        detail::check(tessera_model_forward(handle_.get(), ics.data, ics.size, o.fields.data(),
                                            o.fields.size(), o.statuses.data(), o.statuses.size(),
                                            &handle));
        return ModelForward(handle, std::move(o.fields), std::move(o.statuses), ics.size);
    }

private:
    struct Outputs {
        std::vector<double> fields;
        std::vector<TesseraSolveStatus> statuses;
    };

    Outputs outputs(Values ics) const {
        std::size_t batch = detail::batch_of(ics.size, shape_.ic_len, "ics");
        return {std::vector<double>(batch * shape_.field_len),
                std::vector<TesseraSolveStatus>(batch * shape_.n_experts)};
    }

    std::unique_ptr<TesseraModel, detail::Deleter<TesseraModel, tessera_model_free>> handle_;
    TesseraShape shape_{};
};

/** What a projection returns: the fields [batch][T][X](/[Y]), each expert's
 *  weights [batch][K][N] and solve statuses [batch][K]. */
struct Solution {
    std::vector<double> u, weights;
    std::vector<TesseraSolveStatus> statuses;
};

/** What Forward::backward_with_ic returns: dL/dbasis (laid out like the basis)
 *  and dL/dics (laid out like the initial conditions). */
struct Gradient {
    std::vector<double> basis, ic;
};

/** A solve kept for its backward pass (ConstraintLayer::forward). It holds
 *  the solved problems and a copy of the basis; it outlives its layer. */
class Forward {
public:
    const Solution &solution() const noexcept { return solution_; }

    /** dL/dbasis (laid out like the basis) for u_bar = dL/du, without solving again. */
    std::vector<double> backward(Values u_bar) const {
        std::vector<double> out(basis_len_);
        detail::check(tessera_forward_backward(handle_.get(), u_bar.data, u_bar.size, out.data(),
                                               out.size()));
        return out;
    }

    /** backward(), and dL/dics too: the same dL/dbasis (bit for bit on the CPU). */
    Gradient backward_with_ic(Values u_bar) const {
        Gradient out{std::vector<double>(basis_len_), std::vector<double>(ic_len_)};
        detail::check(tessera_forward_backward_ic(handle_.get(), u_bar.data, u_bar.size,
                                                  out.basis.data(), out.basis.size(),
                                                  out.ic.data(), out.ic.size()));
        return out;
    }

private:
    friend class ConstraintLayer;
    Forward(TesseraForward *handle, Solution solution, std::size_t basis_len, std::size_t ic_len)
        : handle_(handle), solution_(std::move(solution)), basis_len_(basis_len), ic_len_(ic_len) {}

    std::unique_ptr<TesseraForward, detail::Deleter<TesseraForward, tessera_forward_free>> handle_;
    Solution solution_;
    std::size_t basis_len_, ic_len_;
};

/** The hard-constraint layer of a scenario file, as a projection of the caller's basis. */
class ConstraintLayer {
public:
    /** The layer of `scenario` (TOML); `dims` ({nt, nx(, ny)}) replaces its grid size. */
    explicit ConstraintLayer(const std::string &scenario, const std::vector<std::size_t> &dims = {}) {
        TesseraConstraint *handle = nullptr;
        detail::check(tessera_constraint_create(scenario.c_str(), dims.data(), dims.size(), &handle));
        handle_.reset(handle);
        detail::check(tessera_constraint_shape(handle_.get(), &shape_));
    }

    const TesseraShape &shape() const noexcept { return shape_; }

    /** Expert `expert`'s sampled points: sorted flat indices into a field. */
    std::vector<std::size_t> points(std::size_t expert) const {
        std::vector<std::size_t> out(shape_.points_per_expert);
        detail::check(tessera_constraint_points(handle_.get(), expert, out.data(), out.size()));
        return out;
    }

    /** Projects `basis` ([batch][T][X](/[Y])[n_basis]) for the initial conditions `ics`. */
    Solution solve(Values basis, std::size_t n_basis, Values ics) const {
        Solution s = outputs(n_basis, ics);
        detail::check(tessera_constraint_solve(handle_.get(), basis.data, basis.size, n_basis,
                                               ics.data, ics.size, s.u.data(), s.u.size(),
                                               s.weights.data(), s.weights.size(),
                                               s.statuses.data(), s.statuses.size()));
        return s;
    }

    /** solve(), kept for its backward pass. */
    Forward forward(Values basis, std::size_t n_basis, Values ics) const {
        Solution s = outputs(n_basis, ics);
        TesseraForward *handle = nullptr;
        detail::check(tessera_constraint_forward(handle_.get(), basis.data, basis.size, n_basis,
                                                 ics.data, ics.size, s.u.data(), s.u.size(),
                                                 s.weights.data(), s.weights.size(),
                                                 s.statuses.data(), s.statuses.size(), &handle));
        return Forward(handle, std::move(s), basis.size, ics.size);
    }

    /** dL/dbasis for u_bar = dL/du at solve()'s solution (which it solves again). */
    std::vector<double> backward(Values basis, std::size_t n_basis, Values ics, Values u_bar) const {
        std::vector<double> out(basis.size);
        detail::check(tessera_constraint_backward(handle_.get(), basis.data, basis.size, n_basis,
                                                  ics.data, ics.size, u_bar.data, u_bar.size,
                                                  out.data(), out.size()));
        return out;
    }

    /** The PDE residual of fields `u` ([batch][T][X](/[Y])) at every point, [..][m]. */
    std::vector<double> residual(Values u) const {
        std::vector<double> out(u.size * shape_.n_equations);
        detail::check(tessera_constraint_residual(handle_.get(), u.data, u.size, out.data(),
                                                  out.size()));
        return out;
    }

    /** dL/du for fields `u` and f_bar = dL/dF (laid out like residual(u)). */
    std::vector<double> residual_backward(Values u, Values f_bar) const {
        std::vector<double> out(u.size);
        detail::check(tessera_constraint_residual_backward(handle_.get(), u.data, u.size, f_bar.data,
                                                           f_bar.size, out.data(), out.size()));
        return out;
    }

private:
    Solution outputs(std::size_t n_basis, Values ics) const {
        std::size_t batch = detail::batch_of(ics.size, shape_.ic_len, "ics");
        Solution s;
        s.u.resize(batch * shape_.field_len);
        s.weights.resize(batch * shape_.n_experts * n_basis);
        s.statuses.resize(batch * shape_.n_experts);
        return s;
    }

    std::unique_ptr<TesseraConstraint, detail::Deleter<TesseraConstraint, tessera_constraint_free>>
        handle_;
    TesseraShape shape_{};
};

}  // namespace tessera

#endif /* TESSERA_HPP */
