#pragma once
// Errors are values with structure: a short reason for the user, and the long detail
// (an NVRTC log, the options, the kernel key) kept apart for a developer.
#include <stdexcept>
#include <string>

namespace vecattn {

enum class Status {
  ok = 0,
  invalid_argument,   // a bad input: the message names the argument and what is allowed
  unsupported,        // valid in principle, not built: e.g. a head_dim without a kernel
  no_driver,          // libcuda could not be opened
  no_device,          // a driver but no usable GPU
  cuda_error,         // a Driver API call failed
  nvrtc_unavailable,  // libnvrtc could not be opened
  compile_error,      // NVRTC rejected a kernel
  cache_error,        // the SQLite cache failed (the runtime falls back, the tools report)
  internal,
};

const char* status_name(Status s);

class Error : public std::runtime_error {
 public:
  Error(Status status, std::string message, std::string detail = {}, std::string key = {})
      : std::runtime_error(std::move(message)), status_(status), detail_(std::move(detail)), key_(std::move(key)) {}

  Status status() const { return status_; }
  // The long form: compiler log, options, call trace. May be empty.
  const std::string& detail() const { return detail_; }
  // The kernel variant concerned, as its canonical string. May be empty.
  const std::string& key() const { return key_; }

 private:
  Status status_;
  std::string detail_;
  std::string key_;
};

}  // namespace vecattn
