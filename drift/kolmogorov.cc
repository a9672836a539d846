#include "drift/kolmogorov.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

namespace gantry::drift {
namespace {

constexpr double kPi = std::numbers::pi;
// Intermediate results are rescaled by 2^128 to stay inside double range.
constexpr int kScaleExp = 128;
const double kScaleUp = std::ldexp(1.0, kScaleExp);
const double kScaleDown = std::ldexp(1.0, -kScaleExp);
// exp() of anything below this underflows (cephes MINLOG).
constexpr double kMinLog = -708.3964185322641;

double Clip01(double p) { return std::clamp(p, 0.0, 1.0); }

// log(n! / n^n) by Stirling's series with n log n removed up front.
double LogFactorialOverPower(int64_t n) {
  static constexpr double kStirling[] = {
      -2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3,
      8.4175084175084175084e-4, -5.952380952380952381e-4, 7.9365079365079365079e-4,
      -2.7777777777777777778e-3, 8.3333333333333333333e-2};
  const double rn = 1.0 / static_cast<double>(n);
  const double y = rn / static_cast<double>(n);
  double poly = 0;
  for (double c : kStirling) poly = poly * y + c;
  return std::log(static_cast<double>(n)) / 2 - static_cast<double>(n) +
         std::log(2 * kPi) / 2 + rn * poly;
}

using Matrix = std::vector<double>;  // square, row-major

Matrix MatMul(const Matrix& a, const Matrix& b, int m) {
  Matrix c(static_cast<size_t>(m) * m, 0.0);
  for (int i = 0; i < m; ++i) {
    for (int k = 0; k < m; ++k) {
      const double aik = a[i * m + k];
      if (aik == 0) continue;
      for (int j = 0; j < m; ++j) c[i * m + j] += aik * b[k * m + j];
    }
  }
  return c;
}

// CDF P(D_n <= d) by Durbin's matrix method as organised by Marsaglia, Tsang
// and Wang: the (k, k) entry of H^n scaled by n!/n^n. O(m^3 log n), m = 2k-1.
double DurbinCdf(int64_t n, double d) {
  if (d >= 1.0) return 1.0;
  const double nd = static_cast<double>(n) * d;
  if (nd <= 0.5) return 0.0;
  const int k = static_cast<int>(std::ceil(nd));
  const double h = k - nd;
  const int m = 2 * k - 1;
  std::vector<double> v(m), w(m);
  double fac = 1.0;
  for (int j = 1; j <= m; ++j) {
    w[j - 1] = fac;
    fac /= j;
    v[j - 1] = (1.0 - std::pow(h, j)) * fac;
  }
  const double tt = std::pow(std::max(2 * h - 1.0, 0.0), m) - 2 * std::pow(h, m);
  v[m - 1] = (1.0 + tt) * fac;
  Matrix H(static_cast<size_t>(m) * m, 0.0);
  for (int i = 1; i < m; ++i) {
    for (int r = i - 1; r < m; ++r) H[r * m + i] = w[r - (i - 1)];
  }
  for (int r = 0; r < m; ++r) H[r * m] = v[r];
  for (int c = 0; c < m; ++c) H[(m - 1) * m + c] = v[m - 1 - c];

  Matrix power(static_cast<size_t>(m) * m, 0.0);
  for (int i = 0; i < m; ++i) power[i * m + i] = 1.0;
  int64_t expnt = 0, h_expnt = 0;
  for (int64_t nn = n; nn > 0; nn /= 2) {
    if (nn % 2) {
      power = MatMul(power, H, m);
      expnt += h_expnt;
    }
    H = MatMul(H, H, m);
    h_expnt *= 2;
    if (std::fabs(H[(k - 1) * m + (k - 1)]) > kScaleUp) {
      for (double& x : H) x /= kScaleUp;
      h_expnt += kScaleExp;
    }
  }
  double p = power[(k - 1) * m + (k - 1)];
  for (int64_t i = 1; i <= n; ++i) {
    p = static_cast<double>(i) * p / static_cast<double>(n);
    if (std::fabs(p) < kScaleDown) {
      p *= kScaleUp;
      expnt -= kScaleExp;
    }
  }
  if (expnt != 0) p = std::ldexp(p, static_cast<int>(expnt));
  return Clip01(p);
}

// Endpoints of the non-zero interval of row i in Pomeranz's recursion.
void PomeranzBounds(int64_t i, int64_t n, int64_t ll, int ceilf, int roundf, int64_t* j1,
                    int64_t* j2) {
  int64_t a, b;
  if (i == 0) {
    a = -ll - ceilf - 1;
    b = ll + ceilf - 1;
  } else {
    const int64_t half = (i + 1) / 2;
    if ((i + 1) % 2 == 0) {  // i odd
      if (half == n + 1) {
        a = n - ll - ceilf - 1;
        b = n + ll + ceilf - 1;
      } else {
        a = half - 1 - ll - roundf - 1;
        b = half + ll - 1 + ceilf - 1;
      }
    } else {
      a = half - 1 - ll - 1;
      b = half + ll + roundf - 1;
    }
  }
  *j1 = std::max<int64_t>(a + 2, 0);
  *j2 = std::min<int64_t>(b, n);
}

// CDF P(D_n <= x) by Pomeranz's (1974) recursion: rows are convolutions of
// the previous row with (almost) Poisson weights; two rows kept.
double PomeranzCdf(int64_t n, double x) {
  const double t = static_cast<double>(n) * x;
  const int64_t ll = static_cast<int64_t>(std::floor(t));
  const double f = t - static_cast<double>(ll);
  const double g = std::min(f, 1.0 - f);
  const int ceilf = f > 0 ? 1 : 0;
  const int roundf = f > 0.5 ? 1 : 0;
  const int64_t npwrs = 2 * (ll + 1);
  std::vector<double> gpower(npwrs), twogpower(npwrs), onem2gpower(npwrs);
  gpower[0] = twogpower[0] = onem2gpower[0] = 1.0;
  const double dn = static_cast<double>(n);
  const double g_n = g / dn, two_g_n = 2 * g / dn, one_m2g_n = (1 - 2 * g) / dn;
  for (int64_t m = 1; m < npwrs; ++m) {
    gpower[m] = gpower[m - 1] * g_n / m;
    twogpower[m] = twogpower[m - 1] * two_g_n / m;
    onem2gpower[m] = onem2gpower[m - 1] * one_m2g_n / m;
  }
  std::vector<double> v0(npwrs, 0.0), v1(npwrs, 0.0);
  v1[0] = 1;
  int64_t v0s = 0, v1s = 0, expnt = 0;
  int64_t j1, j2;
  PomeranzBounds(0, n, ll, ceilf, roundf, &j1, &j2);
  for (int64_t i = 1; i < 2 * n + 2; ++i) {
    const int64_t k1 = j1;
    std::swap(v0, v1);
    std::swap(v0s, v1s);
    std::fill(v1.begin(), v1.end(), 0.0);
    PomeranzBounds(i, n, ll, ceilf, roundf, &j1, &j2);
    const std::vector<double>& pw =
        (i == 1 || i == 2 * n + 1) ? gpower : (i % 2 ? twogpower : onem2gpower);
    const int64_t ln2 = j2 - k1 + 1;
    if (ln2 <= 0) continue;
    const int64_t a0 = k1 - v0s;
    const int64_t alen = std::max<int64_t>(0, std::min(ln2, npwrs - a0));
    const int64_t plen = std::min(ln2, npwrs);
    const int64_t conv_start = j1 - k1, conv_len = j2 - j1 + 1;
    double vmax = 0;
    for (int64_t c = 0; c < conv_len; ++c) {
      const int64_t idx = conv_start + c;  // index into the full convolution
      double s = 0;
      for (int64_t a = std::max<int64_t>(0, idx - (plen - 1)); a <= std::min(idx, alen - 1); ++a) {
        s += v0[a0 + a] * pw[idx - a];
      }
      v1[c] = s;
      vmax = std::max(vmax, s);
    }
    if (vmax > 0 && vmax < kScaleDown) {
      for (double& e : v1) e *= kScaleUp;
      expnt -= kScaleExp;
    }
    v1s = v0s + j1 - k1;
  }
  double ans = v1[n - v1s];
  for (int64_t m = 1; m <= n; ++m) {
    if (std::fabs(ans) > kScaleUp) {
      ans *= kScaleDown;
      expnt += kScaleExp;
    }
    ans *= static_cast<double>(m);
  }
  if (expnt != 0) ans = std::ldexp(ans, static_cast<int>(expnt));
  return Clip01(ans);
}

// Pelz–Good approximation to P(D_n <= x): the Li-Chien/Korolyuk expansion
// transformed with Jacobi theta identities, good for small x sqrt(n).
double PelzGoodCdf(int64_t n, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double z = std::sqrt(static_cast<double>(n)) * x;
  const double z2 = z * z, z3 = z2 * z, z4 = z2 * z2, z6 = z4 * z2;
  const double qlog = -kPi * kPi / 8 / z2;
  if (qlog < -708) return 0.0;
  double q = std::exp(qlog);
  const double pi2 = kPi * kPi, pi4 = pi2 * pi2, pi6 = pi4 * pi2;
  const double k1a = -z2, k1b = pi2 / 4;
  const double k2a = 6 * z6 + 2 * z4, k2b = (2 * z4 - 5 * z2) * pi2 / 4,
               k2c = pi4 * (1 - 2 * z2) / 16;
  const double k3d = pi6 * (5 - 30 * z2) / 64, k3c = pi4 * (-60 * z2 + 212 * z4) / 16,
               k3b = pi2 * (135 * z4 - 96 * z6) / 4, k3a = -30 * z6 - 90 * std::pow(z, 8);
  double K[4] = {0, 0, 0, 0};
  const int64_t maxk = static_cast<int64_t>(std::ceil(16 * z / kPi));
  for (int64_t k = maxk; k > 0; --k) {
    const double m = 2.0 * k - 1, m2 = m * m, m4 = m2 * m2, m6 = m4 * m2;
    const double qp = std::pow(q, 8.0 * k);
    const double c[4] = {1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4,
                         k3a + k3b * m2 + k3c * m4 + k3d * m6};
    for (int i = 0; i < 4; ++i) K[i] = K[i] * qp + c[i];
  }
  const double sqrt2pi = std::sqrt(2 * kPi);
  const double denom[4] = {z, 6 * z4, 72 * std::pow(z, 7), 6480 * std::pow(z, 10)};
  for (int i = 0; i < 4; ++i) K[i] = K[i] * q * sqrt2pi / denom[i];
  q = std::exp(-pi2 / 2 / z2);
  double k2extra = 0, k3extra = 0;
  const double sqrt3z = std::sqrt(3.0) * z;
  for (int64_t k = maxk; k > 0; --k) {
    const double ks2 = static_cast<double>(k) * k;
    const double qk = std::pow(q, ks2);
    const double kpi = kPi * k;
    k2extra += ks2 * qk;
    k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * ks2 * qk;
  }
  K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3);
  K[3] += k3extra * pi2 * sqrt2pi / (216 * z6);
  double sum = 0;
  for (int i = 0; i < 4; ++i) sum += K[i] / std::pow(static_cast<double>(n), i / 2.0);
  return sum;
}

}  // namespace

