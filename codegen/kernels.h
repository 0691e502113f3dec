#pragma once
// The kernel registry: which template implements a kernel, how a variant names its template
// instantiation, the default tile config, and which keys and configs are legal.
#include <string>
#include <vector>

#include "templates/params.h"

#include "codegen/key.h"

namespace vecattn {

// The kernels with a template today. The tuner and the precompile command walk these.
const std::vector<KernelKind>& implemented_kernels();

// The template file a kernel lives in, and the C++ name of one instantiation, e.g.
// "vecattn::pool_kernel<64, 128, vecattn::bf16, 4>" (given to nvrtcAddNameExpression).
const char* template_file(const Variant& v);
std::string instantiation(const Variant& v);

// The built-in default config for a key: the last layer of lookup, and the tuner's reference.
// Select and attention keys on sm_90a default to the wgmma path; `path` asks for one path's default.
TileConfig default_config(const KernelKey& key);
TileConfig default_config(const KernelKey& key, AttnPath path);

// Whether an arch runs the Hopper wgmma paths of select and attention (sm_90a).
bool has_wgmma(const std::string& arch);

// Threads per CTA of a select variant (the wgmma kernel adds a producer warp to its consumers).
int select_threads(const Variant& v);

// How an attention variant is launched: query rows per CTA (the grid's x covers the rows with
// CTAs of this many) and threads per CTA.
struct AttnLaunch {
  int rows_per_cta;
  int threads;
};
AttnLaunch attn_launch(const Variant& v);

// Empty when legal; otherwise the reason, naming the field and what is allowed. Checked on the
// host before any compile (the tuner prunes with it); templates repeat it with static_assert.
std::string why_invalid(const KernelKey& key);
std::string why_invalid(const Variant& v);
// Throws Error(unsupported) with that reason.
void require_valid(const Variant& v);

// Every legal key of the implemented kernels for an arch (supported head dims, dtypes, Pq...).
std::vector<KernelKey> all_keys(const std::string& arch);

// A small set of keys that still gives every template parameter each of its values at least
// once: what CI compiles for every arch (the full product is hundreds of variants).
std::vector<KernelKey> coverage_keys(const std::string& arch);

// Dynamic shared memory a variant launches with (0: static only). Shared by the launch and the
// legality check against a device's limit.
int dynamic_smem_bytes(const Variant& v);

}  // namespace vecattn
