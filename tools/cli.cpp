#include "tools/cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "codegen/error.h"
#include "codegen/kernels.h"

namespace vecattn::tools {
namespace {

[[noreturn]] void bad(const std::string& m) { throw Error(Status::invalid_argument, m); }

}  // namespace

std::optional<int> parse_command_line(CLI::App& app, const char* tool, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "%s: %s\nRun with --help for more information.\n", tool, e.what());
    return kExitError;
  }
}

CLI::Validator int_range(int64_t lo, int64_t hi) {
  const std::string desc = hi == INT32_MAX ? fmt::format(">= {}", lo) : fmt::format("in [{}, {}]", lo, hi);
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        int64_t v = 0;
        if (!CLI::detail::lexical_cast(s, v)) return fmt::format("'{}' is not an integer", s);
        if (v >= lo && v <= hi) return {};
        if (hi != INT32_MAX) return fmt::format("{} must be in [{}, {}]", s, lo, hi);
        return v < lo ? fmt::format("{} must be at least {}", s, lo) : fmt::format("{} must be at most {}", s, hi);
      },
      desc);
}

CLI::Validator real_range(double lo, double hi, bool open_low) {
  const std::string range = fmt::format("{}{}, {}]", open_low ? "(" : "[", lo, hi);
  return CLI::Validator(
      [lo, hi, open_low, range](std::string& s) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(s, v)) return fmt::format("'{}' is not a number", s);
        if ((open_low ? v > lo : v >= lo) && v <= hi) return {};
        return fmt::format("{} must be in {}", s, range);
      },
      "in " + range);
}

CLI::Validator zero_or_one() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        return s == "0" || s == "1" ? std::string() : fmt::format("{} must be 0 or 1", s);
      },
      "0 or 1");
}

namespace {

// A select key reads every field these flags set. The others stay at values the registry
// accepts, and the arch is a placeholder: which values are legal does not depend on it.
std::string why_select_invalid(int pq, int bk, int gk, int head_dim, bool causal) {
  KernelKey k;
  k.kernel = KernelKind::select;
  k.pq = pq, k.bk = bk, k.gk = gk, k.head_dim = head_dim, k.causal = causal;
  k.arch = "sm_80";
  return why_invalid(k);
}

}  // namespace

void check_kernel_flags(int pq, int bk, int gk, bool causal) {
  if (auto w = why_select_invalid(pq, 16, 1, 128, false); !w.empty()) bad(fmt::format("--pq {}: {}", pq, w));
  if (auto w = why_select_invalid(64, bk, 1, 128, false); !w.empty()) bad(fmt::format("--bk {}: {}", bk, w));
  if (auto w = why_select_invalid(64, 16, gk, 128, false); !w.empty()) bad(fmt::format("--gk {}: {}", gk, w));
  if (auto w = why_select_invalid(pq, bk, gk, 128, causal); !w.empty())
    bad(fmt::format("--pq {} --bk {} --causal {}: {}", pq, bk, int(causal), w));
}

void check_head_dim(int64_t head_dim, const std::string& source) {
  const int d = head_dim > 0 && head_dim <= INT32_MAX ? int(head_dim) : -1;
  if (auto w = why_select_invalid(64, 16, 1, d, false); !w.empty())
    bad(fmt::format("{}: {}", source, d == -1 ? fmt::format("head_dim {} is not supported", head_dim) : w));
}

void check_readable(const std::string& flag, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) bad(fmt::format("{} {}: is a folder, not a file", flag, path));
  std::ifstream f(path, std::ios::binary);
  if (!f) bad(fmt::format("{} {}: cannot be opened ({})", flag, path, std::strerror(errno)));
}

void check_writable(const std::string& flag, const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) bad(fmt::format("{}: the path is empty", flag));
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) bad(fmt::format("{} {}: is a folder, not a file", flag, path));
  if (fs::exists(p, ec)) {
    if (access(path.c_str(), W_OK) != 0)
      bad(fmt::format("{} {}: cannot be written ({})", flag, path, std::strerror(errno)));
    return;
  }
  const fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  if (!fs::is_directory(parent, ec)) bad(fmt::format("{} {}: folder {} does not exist", flag, path, parent.string()));
  if (access(parent.c_str(), W_OK | X_OK) != 0)
    bad(fmt::format("{} {}: folder {} is not writable ({})", flag, path, parent.string(), std::strerror(errno)));
}

}  // namespace vecattn::tools
