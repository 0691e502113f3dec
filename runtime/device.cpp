#include "runtime/device.h"

#include <fmt/format.h>

#include "codegen/error.h"
#include "runtime/driver.h"

namespace vecattn {

std::string arch_for(int major, int minor) {
  const bool arch_specific = (major == 9 && minor == 0) || (major == 10 && minor == 0);
  return fmt::format("sm_{}{}{}", major, minor, arch_specific ? "a" : "");
}

int device_count() {
  const Driver& d = Driver::get();
  int n = 0;
  d.check(d.cuDeviceGetCount(&n), "cuDeviceGetCount");
  return n;
}

DeviceInfo query_device(int ordinal) {
  const Driver& d = Driver::get();
  const int n = device_count();
  if (ordinal < 0 || ordinal >= n)
    throw Error(Status::invalid_argument, fmt::format("device {} does not exist: this machine has {} CUDA device{} (0..{})",
                                                      ordinal, n, n == 1 ? "" : "s", n - 1));
  CUdevice dev;
  d.check(d.cuDeviceGet(&dev, ordinal), "cuDeviceGet");
  DeviceInfo info;
  info.ordinal = ordinal;
  char name[256] = {};
  d.check(d.cuDeviceGetName(name, sizeof(name), dev), "cuDeviceGetName");
  info.name = name;
  auto attr = [&](CUdevice_attribute a) {
    int v = 0;
    d.check(d.cuDeviceGetAttribute(&v, a, dev), "cuDeviceGetAttribute");
    return v;
  };
  info.cc_major = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  info.cc_minor = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  info.arch = arch_for(info.cc_major, info.cc_minor);
  info.sm_count = attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  info.max_smem_per_block = attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
  info.max_smem_per_sm = attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR);
  size_t bytes = 0;
  d.check(d.cuDeviceTotalMem(&bytes, dev), "cuDeviceTotalMem");
  info.total_memory = static_cast<long long>(bytes);
  info.driver_version = d.version;
  return info;
}

}  // namespace vecattn
