#include <fmt/format.h>

#include <cstdlib>
#include <optional>
#include <string_view>

#include "codegen/kernels.h"
#include "codegen/log.h"
#include "runtime/driver.h"
#include "runtime/pretuned.h"
#include "runtime/runtime_impl.h"

namespace vecattn {

Runtime::Runtime(const RuntimeOptions& options) : impl_(std::make_unique<Impl>()) {
  const Driver& d = Driver::get();
  impl_->device = query_device(options.device);
  if (impl_->device.cc_major < 8)
    throw Error(Status::unsupported, fmt::format("{} is {}: vecattn needs compute capability 8.0 or newer",
                                                 impl_->device.name, impl_->device.arch));
  impl_->attention_path = options.attention_path;
  if (!impl_->attention_path)
    if (const char* env = std::getenv("VECATTN_ATTENTION_PATH"); env && *env) {
      if (std::string_view(env) == "mma") impl_->attention_path = AttnPath::mma;
      else if (std::string_view(env) == "wgmma") impl_->attention_path = AttnPath::wgmma;
      else throw Error(Status::invalid_argument,
                       fmt::format("VECATTN_ATTENTION_PATH is '{}': use mma or wgmma (or leave it unset)", env));
    }
  if (impl_->attention_path == AttnPath::wgmma && !has_wgmma(impl_->device.arch))
    throw Error(Status::unsupported, fmt::format("the wgmma attention path needs an sm_90a GPU; {} is {}: use mma",
                                                 impl_->device.name, impl_->device.arch));
  d.check(d.cuDeviceGet(&impl_->cu_device, options.device), "cuDeviceGet");
  d.check(d.cuDevicePrimaryCtxRetain(&impl_->context, impl_->cu_device), "cuDevicePrimaryCtxRetain");

  if (!options.persist) {
    impl_->own_cubins = std::make_unique<CubinCache>(nullptr);
  } else if (!options.cache_path.empty()) {
    std::shared_ptr<cache::Database> db;
    try {
      db = cache::Database::open(options.cache_path);
    } catch (const Error& e) {
      log::warn("{}; compiled kernels will not persist", e.what());
    }
    impl_->own_cubins = std::make_unique<CubinCache>(std::move(db), CubinCache::open_bundle());
  }
  impl_->cubins = impl_->own_cubins ? impl_->own_cubins.get() : &CubinCache::shared();
  impl_->modules = std::make_unique<ModuleCache>(impl_->context, *impl_->cubins);
  ScopedContext scope(impl_->context);
  impl_->workspaces = std::make_unique<StreamWorkspacePool>(impl_->cu_device, impl_->context);
}

Runtime::~Runtime() {
  impl_->modules.reset();
  if (impl_->workspaces) {
    ScopedContext scope(impl_->context);
    impl_->workspaces.reset();
  }
  if (impl_->context) Driver::get().cuDevicePrimaryCtxRelease(impl_->cu_device);
}

const DeviceInfo& Runtime::device() const { return impl_->device; }
const CubinCache::Stats& Runtime::cache_stats() const { return impl_->cubins->stats(); }

KernelKey Runtime::key(KernelKind kind, int pq, int bk, int gk, int head_dim, DType dtype, bool causal) const {
  return KernelKey{kind, pq, bk, gk, head_dim, dtype, impl_->device.arch, causal}.canonical();
}

CubinOrigin Runtime::preload(const Variant& v) {
  if (v.key.arch != impl_->device.arch)
    throw Error(Status::invalid_argument,
                fmt::format("variant {} is for {}, but device {} is {}", v.str(), v.key.arch, impl_->device.ordinal,
                            impl_->device.arch));
  return impl_->modules->get(v).origin;
}

void Runtime::release_workspace_memory() {
  ScopedContext scope(impl_->context);
  impl_->workspaces->trim();
}

const char* source_name(ConfigSource s) {
  switch (s) {
    case ConfigSource::override_config: return "override";
    case ConfigSource::user_database: return "user database";
    case ConfigSource::pretuned: return "pretuned file";
    case ConfigSource::builtin_default: return "built-in default";
  }
  return "?";
}

// The path forced on this runtime, when the key is a select or attention kernel and one is.
std::optional<AttnPath> Runtime::Impl::forced_path(const KernelKey& key) const {
  return key.kernel == KernelKind::pool || key.kernel == KernelKind::recall ? std::nullopt : attention_path;
}

TileConfig Runtime::Impl::default_for(const KernelKey& key) const {
  const std::optional<AttnPath> forced = forced_path(key);
  return forced ? default_config(key, *forced) : default_config(key);
}

ConfigChoice Runtime::Impl::lookup_uncached(const KernelKey& key) {
  const std::string name = key.str();
  auto usable = [&](const std::string& config, const char* where) -> std::optional<TileConfig> {
    try {
      TileConfig c = TileConfig::parse(key.kernel, config);
      if (auto why = why_invalid(Variant{key, c}); !why.empty()) {
        log::warn("{} has config {} for {}, which is not legal here ({}); skipping it", where, config, name, why);
        return std::nullopt;
      }
      return c;
    } catch (const Error& e) {
      log::warn("{} has an unreadable config for {}: {}", where, name, e.what());
      return std::nullopt;
    }
  };
  if (cache::Database* db = cubins->database()) {
    try {
      auto row = db->get_tuned(name, device.name);
      if (!row) row = db->get_tuned_for_arch(name, device.arch);
      if (row)
        if (auto c = usable(row->config, "the user database"))
          return {*c, ConfigSource::user_database, fmt::format("tuned on {} at S={}", row->device_name, row->seq_len)};
    } catch (const Error& e) {
      log::warn("{}; looking further for {}", e.what(), name);
    }
  }
  const cache::TunedRow* arch_row = nullptr;
  for (const auto& row : pretuned_rows(device.arch)) {
    if (row.kernel_key != name) continue;
    if (row.device_name == device.name) {
      arch_row = &row;
      break;
    }
    if (!arch_row) arch_row = &row;
  }
  if (arch_row)
    if (auto c = usable(arch_row->config, "the pretuned file"))
      return {*c, ConfigSource::pretuned, fmt::format("tuned on {} at S={}", arch_row->device_name, arch_row->seq_len)};
  return {default_for(key), ConfigSource::builtin_default, {}};
}

ConfigChoice Runtime::Impl::choose(const KernelKey& key) {
  {
    std::lock_guard<std::mutex> lock(config_mutex);
    if (auto it = configs.find(key); it != configs.end()) return it->second;
  }
  ConfigChoice c = lookup_uncached(key);
  if (const std::optional<AttnPath> forced = forced_path(key); forced && c.config.path != *forced)
    c = ConfigChoice{default_for(key), ConfigSource::builtin_default,
                     fmt::format("the {} path is forced", path_name(*forced))};
  std::lock_guard<std::mutex> lock(config_mutex);
  auto [it, inserted] = configs.emplace(key, c);
  if (inserted) {
    switch (c.source) {
      case ConfigSource::user_database: ++lookups.user_database; break;
      case ConfigSource::pretuned: ++lookups.pretuned; break;
      case ConfigSource::builtin_default: ++lookups.defaults; break;
      case ConfigSource::override_config: ++lookups.overrides; break;
    }
    log::debug("{} uses {} ({}{}{})", key.str(), c.config.str(key.kernel), source_name(c.source),
               c.detail.empty() ? "" : ", ", c.detail);
  }
  return it->second;
}

const LoadedKernel& Runtime::Impl::kernel(const KernelKey& key) {
  const ConfigChoice c = choose(key);
  try {
    return modules->get(Variant{key, c.config});
  } catch (const Error& e) {
    if (c.source == ConfigSource::builtin_default || c.source == ConfigSource::override_config) throw;
    // A stored config this device cannot run (e.g. more shared memory than it has): default.
    log::warn("{} with {} from the {} failed ({}); using the default", key.str(), c.config.str(key.kernel),
              source_name(c.source), e.what());
    {
      std::lock_guard<std::mutex> lock(config_mutex);
      configs[key] = ConfigChoice{default_for(key), ConfigSource::builtin_default, {}};
    }
    return modules->get(Variant{key, default_for(key)});
  }
}

std::vector<CubinCache::Outcome> Runtime::precompile(const std::vector<Variant>& variants, int threads) {
  return impl_->cubins->get_many(variants, threads);
}

ConfigChoice Runtime::config_for(const KernelKey& key) { return impl_->choose(key); }

void Runtime::set_config(const KernelKey& key, const TileConfig& config) {
  if (auto why = why_invalid(Variant{key, config}); !why.empty())
    throw Error(Status::invalid_argument, why, {}, Variant{key, config}.str());
  std::lock_guard<std::mutex> lock(impl_->config_mutex);
  impl_->configs[key] = ConfigChoice{config, ConfigSource::override_config, {}};
  ++impl_->lookups.overrides;
}

void Runtime::clear_config() {
  std::lock_guard<std::mutex> lock(impl_->config_mutex);
  impl_->configs.clear();
}

Runtime::LookupStats Runtime::lookup_stats() const {
  std::lock_guard<std::mutex> lock(impl_->config_mutex);
  return impl_->lookups;
}

}  // namespace vecattn
