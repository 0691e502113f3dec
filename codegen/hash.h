#pragma once
// FNV-1a, 64 bits: fingerprints of kernel sources and checksums of stored cubins. Not for
// security; it only has to notice a change or a torn write.
#include <cstdint>
#include <string>
#include <string_view>

namespace vecattn {

class Fnv1a {
 public:
  Fnv1a& add(std::string_view bytes) {
    for (unsigned char c : bytes) h_ = (h_ ^ c) * 0x100000001b3ull;
    // A separator, so that ("ab","c") and ("a","bc") differ.
    h_ = (h_ ^ 0xffu) * 0x100000001b3ull;
    return *this;
  }
  uint64_t value() const { return h_; }
  std::string hex() const;

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

inline std::string hash_hex(std::string_view bytes) { return Fnv1a().add(bytes).hex(); }

}  // namespace vecattn
