#pragma once
// What the tools share on their command lines: exit codes, CLI11
// validators whose messages read well, and the checks of flags and files that run before any
// GPU work, each error naming the flag (Error(invalid_argument)).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

namespace vecattn::tools {

// 1: a bad command line, a bad input file or a failure; 2: no driver or no GPU.
constexpr int kExitError = 1;
constexpr int kExitNoGpu = 2;

// Parses the command line; nullopt when the tool should go on, else the code to exit with: 0
// after --help, kExitError for a parse or validation error (CLI11_PARSE would return CLI11's
// own 105 to 109, which a script could not tell apart from the tools' other usage errors).
// Errors are printed as the tools print their own, after `tool: `.
std::optional<int> parse_command_line(CLI::App& app, const char* tool, int argc, char** argv);

// "--batch: 0 must be at least 1" (hi left out) rather than CLI11's ranges of doubles (0.000000 to
// 1.79e308); hi at most INT32_MAX, which also keeps an int64 flag's value within an int.
CLI::Validator int_range(int64_t lo, int64_t hi = INT32_MAX);
// [lo, hi], or (lo, hi] with open_low.
CLI::Validator real_range(double lo, double hi, bool open_low = false);
// A bool given as a number: exactly 0 or 1 (CLI11 takes any positive number as true).
CLI::Validator zero_or_one();

// --pq, --bk and --gk as the kernels accept them: the registry's rule (why_invalid), asked one
// flag at a time so that the error names the flag at fault.
void check_kernel_flags(int pq, int bk, int gk, bool causal);
// A head dim the kernels accept; `source` says where it came from ("--head-dim 96", "q.npy").
void check_head_dim(int64_t head_dim, const std::string& source);

// An input file of `flag` that exists and can be opened for reading.
void check_readable(const std::string& flag, const std::string& path);
// An output of `flag` that can be written: an existing file open to writing, or a new one in a
// writable folder. Nothing is created or truncated here, so a run that fails later leaves an
// earlier file as it was.
void check_writable(const std::string& flag, const std::string& path);

}  // namespace vecattn::tools
