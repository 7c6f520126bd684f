// The C++ wrappers (tessera.hpp) against the C calls they wrap, and the
// layer's results against the PDE and finite differences:
// - Model::predict gives tessera_model_predict's bits, alone and in a batch,
//   and a moved-from model's handle is the moved-to one's; ModelForward gives
//   predict's fields bit for bit, also after its model is destroyed, and its
//   gradient in the initial condition matches central differences;
// - ConstraintLayer::solve meets the PDE at the sampled points to the
//   solver's tolerance; Forward gives solve's field and backward's gradient
//   bit for bit, also after its layer is destroyed, and backward_with_ic
//   the same gradient with the initial condition's; the gradients and the
//   residual's backward pass match central differences;
// - a missing run, a short array and NaN input throw tessera::Error with the
//   library's status.
//
//   embed RUN_DIR SCENARIO.toml
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tessera.hpp"

static int failures = 0;

static void check(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "FAILED: %s\n", what);
        failures++;
    }
}

// The status of the tessera::Error that `call` throws (OK if none).
template <typename F>
static TesseraStatus status_of(F call) {
    try {
        call();
    } catch (const tessera::Error &e) {
        std::printf("  threw %d: %s\n", static_cast<int>(e.status()), e.what());
        return e.status();
    }
    return TESSERA_STATUS_OK;
}

static void model_checks(const std::string &run_dir) {
    tessera::Model loaded(run_dir);
    tessera::Model model = std::move(loaded);
    const TesseraShape &s = model.shape();
    std::vector<double> x = model.coordinates(1), ic(s.ic_len), ics;
    check(x.size() == s.nx, "x coordinates");
    for (std::size_t i = 0; i < s.ic_len; i++) ic[i] = 0.5 + 0.15 * std::sin(M_PI * x[i]);
    std::vector<TesseraSolveStatus> statuses;
    std::vector<double> u = model.predict(ic, &statuses);
    check(u.size() == s.field_len && statuses.size() == s.n_experts, "prediction sizes");

    TesseraModel *raw = nullptr;
    check(tessera_model_load(run_dir.c_str(), &raw) == TESSERA_STATUS_OK, "C load");
    std::vector<double> expected(s.field_len);
    check(tessera_model_predict(raw, ic.data(), ic.size(), expected.data(), expected.size(),
                                nullptr, 0) == TESSERA_STATUS_OK,
          "C predict");
    tessera_model_free(raw);
    check(u == expected, "Model::predict gives tessera_model_predict's bits");

    ics = ic;
    for (double v : ic) ics.push_back(v * 0.5);
    std::vector<double> both = model.predict(ics);
    check(std::vector<double>(both.begin(), both.begin() + s.field_len) == u, "a batch of two");
    std::printf("C++ Model: predictions equal the C call's, alone and in a batch\n");

    // A kept prediction, of a model destroyed at once (it holds its model):
    // predict's fields and solves, the same gradient each time, and that
    // gradient against central differences of <fields_bar, predict(ic)> (a
    // step of 1e-5: where a solve stops moves the fields by about 1e-10).
    tessera::ModelForward kept = tessera::Model(run_dir).forward(ic);
    check(kept.fields() == u, "ModelForward: predict's fields");
    for (std::size_t k = 0; k < s.n_experts; k++)
        check(kept.statuses().at(k).iterations == statuses[k].iterations &&
                  kept.statuses()[k].final_residual == statuses[k].final_residual,
              "ModelForward: predict's solves");
    std::vector<double> fields_bar(u.size()), direction(ic.size());
    for (std::size_t q = 0; q < u.size(); q++)
        fields_bar[q] = std::sin(1.3 * static_cast<double>(q));
    for (std::size_t i = 0; i < ic.size(); i++)
        direction[i] = std::sin(0.71 * static_cast<double>(i));
    std::vector<double> ic_bar = kept.backward(fields_bar);
    check(kept.backward(fields_bar) == ic_bar, "ModelForward::backward: the same bits again");
    auto dot = [&](double sign) {
        std::vector<double> shifted(ic);
        for (std::size_t i = 0; i < shifted.size(); i++) shifted[i] += sign * 1e-5 * direction[i];
        std::vector<double> fields = model.predict(shifted);
        double d = 0.0;
        for (std::size_t q = 0; q < fields.size(); q++) d += fields[q] * fields_bar[q];
        return d;
    };
    double numeric = (dot(1.0) - dot(-1.0)) / 2e-5, analytic = 0.0;
    for (std::size_t i = 0; i < ic_bar.size(); i++) analytic += ic_bar[i] * direction[i];
    std::printf("C++ ModelForward: backward in ic %.10g, finite differences %.10g\n", analytic,
                numeric);
    check(std::fabs(analytic) > 1e-6, "the gradient in ic is not zero");
    check(std::fabs(analytic - numeric) <=
              1e-5 * std::fmax(std::fabs(analytic), std::fabs(numeric)),
          "ModelForward::backward matches finite differences");
    check(status_of([&] { kept.backward(tessera::Values(fields_bar.data(), 1)); }) ==
              TESSERA_STATUS_SHAPE_MISMATCH,
          "a short fields_bar throws SHAPE_MISMATCH");
    std::printf("C++ ModelForward: predict's fields and the same gradient each time, bit for bit\n");

    check(status_of([&] { tessera::Model("/nonexistent/run"); }) == TESSERA_STATUS_IO,
          "a missing run throws IO");
    check(status_of([&] { model.predict(tessera::Values(ic.data(), ic.size() - 1)); }) ==
              TESSERA_STATUS_SHAPE_MISMATCH,
          "a short initial condition throws SHAPE_MISMATCH");
}

