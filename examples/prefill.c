/* A causal VecAttention prefill through the C ABI of an installed vecattn (find_package(vecattn),
 * vecattn::vecattn). Without a GPU it says so and exits 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <vecattn/vecattn.h>

#include "device_memory.h"

enum { B = 1, H = 4, S = 4096, D = 128 };

int main(void) {
  printf("vecattn %s\n", vecattn_version());
  vecattn_runtime* rt = NULL;
  vecattn_status s = vecattn_create(0, NULL, &rt);
  if (s == VECATTN_NO_DRIVER || s == VECATTN_NO_DEVICE) {
    printf("no GPU here (%s: %s): nothing to run\n", vecattn_status_name(s), vecattn_last_error());
    return 0;
  }
  if (s != VECATTN_OK) {
    fprintf(stderr, "vecattn_create: %s: %s\n", vecattn_status_name(s), vecattn_last_error());
    return 1;
  }
  device_memory_api cu;
  if (device_memory_open(&cu)) {
    fprintf(stderr, "could not open the CUDA driver for device memory\n");
    return 1;
  }
  const size_t n = (size_t)B * H * S * D, bytes = n * 2;
  uint16_t* host = malloc(bytes);
  uint64_t q = 0, k = 0, v = 0, out = 0;
  srand(1);
  int fail = cu.mem_alloc(&q, bytes) || cu.mem_alloc(&k, bytes) || cu.mem_alloc(&v, bytes) || cu.mem_alloc(&out, bytes);
  for (int t = 0; t < 3 && !fail; ++t) {
    for (size_t i = 0; i < n; ++i) host[i] = to_bf16((float)rand() / RAND_MAX * 2.f - 1.f);
    fail = cu.memcpy_htod(t == 0 ? q : t == 1 ? k : v, host, bytes);
  }
  if (fail) {
    fprintf(stderr, "device memory failed\n");
    return 1;
  }
  vecattn_tensor tq = vecattn_tensor_bhsd((void*)(uintptr_t)q, VECATTN_BF16, B, H, S, D);
  vecattn_tensor tk = vecattn_tensor_bhsd((void*)(uintptr_t)k, VECATTN_BF16, B, H, S, D);
  vecattn_tensor tv = vecattn_tensor_bhsd((void*)(uintptr_t)v, VECATTN_BF16, B, H, S, D);
  vecattn_tensor to = vecattn_tensor_bhsd((void*)(uintptr_t)out, VECATTN_BF16, B, H, S, D);
  vecattn_prefill_params p = vecattn_default_params();
  p.threshold = 0.8f;
  double density[H];
  vecattn_prefill_stats st = {0};
  st.density = density;
  st.density_len = H;
  s = vecattn_prefill(rt, &tq, &tk, &tv, &to, &p, NULL, NULL, 0, &st);
  if (s != VECATTN_OK) {
    fprintf(stderr, "vecattn_prefill: %s: %s\n", vecattn_status_name(s), vecattn_last_error());
    return 1;
  }
  cu.memcpy_dtoh(host, out, bytes);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += fabs(from_bf16(host[i]));
  printf("prefill S=%d H=%d D=%d: sparsity %.3f, mean |out| %.4f (select %.3f ms, attend %.3f ms)\n", S, H, D,
         st.sparsity, sum / n, st.select_ms, st.attend_ms);
  cu.mem_free(q), cu.mem_free(k), cu.mem_free(v), cu.mem_free(out);
  free(host);
  vecattn_destroy(rt);
  return isfinite(sum) && sum > 0 ? 0 : 1;
}
