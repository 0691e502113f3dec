#pragma once
// What the runtime needs to know of a GPU: its arch string and its limits.
#include <string>

namespace vecattn {

struct DeviceInfo {
  int ordinal = 0;
  std::string name;             // "NVIDIA H100 80GB HBM3"
  int cc_major = 0, cc_minor = 0;
  std::string arch;             // "sm_90a": the arch-specific target where one exists (9.0, 10.0)
  int sm_count = 0;
  int max_smem_per_block = 0;   // opt-in limit, bytes
  int max_smem_per_sm = 0;
  long long total_memory = 0;   // bytes
  int driver_version = 0;       // 13000
};

// Throws Error(no_driver / no_device / invalid_argument) when the ordinal does not exist.
DeviceInfo query_device(int ordinal);
int device_count();

// sm_XY, plus the 'a' of the arch-specific feature set for 9.0 and 10.0 (wgmma, setmaxnreg...).
std::string arch_for(int cc_major, int cc_minor);

}  // namespace vecattn
