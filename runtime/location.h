#pragma once
// Where this code was loaded from, so files installed beside it (the kernel bundle, the pretuned
// configs) are found wherever the install (or a Python wheel) was put.
#include <string>

namespace vecattn {

// The directory of libvecattn.so, or of an executable that links the runtime statically; empty if
// the loader cannot tell.
std::string loaded_object_directory();

}  // namespace vecattn
