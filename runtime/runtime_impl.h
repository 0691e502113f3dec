#pragma once
// The private state of a Runtime, shared by the files that implement its operations.
#include <cuda.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "runtime/device.h"
#include "runtime/module_cache.h"
#include "runtime/stream_workspace.h"
#include "runtime/runtime.h"

namespace vecattn {

struct Runtime::Impl {
  DeviceInfo device;
  CUdevice cu_device = 0;
  CUcontext context = nullptr;         // the device's primary context, retained
  std::unique_ptr<CubinCache> own_cubins;  // when the options name a database of their own
  CubinCache* cubins = nullptr;
  std::unique_ptr<ModuleCache> modules;

  // Scratch for calls that pass no workspace, held in the order of the caller's stream.
  std::unique_ptr<StreamWorkspacePool> workspaces;

  // Attention path forced by the options or the environment, if any.
  std::optional<AttnPath> attention_path;

  // Config lookup: memory -> user database -> pretuned file -> default.
  std::mutex config_mutex;
  std::map<KernelKey, ConfigChoice> configs;
  LookupStats lookups;
  ConfigChoice choose(const KernelKey& key);
  ConfigChoice lookup_uncached(const KernelKey& key);
  std::optional<AttnPath> forced_path(const KernelKey& key) const;
  TileConfig default_for(const KernelKey& key) const;  // the default, on the forced path if any

  // The loaded kernel of (key, its config) for this device.
  const LoadedKernel& kernel(const KernelKey& key);
};

}  // namespace vecattn
