// Peak arithmetic throughput of one CPU core: float32 FMA (vfmadd231ps on 512-bit registers)
// against bfloat16 dot products (vdpbf16ps, AVX512-BF16: 32 bf16 products summed pairwise into
// 16 float32 lanes), each with 12 independent accumulators so that latency is hidden. Prints
// GFLOP/s counting a multiply-add as 2 FLOPs. Tells whether bfloat16 can be faster than
// float32 on this core at all (results/performance.md, "bfloat16 mixed precision").
//
//   gcc -O2 -o /tmp/bf16_peak scripts/bf16_peak.c && /tmp/bf16_peak
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

#define N 240000000L

__attribute__((target("avx512f"))) static double fma_rate(void) {
  __m512 a[12];
  __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-9f);
  for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
  double t = now();
  for (long n = 0; n < N / 12; n++) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
  }
  t = now() - t;
  float s = 0;
  for (int i = 0; i < 12; i++) s += _mm512_reduce_add_ps(a[i]);
  if (s == 1234.5f) printf(" ");
  return (double)(N / 12 * 12) * 32 / t / 1e9;  // 16 lanes x 2 FLOPs
}

__attribute__((target("avx512f,avx512bf16"))) static double bf16_rate(void) {
  __m512 a[12];
  __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80), c = (__m512bh)_mm512_set1_epi16(0x3f80);
  for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
  double t = now();
  for (long n = 0; n < N / 12; n++) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) a[i] = _mm512_dpbf16_ps(a[i], b, c);
  }
  t = now() - t;
  float s = 0;
  for (int i = 0; i < 12; i++) s += _mm512_reduce_add_ps(a[i]);
  if (s == 1234.5f) printf(" ");
  return (double)(N / 12 * 12) * 64 / t / 1e9;  // 32 products x 2 FLOPs
}

int main(void) {
  if (!__builtin_cpu_supports("avx512f")) {
    printf("no AVX-512 on this CPU\n");
    return 1;
  }
  int bf16 = __builtin_cpu_supports("avx512bf16");
  for (int r = 0; r < 5; r++) {
    double f = fma_rate();
    if (bf16) {
      double b = bf16_rate();
      printf("float32 FMA zmm: %6.1f GFLOP/s   bfloat16 dot product zmm: %6.1f GFLOP/s   ratio %.2f\n",
             f, b, b / f);
    } else {
      printf("float32 FMA zmm: %6.1f GFLOP/s   (no AVX512-BF16)\n", f);
    }
  }
  return 0;
}
