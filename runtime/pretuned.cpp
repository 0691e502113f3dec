#include "runtime/pretuned.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "cache/pretuned_file.h"
#include "codegen/error.h"
#include "codegen/log.h"
#include "runtime/location.h"

namespace vecattn {

std::vector<std::string> pretuned_dirs() {
  std::vector<std::string> dirs;
  if (const char* d = std::getenv("VECATTN_PRETUNED_DIR"); d && *d) dirs.push_back(d);
  // Beside the library: a Python wheel (vecattn/pretuned), a moved install (../share/...).
  if (const std::string here = loaded_object_directory(); !here.empty()) {
    dirs.push_back(here + "/pretuned");
    dirs.push_back(here + "/../share/vecattn/pretuned");
  }
#ifdef VECATTN_PRETUNED_INSTALL_DIR
  dirs.push_back(VECATTN_PRETUNED_INSTALL_DIR);
#endif
#ifdef VECATTN_PRETUNED_SOURCE_DIR
  dirs.push_back(VECATTN_PRETUNED_SOURCE_DIR);
#endif
  return dirs;
}

const std::vector<cache::TunedRow>& pretuned_rows(const std::string& arch) {
  static std::mutex m;
  static std::map<std::string, std::vector<cache::TunedRow>> by_arch;
  std::lock_guard<std::mutex> lock(m);
  if (auto it = by_arch.find(arch); it != by_arch.end()) return it->second;
  std::vector<cache::TunedRow>& rows = by_arch[arch];
  for (const auto& dir : pretuned_dirs()) {
    const auto path = std::filesystem::path(dir) / (arch + ".json");
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    try {
      rows = cache::read_pretuned_file(path.string());
      log::debug("pretuned configs for {}: {} rows from {}", arch, rows.size(), path.string());
    } catch (const Error& e) {
      log::warn("{}; ignoring it, built-in defaults serve instead", e.what());
    }
    break;  // the first file found is the one that counts
  }
  return rows;
}

}  // namespace vecattn