static void layer_checks(const std::string &scenario) {
    // 48 basis functions meet the rows at the points; 8 (overdetermined, well
    // conditioned) suit finite differences.
    const std::size_t wide = 48, n = 8;
    std::vector<double> basis, ic, u_bar, direction, ic_direction;
    tessera::Solution solved;
    std::vector<double> grad;
    double ic_numeric = 0.0;
    tessera::Forward kept = [&] {
        tessera::ConstraintLayer layer(scenario);
        const TesseraShape &s = layer.shape();
        std::uint64_t state = 2024;
        std::vector<double> full;
        for (std::size_t i = 0; i < s.field_len * wide; i++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            full.push_back(static_cast<double>(state >> 11) / 4503599627370496.0 - 1.0);
            if (i % wide < n) basis.push_back(full.back());
        }
        for (std::size_t i = 0; i < s.field_len * n; i++)
            direction.push_back(std::cos(0.7 * static_cast<double>(i)));
        for (std::size_t i = 0; i < s.ic_len; i++) {
            ic.push_back(std::sin(M_PI * (static_cast<double>(i) + 0.5) / static_cast<double>(s.nx)));
            ic_direction.push_back(std::sin(0.5 * static_cast<double>(i)));
        }
        for (std::size_t q = 0; q < s.field_len; q++)
            u_bar.push_back(std::sin(1.3 * static_cast<double>(q)));

        // max |F| at expert k's points of the field B w_k, over the experts.
        tessera::Solution projected = layer.solve(full, wide, ic);
        auto at_points = [&](const std::vector<double> &weights) {
            double worst = 0.0;
            for (std::size_t k = 0; k < s.n_experts; k++) {
                std::vector<double> field(s.field_len);
                for (std::size_t q = 0; q < s.field_len; q++)
                    for (std::size_t j = 0; j < wide; j++)
                        field[q] += full[q * wide + j] * weights[k * wide + j];
                std::vector<double> f = layer.residual(field);
                for (std::size_t p : layer.points(k)) worst = std::fmax(worst, std::fabs(f[p]));
            }
            return worst;
        };
        double before = at_points(std::vector<double>(projected.weights.size(), 1.0));
        double after = at_points(projected.weights), solver = 0.0;
        for (const TesseraSolveStatus &st : projected.statuses) solver = std::fmax(solver, st.final_residual);
        std::printf("C++ layer: max |F| at the sampled points %.3e before, %.3e after (solver "
                    "residual %.3e)\n",
                    before, after, solver);
        check(after <= solver && after <= 1e-6 * before, "the PDE at the sampled points");

        solved = layer.solve(basis, n, ic);

        grad = layer.backward(basis, n, ic, u_bar);
        // <u_bar, u> for the basis b and the initial condition c; `shifted` moves
        // values by sign * 1e-6 along a direction.
        auto dot = [&](const std::vector<double> &b, const std::vector<double> &c) {
            std::vector<double> u = layer.solve(b, n, c).u;
            double d = 0.0;
            for (std::size_t q = 0; q < u.size(); q++) d += u[q] * u_bar[q];
            return d;
        };
        auto shifted = [](std::vector<double> values, const std::vector<double> &along, double sign) {
            for (std::size_t i = 0; i < values.size(); i++) values[i] += sign * 1e-6 * along[i];
            return values;
        };
        double numeric =
            (dot(shifted(basis, direction, 1.0), ic) - dot(shifted(basis, direction, -1.0), ic)) / 2e-6;
        double analytic = 0.0;
        for (std::size_t i = 0; i < grad.size(); i++) analytic += grad[i] * direction[i];
        std::printf("C++ layer: backward %.10g, finite differences %.10g\n", analytic, numeric);
        check(std::fabs(analytic - numeric) <= 1e-5 * std::fmax(1.0, std::fabs(analytic)),
              "backward matches finite differences");
        // The initial condition's differences, for Forward::backward_with_ic once the layer is
        // gone (the heat equation's initial rows take ic as right-hand sides: u is linear in it).
        ic_numeric =
            (dot(basis, shifted(ic, ic_direction, 1.0)) - dot(basis, shifted(ic, ic_direction, -1.0))) / 2e-6;

        // The residual's backward pass against central differences of <f_bar, F(u)>.
        const std::vector<double> &u = solved.u;
        std::vector<double> f_bar(u.size() * s.n_equations), v(u.size());
        for (std::size_t q = 0; q < f_bar.size(); q++) f_bar[q] = std::cos(0.3 * static_cast<double>(q));
        for (std::size_t q = 0; q < v.size(); q++) v[q] = std::sin(0.9 * static_cast<double>(q));
        std::vector<double> u_bar_r = layer.residual_backward(u, f_bar);
        auto f_dot = [&](double sign) {
            std::vector<double> shifted(u);
            for (std::size_t q = 0; q < shifted.size(); q++) shifted[q] += sign * 1e-6 * v[q];
            std::vector<double> f = layer.residual(shifted);
            double d = 0.0;
            for (std::size_t q = 0; q < f.size(); q++) d += f[q] * f_bar[q];
            return d;
        };
        double r_numeric = (f_dot(1.0) - f_dot(-1.0)) / 2e-6, r_analytic = 0.0;
        for (std::size_t q = 0; q < v.size(); q++) r_analytic += u_bar_r[q] * v[q];
        std::printf("C++ layer: residual backward %.10g, finite differences %.10g\n", r_analytic,
                    r_numeric);
        check(std::fabs(r_analytic - r_numeric) <= 1e-6 * std::fmax(1.0, std::fabs(r_analytic)),
              "residual backward matches finite differences");

        std::vector<double> bad(basis);
        bad[3] = NAN;
        check(status_of([&] { layer.solve(bad, n, ic); }) == TESSERA_STATUS_NON_FINITE,
              "NaN input throws NON_FINITE");
        return layer.forward(basis, n, ic);
    }();
    // The layer is destroyed here; its kept forward pass still differentiates.
    check(kept.solution().u == solved.u, "Forward: solve's field");
    check(kept.backward(u_bar) == grad, "Forward: backward's gradient");
    tessera::Gradient both = kept.backward_with_ic(u_bar);
    check(both.basis == kept.backward(u_bar), "Forward::backward_with_ic: backward's gradient");
    double ic_analytic = 0.0;
    for (std::size_t i = 0; i < both.ic.size(); i++) ic_analytic += both.ic[i] * ic_direction[i];
    std::printf("C++ Forward: backward in ic %.10g, finite differences %.10g\n", ic_analytic, ic_numeric);
    check(std::fabs(ic_analytic) > 1e-8, "the gradient in ic is not zero");
    check(std::fabs(ic_analytic - ic_numeric) <= 1e-5 * std::fmax(1.0, std::fabs(ic_analytic)),
          "backward in ic matches finite differences");
    check(status_of([&] { kept.backward(tessera::Values(u_bar.data(), 1)); }) ==
              TESSERA_STATUS_SHAPE_MISMATCH,
          "a short u_bar throws SHAPE_MISMATCH");
    std::printf("C++ Forward: the solve's field and the backward pass's gradient (also "
                "backward_with_ic's), bit for bit\n");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s RUN_DIR SCENARIO\n", argv[0]);
        return 2;
    }
    check(tessera::version() == tessera_version(), "version");
    tessera::set_num_threads(2);
    model_checks(argv[1]);
    layer_checks(argv[2]);
    if (failures) std::fprintf(stderr, "%d checks failed\n", failures);
    else std::printf("C++ embed: all checks passed\n");
    return failures ? 1 : 0;
}
