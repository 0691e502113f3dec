#pragma once
// The pretuned configs shipped per arch (cache/pretuned/<arch>.json), read once per process.
// Searched in $VECATTN_PRETUNED_DIR, the install prefix's share/vecattn/pretuned, and the source
// tree's cache/pretuned (for builds run in place).
#include <string>
#include <vector>

#include "cache/tuned.h"

namespace vecattn {

// The rows of the arch's file; empty when there is none. A malformed file is reported once as a
// warning and ignored (the defaults then serve).
const std::vector<cache::TunedRow>& pretuned_rows(const std::string& arch);

// The folders searched, in order.
std::vector<std::string> pretuned_dirs();

}  // namespace vecattn
