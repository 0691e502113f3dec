#pragma once
// Device memory for tests: RAII allocation, upload, download and poisoning.
#include <cuda.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "runtime/driver.h"
#include "runtime/runtime.h"

namespace vecattn::test {

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    const Driver& d = Driver::get();
    d.check(d.cuMemAlloc(&ptr_, bytes ? bytes : 1), "cuMemAlloc");
  }
  ~DeviceBuffer() { Driver::get().cuMemFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return reinterpret_cast<void*>(ptr_); }
  size_t bytes() const { return bytes_; }

  template <typename T> void upload(const std::vector<T>& v, size_t offset_bytes = 0) {
    const Driver& d = Driver::get();
    d.check(d.cuMemcpyHtoD(ptr_ + offset_bytes, v.data(), v.size() * sizeof(T)), "cuMemcpyHtoD");
  }
  template <typename T> std::vector<T> download() const {
    std::vector<T> v(bytes_ / sizeof(T));
    const Driver& d = Driver::get();
    d.check(d.cuMemcpyDtoH(v.data(), ptr_, v.size() * sizeof(T)), "cuMemcpyDtoH");
    return v;
  }
  // 0xFF bytes: NaN in fp16, bf16 and fp32, so an element nothing wrote cannot pass.
  void poison() {
    const Driver& d = Driver::get();
    d.check(d.cuMemsetD8(ptr_, 0xff, bytes_), "cuMemsetD8");
  }

 private:
  CUdeviceptr ptr_ = 0;
  size_t bytes_;
};

// Options of a runtime whose compiled kernels stay in this process (no user cache touched),
// optionally forcing one attention main loop.
inline RuntimeOptions in_memory(std::optional<AttnPath> path = std::nullopt) {
  RuntimeOptions o;
  o.persist = false;
  o.attention_path = path;
  return o;
}

// The attention main loops device 0 runs: mma.sync everywhere, wgmma on sm_90a. Tests that touch
// attention run each.
inline std::vector<AttnPath> attention_paths() {
  std::vector<AttnPath> paths{AttnPath::mma};
  if (query_device(0).arch == "sm_90a") paths.push_back(AttnPath::wgmma);
  return paths;
}

// The primary context of device 0 made current for the test's lifetime.
class TestContext {
 public:
  TestContext() {
    const Driver& d = Driver::get();
    d.check(d.cuDeviceGet(&dev_, 0), "cuDeviceGet");
    d.check(d.cuDevicePrimaryCtxRetain(&ctx_, dev_), "cuDevicePrimaryCtxRetain");
    d.check(d.cuCtxPushCurrent(ctx_), "cuCtxPushCurrent");
  }
  ~TestContext() {
    const Driver& d = Driver::get();
    CUcontext c;
    d.cuCtxPopCurrent(&c);
    d.cuDevicePrimaryCtxRelease(dev_);
  }
  void sync() const {
    const Driver& d = Driver::get();
    d.check(d.cuCtxSynchronize(), "cuCtxSynchronize");
  }

 private:
  CUdevice dev_ = 0;
  CUcontext ctx_ = nullptr;
};

}  // namespace vecattn::test
