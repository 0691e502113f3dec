#pragma once
// The kernel templates, embedded at build time (templates/embed.cmake).
#include <string_view>
#include <vector>

namespace vecattn::templates {

// Both views point at string literals, so data() is NUL-terminated (NVRTC relies on it).
struct TemplateFile {
  std::string_view name;    // e.g. "pool.cuh": the name an #include uses
  std::string_view source;
};

const std::vector<TemplateFile>& all_files();

// The embedded file of that name; empty view when there is none.
std::string_view find(std::string_view name);

}  // namespace vecattn::templates
