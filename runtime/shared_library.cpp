// libvecattn.so: the C ABI (runtime/vecattn.h) for ctypes and other languages. The objects come
// from vecattn_runtime and the libraries below it; this file adds only the version query.
#include "codegen/compiler.h"
#include "runtime/vecattn.h"

extern "C" const char* vecattn_version(void) { return vecattn::library_version(); }
