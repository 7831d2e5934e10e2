// gc/meta.h — forwards to base/meta.h, where it moved (issue 11: gc/ and metrics/ both need it, so it sits below both).
// Transitional: kept only so that branches written in parallel with the move (gc/pacing.cc, gc/threads.cc and any
// new gc/ file they add) merge without edits. Include "base/meta.h" in new code; delete this file once nothing in
// gc/ includes it (`grep -rn '"gc/meta.h"' gc` is empty).
#ifndef PACEGC_GC_META_H_
#define PACEGC_GC_META_H_

#include "base/meta.h"

#endif  // PACEGC_GC_META_H_
