#include "templates/registry.h"

namespace vecattn::templates {

std::string_view find(std::string_view name) {
  for (const auto& f : all_files())
    if (f.name == name) return f.source;
  return {};
}

}  // namespace vecattn::templates
