// Second-order forward-mode dual numbers for residuals emitted by Tessera
// (`tessera_constraints::expr::cuda`): value, gradient and Hessian in N inputs.
// CUDA C++; compiled on the host by defining `__device__` away.
#ifndef TESSERA_DUAL_H
#define TESSERA_DUAL_H

#ifndef __CUDACC_RTC__  // NVRTC has the math functions built in, and no headers
#include <math.h>
#endif

namespace tessera {

template <int N>
struct Dual2 {
    __device__ Dual2() {}
    // The constant `c` (so that `D(c)` lifts a constant for every number type).
    __device__ Dual2(double c) : re(c) {
        for (int i = 0; i < N; ++i) {
            g[i] = 0.0;
            for (int j = 0; j < N; ++j) h[i][j] = 0.0;
        }
    }
    double re;
    double g[N];
    double h[N][N];
};

// The input `x` as variable number `k`.
template <int N>
__device__ inline Dual2<N> variable(double x, int k) {
    Dual2<N> r(x);
    r.g[k] = 1.0;
    return r;
}

// f(a) from f(a.re), f'(a.re) and f''(a.re): the chain rule to second order.
template <int N>
__device__ inline Dual2<N> chain(const Dual2<N>& a, double f0, double f1, double f2) {
    Dual2<N> r;
    r.re = f0;
    for (int i = 0; i < N; ++i) {
        r.g[i] = f1 * a.g[i];
        for (int j = 0; j < N; ++j) r.h[i][j] = f1 * a.h[i][j] + f2 * a.g[i] * a.g[j];
    }
    return r;
}

template <int N>
__device__ inline Dual2<N> operator+(const Dual2<N>& a, const Dual2<N>& b) {
    Dual2<N> r;
    r.re = a.re + b.re;
    for (int i = 0; i < N; ++i) {
        r.g[i] = a.g[i] + b.g[i];
        for (int j = 0; j < N; ++j) r.h[i][j] = a.h[i][j] + b.h[i][j];
    }
    return r;
}

template <int N>
__device__ inline Dual2<N> operator-(const Dual2<N>& a) {
    return chain(a, -a.re, -1.0, 0.0);
}

template <int N>
__device__ inline Dual2<N> operator-(const Dual2<N>& a, const Dual2<N>& b) {
    return a + (-b);
}

template <int N>
__device__ inline Dual2<N> operator*(const Dual2<N>& a, const Dual2<N>& b) {
    Dual2<N> r;
    r.re = a.re * b.re;
    for (int i = 0; i < N; ++i) {
        r.g[i] = a.g[i] * b.re + a.re * b.g[i];
        for (int j = 0; j < N; ++j)
            r.h[i][j] = a.h[i][j] * b.re + a.g[i] * b.g[j] + a.g[j] * b.g[i] + a.re * b.h[i][j];
    }
    return r;
}

template <int N>
__device__ inline Dual2<N> recip(const Dual2<N>& a) {
    double inv = 1.0 / a.re;
    return chain(a, inv, -inv * inv, 2.0 * inv * inv * inv);
}

template <int N>
__device__ inline Dual2<N> operator/(const Dual2<N>& a, const Dual2<N>& b) {
    return a * recip(b);
}

template <int N>
__device__ inline Dual2<N> operator+(const Dual2<N>& a, double c) {
    Dual2<N> r = a;
    r.re += c;
    return r;
}

template <int N>
__device__ inline Dual2<N> operator*(const Dual2<N>& a, double c) {
    return chain(a, a.re * c, c, 0.0);
}

template <int N>
__device__ inline Dual2<N> operator/(const Dual2<N>& a, double c) {
    return chain(a, a.re / c, 1.0 / c, 0.0);
}

template <int N>
__device__ inline Dual2<N> operator/(double c, const Dual2<N>& a) {
    return recip(a) * c;
}

template <int N>
__device__ inline Dual2<N> operator-(double c, const Dual2<N>& a) {
    return (-a) + c;
}

template <int N>
__device__ inline double re(const Dual2<N>& a) { return a.re; }
__device__ inline double re(double a) { return a; }

template <int N>
__device__ inline Dual2<N> exp(const Dual2<N>& a) {
    double e = ::exp(a.re);
    return chain(a, e, e, e);
}
template <int N>
__device__ inline Dual2<N> log(const Dual2<N>& a) {
    return chain(a, ::log(a.re), 1.0 / a.re, -1.0 / (a.re * a.re));
}
template <int N>
__device__ inline Dual2<N> sqrt(const Dual2<N>& a) {
    double s = ::sqrt(a.re);
    return chain(a, s, 0.5 / s, -0.25 / (s * a.re));
}
template <int N>
__device__ inline Dual2<N> sin(const Dual2<N>& a) {
    double s = ::sin(a.re), c = ::cos(a.re);
    return chain(a, s, c, -s);
}
template <int N>
__device__ inline Dual2<N> cos(const Dual2<N>& a) {
    double s = ::sin(a.re), c = ::cos(a.re);
    return chain(a, c, -s, -c);
}
template <int N>
__device__ inline Dual2<N> tanh(const Dual2<N>& a) {
    double t = ::tanh(a.re), d = 1.0 - t * t;
    return chain(a, t, d, -2.0 * t * d);
}
template <int N>
__device__ inline Dual2<N> powi(const Dual2<N>& a, int n) {
    if (n == 0) return Dual2<N>(1.0);
    double p = ::pow(a.re, n - 2);
    return chain(a, p * a.re * a.re, n * p * a.re, n * (n - 1) * p);
}
template <int N>
__device__ inline Dual2<N> powf(const Dual2<N>& a, double c) {
    double p = ::pow(a.re, c - 2.0);
    return chain(a, p * a.re * a.re, c * p * a.re, c * (c - 1.0) * p);
}

__device__ inline double exp(double a) { return ::exp(a); }
__device__ inline double log(double a) { return ::log(a); }
__device__ inline double sqrt(double a) { return ::sqrt(a); }
__device__ inline double sin(double a) { return ::sin(a); }
__device__ inline double cos(double a) { return ::cos(a); }
__device__ inline double tanh(double a) { return ::tanh(a); }
__device__ inline double powi(double a, int n) { return ::pow(a, n); }
__device__ inline double powf(double a, double c) { return ::pow(a, c); }
__device__ inline double recip(double a) { return 1.0 / a; }

// Functions every number type shares, with the language's conventions.
template <typename D>
__device__ inline D abs(const D& a) { return re(a) < 0.0 ? -a : a; }
template <typename D>
__device__ inline D max(const D& a, const D& b) { return re(a) > re(b) ? a : b; }
template <typename D>
__device__ inline D min(const D& a, const D& b) { return re(a) < re(b) ? a : b; }
template <typename D>
__device__ inline D pow(const D& a, const D& b) { return exp(log(a) * b); }

}  // namespace tessera

#endif  // TESSERA_DUAL_H