double SmirnovSf(int64_t n, double x) {
  if (!(n > 0 && x >= 0.0 && x <= 1.0)) return std::numeric_limits<double>::quiet_NaN();
  if (n == 1) return 1.0 - x;
  if (x == 0.0) return 1.0;
  if (x == 1.0) return 0.0;
  const long double nx = static_cast<long double>(n) * x;  // exact: 64-bit mantissa
  const int64_t nxfl = static_cast<int64_t>(std::floor(nx));
  const bool integral = nx == static_cast<long double>(nxfl);
  const long double ln = static_cast<long double>(n);
  if (nxfl == 0 || (nxfl == 1 && integral)) {
    return 1.0 - static_cast<double>(x * std::pow(1.0L + x, ln - 1));
  }
  if (-2 * static_cast<double>(n) * x * x < kMinLog) return 0.0;
  if (nxfl >= n - 1) return static_cast<double>(std::pow(1.0L - x, ln));
  if (n > 1000000) {
    const double a = 6 * static_cast<double>(n) * x + 1.0;
    return std::exp(-a * a / 18.0 / static_cast<double>(n));
  }
  // Birnbaum–Tingey: x * sum_{v=0}^{floor(n(1-x))} C(n,v) (x+v/n)^(v-1) (1-x-v/n)^(n-v),
  // all terms positive; summed in long double with log-space terms.
  const int64_t terms = n - nxfl;  // v = 0 .. n - nxfl - 1 (the last is 0 if nx integral)
  long double sum = 0, log_binom = 0;
  for (int64_t v = 0; v < terms; ++v) {
    const long double lo = (nx + v) / ln;  // x + v/n
    const long double hi = 1.0L - lo;       // 1 - x - v/n
    long double term = 0;
    if (hi > 0) {
      term = std::exp(log_binom + (v - 1) * std::log(lo) + (ln - v) * std::log(hi));
    }
    sum += term;
    if (term != 0) {
      if (4.0L * (terms - v) * term < std::numeric_limits<double>::epsilon() * sum &&
          v != terms - 1) {
        break;
      }
    } else if (v > n / 2) {
      break;
    }
    log_binom += std::log(static_cast<long double>(n - v) / (v + 1));
  }
  return Clip01(static_cast<double>(sum * x));
}

