#include "codegen/hash.h"

#include <fmt/format.h>

namespace vecattn {

std::string Fnv1a::hex() const { return fmt::format("{:016x}", h_); }

}  // namespace vecattn
