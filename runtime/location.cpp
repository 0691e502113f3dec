#include "runtime/location.h"

#include <dlfcn.h>

namespace vecattn {

std::string loaded_object_directory() {
  Dl_info info;
  if (!dladdr(reinterpret_cast<void*>(&loaded_object_directory), &info) || !info.dli_fname) return {};
  const std::string path = info.dli_fname;
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

}  // namespace vecattn
