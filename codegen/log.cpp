#include "codegen/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace vecattn::log {
namespace {

Level from_env() {
  const char* v = std::getenv("VECATTN_LOG_LEVEL");
  if (!v) return Level::info;
  if (!std::strcmp(v, "error")) return Level::error;
  if (!std::strcmp(v, "warn")) return Level::warn;
  if (!std::strcmp(v, "debug")) return Level::debug;
  return Level::info;
}

std::atomic<int>& current() {
  static std::atomic<int> l{static_cast<int>(from_env())};
  return l;
}

}  // namespace

Level level() { return static_cast<Level>(current().load(std::memory_order_relaxed)); }
void set_level(Level l) { current().store(static_cast<int>(l)); }

void write(Level l, std::string_view message) {
  static std::mutex m;
  static const char* names[] = {"error", "warn", "info", "debug"};
  std::lock_guard<std::mutex> lock(m);
  std::fprintf(stderr, "[vecattn %s] %.*s\n", names[static_cast<int>(l)], int(message.size()), message.data());
}

}  // namespace vecattn::log
