// Runner of the [gpu] tests: where no usable GPU exists, each test reports itself skipped
// (exit code 77, which ctest shows as "Skipped") and says why.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <string>

#include "runtime/driver.h"

constexpr int kSkipped = 77;

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing |= std::strncmp(argv[i], "--list", 6) == 0;
  std::string why;
  if (!listing && !vecattn::Driver::available(&why)) {
    std::printf("SKIPPED: %s\n", why.c_str());
    return kSkipped;
  }
  return Catch::Session().run(argc, argv);
}
