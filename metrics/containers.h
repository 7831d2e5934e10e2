// metrics/containers.h — the standard containers the metrics layer uses, over collector metadata memory.
//
// The registry, its names and every reservoir are collector metadata: they live in pacegc's private mimalloc via
// gc/meta.h, so they are counted (pgc_stats.metadata_bytes, part of what the memory limit counts), are never in
// the collected heap (never scanned, never reclaimed under a live handle) and never in the system malloc.
#ifndef PACEGC_METRICS_CONTAINERS_H_
#define PACEGC_METRICS_CONTAINERS_H_

#include <string>
#include <vector>

#include "base/meta.h"

namespace pacegc::metrics {

template <typename T>
using MetaVector = std::vector<T, internal::meta::StlAllocator<T>>;
using MetaString = std::basic_string<char, std::char_traits<char>, internal::meta::StlAllocator<char>>;

}  // namespace pacegc::metrics

#endif  // PACEGC_METRICS_CONTAINERS_H_
