// pacer/page.h — the heap page, defined once for every layer: the lowest layer that needs it is the pacer (the
// scavenger releases and rounds in whole pages); gc/ (size_classes.h: spans, the page map, arenas) takes it from here.
#ifndef PACEGC_PACER_PAGE_H_
#define PACEGC_PACER_PAGE_H_

#include <cstddef>

namespace pacegc::pacer {

constexpr size_t kPageShift = 13;
constexpr size_t kPageBytes = size_t{1} << kPageShift;  // pacegc's heap page: 8 KiB

}  // namespace pacegc::pacer

#endif  // PACEGC_PACER_PAGE_H_