double KolmogorovSf(int64_t n, double x) {
  if (n <= 0 || std::isnan(x)) return std::numeric_limits<double>::quiet_NaN();
  if (x >= 1.0) return 0.0;
  if (x <= 0.0) return 1.0;
  const double dn = static_cast<double>(n);
  const double t = dn * x;
  if (t <= 1.0) {  // Ruben–Gambino: 1/(2n) <= x <= 1/n
    if (t <= 0.5) return 1.0;
    double prob;
    if (n <= 140) {
      prob = 1.0;
      for (int64_t i = 1; i <= n; ++i) prob *= static_cast<double>(i) * (1.0 / dn) * (2 * t - 1);
    } else {
      prob = std::exp(LogFactorialOverPower(n) + dn * std::log(2 * t - 1));
    }
    return Clip01(1.0 - prob);
  }
  if (t >= dn - 1) return Clip01(2 * std::pow(1.0 - x, dn));  // Ruben–Gambino
  if (x >= 0.5) return Clip01(2 * SmirnovSf(n, x));
  const double nx2 = t * x;
  if (n <= 140) {
    if (nx2 <= 0.754693) return Clip01(1.0 - DurbinCdf(n, x));
    if (nx2 <= 4) return Clip01(1.0 - PomeranzCdf(n, x));
    return Clip01(2 * SmirnovSf(n, x));
  }
  if (nx2 >= 370.0) return 0.0;
  if (nx2 >= 2.2) return Clip01(2 * SmirnovSf(n, x));
  double cdf;
  if (nx2 >= 18.0) {
    cdf = 1.0;
  } else if (n <= 100000 && dn * std::pow(x, 1.5) <= 1.4) {
    cdf = DurbinCdf(n, x);
  } else {
    cdf = PelzGoodCdf(n, x);
  }
  return Clip01(1.0 - cdf);
}

}  // namespace gantry::drift
