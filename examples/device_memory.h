/* Device memory for the examples, from the CUDA driver opened at run time (as vecattn itself
 * does), so the programs start on a machine without a GPU. An engine has its own allocator. */
#ifndef VECATTN_EXAMPLES_DEVICE_MEMORY_H_
#define VECATTN_EXAMPLES_DEVICE_MEMORY_H_

#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>

typedef struct device_memory_api {
  int (*init)(unsigned);
  int (*device_get)(int*, int);
  int (*primary_ctx_retain)(void**, int);
  int (*ctx_set_current)(void*);
  int (*mem_alloc)(uint64_t*, size_t);
  int (*mem_free)(uint64_t);
  int (*memcpy_htod)(uint64_t, const void*, size_t);
  int (*memcpy_dtoh)(void*, uint64_t, size_t);
  int (*ctx_synchronize)(void);
} device_memory_api;

/* Makes device 0's primary context current (the one vecattn uses). 0 on success. */
static int device_memory_open(device_memory_api* api) {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return 1;
  *(void**)&api->init = dlsym(lib, "cuInit");
  *(void**)&api->device_get = dlsym(lib, "cuDeviceGet");
  *(void**)&api->primary_ctx_retain = dlsym(lib, "cuDevicePrimaryCtxRetain");
  *(void**)&api->ctx_set_current = dlsym(lib, "cuCtxSetCurrent");
  *(void**)&api->mem_alloc = dlsym(lib, "cuMemAlloc_v2");
  *(void**)&api->mem_free = dlsym(lib, "cuMemFree_v2");
  *(void**)&api->memcpy_htod = dlsym(lib, "cuMemcpyHtoD_v2");
  *(void**)&api->memcpy_dtoh = dlsym(lib, "cuMemcpyDtoH_v2");
  *(void**)&api->ctx_synchronize = dlsym(lib, "cuCtxSynchronize");
  if (!api->init || !api->device_get || !api->primary_ctx_retain || !api->ctx_set_current || !api->mem_alloc ||
      !api->mem_free || !api->memcpy_htod || !api->memcpy_dtoh || !api->ctx_synchronize)
    return 1;
  int dev = 0;
  void* ctx = NULL;
  if (api->init(0) || api->device_get(&dev, 0) || api->primary_ctx_retain(&ctx, dev) || api->ctx_set_current(ctx)) return 1;
  return 0;
}

/* Round-to-nearest-even float -> bf16 bits. */
static uint16_t to_bf16(float f) {
  union { float f; uint32_t u; } v;
  v.f = f;
  return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}
static float from_bf16(uint16_t b) {
  union { float f; uint32_t u; } v;
  v.u = (uint32_t)b << 16;
  return v.f;
}

#endif
