// bench/oomsim/svg.h — the experiment's figure, written as SVG by hand (no plotting dependency), in the spirit of
// the Go GC guide's pacer-problem figure: one panel per (runtime, policy), memory over time on a shared time axis
// and a shared memory axis, from the first run of each row:
//   black   the memory the cap counts (cgroup memory.usage_in_bytes, or VmRSS under the watchdog), parent's samples
//   blue    what the runtime counts against its limit (the worker's `total`)
//   green   the heap goal (dashed; clipped at the top of the panel)
//   grey    the live heap the last cycle marked
//   red     the hard cap (solid) and, for policies with one, the soft limit (orange, dashed)
//   a red × where the run was killed, labelled with the phase; shaded bands are the phases, labelled with their live
//   size.
#ifndef PACEGC_BENCH_OOMSIM_SVG_H_
#define PACEGC_BENCH_OOMSIM_SVG_H_

#include <ostream>
#include <string>

#include "report.h"

namespace pacegc::oomsim {

void WriteSvg(std::ostream &out, const Experiment &e);

// XML text/attribute escaping (&, <, >, ", '), exposed for the tests.
std::string XmlEscape(const std::string &text);

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_SVG_H_
