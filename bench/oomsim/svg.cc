// bench/oomsim/svg.cc — see svg.h for what the figure shows.
#include "svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include "size.h"

namespace pacegc::oomsim {
namespace {

constexpr double kWidth = 960;
constexpr double kLeft = 64;    // room for the memory axis labels
constexpr double kRight = 150;  // room for the line labels
constexpr double kTop = 62;     // title and legend
constexpr double kPanelHeight = 170;
constexpr double kPanelGap = 46;  // panel title above, time labels below
constexpr double kBottom = 34;

std::string F(double v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

// A "nice" tick step (1, 2 or 5 × 10^k, in units) giving at most max_ticks ticks over range.
double NiceStep(double range, int max_ticks) {
  if (!(range > 0)) return 1;
  double raw = range / max_ticks;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

// MiB steps are powers of two when that reads better: 16, 32, 64, 128 ...
double NiceMiBStep(double range_mib, int max_ticks) {
  double step = 1;
  while (range_mib / step > max_ticks) step *= 2;
  return step;
}

struct Panel {
  const Group *group;
  const RunResult *run;
  double y0;  // top of the plotting area
};

}  // namespace

std::string XmlEscape(const std::string &text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

void WriteSvg(std::ostream &out, const Experiment &e) {
  const Scenario &s = e.scenario;
  std::vector<Panel> panels;
  double t_max = 0.1, y_max_bytes = static_cast<double>(s.cap_bytes);
  for (const Group &g : e.groups) {
    if (!g.invocation.applicable || g.runs.empty()) continue;
    const RunResult &r = g.runs.front();
    panels.push_back({&g, &r, 0});
    t_max = std::max(t_max, r.elapsed_s);
    for (const UsagePoint &u : r.usage) y_max_bytes = std::max(y_max_bytes, static_cast<double>(u.bytes));
    for (const WorkerSample &w : r.samples) {
      if (w.total) y_max_bytes = std::max(y_max_bytes, static_cast<double>(*w.total));
    }
    if (g.policy.limit_bytes != 0) y_max_bytes = std::max(y_max_bytes, static_cast<double>(g.policy.limit_bytes));
  }
  const double y_max_mib = y_max_bytes * 1.08 / static_cast<double>(kMiB);
  const double plot_w = kWidth - kLeft - kRight;
  const double height =
      kTop + static_cast<double>(std::max<size_t>(panels.size(), 1)) * (kPanelHeight + kPanelGap) + kBottom;
  for (size_t i = 0; i < panels.size(); ++i) {
    panels[i].y0 = kTop + kPanelGap - 18 + static_cast<double>(i) * (kPanelHeight + kPanelGap);
  }
  auto X = [&](double t) { return kLeft + std::clamp(t / t_max, 0.0, 1.0) * plot_w; };

  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << F(kWidth) << "\" height=\"" << F(height)
      << "\" viewBox=\"0 0 " << F(kWidth) << " " << F(height) << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  const std::string quota = e.cpu_quota_us ? ", CPU quota " + CpuQuotaWords(e) : "";
  out << "<title>" << XmlEscape("pacegc-oomsim: scenario " + s.name + ", cap " + FormatSize(s.cap_bytes) + quota)
      << "</title>\n";
  out << "<rect x=\"0\" y=\"0\" width=\"" << F(kWidth) << "\" height=\"" << F(height) << "\" fill=\"white\"/>\n";
  out << "<text x=\"" << F(kLeft) << "\" y=\"20\" font-size=\"14\" font-weight=\"bold\">"
      << XmlEscape("Scenario " + s.name + " under a " + FormatSize(s.cap_bytes) + " cap (" +
                   (e.enforcement == Enforcement::kCgroup ? "cgroup v1" : "RSS watchdog") + ")" + quota +
                   ": memory over time")
      << "</text>\n";

  // Legend.
  struct LegendItem {
    const char *label, *stroke, *dash;
  };
  const LegendItem legend[] = {
      {"memory the cap counts", "#000000", ""}, {"runtime total", "#1f6fd1", ""}, {"heap goal", "#2a9d3a", "5,3"},
      {"live heap (last mark)", "#8a8a8a", ""}, {"cap", "#d62728", ""},           {"soft limit", "#ff8c00", "6,4"}};
  double lx = kLeft;
  for (const LegendItem &item : legend) {
    out << "<line x1=\"" << F(lx) << "\" y1=\"38\" x2=\"" << F(lx + 22) << "\" y2=\"38\" stroke=\"" << item.stroke
        << "\" stroke-width=\"2\"" << (item.dash[0] ? std::string(" stroke-dasharray=\"") + item.dash + "\"" : "")
        << "/>\n";
    out << "<text x=\"" << F(lx + 26) << "\" y=\"42\">" << XmlEscape(item.label) << "</text>\n";
    lx += 30 + 6.2 * static_cast<double>(std::string(item.label).size()) + 14;
  }

  const double y_step = NiceMiBStep(y_max_mib, 6);
  const double t_step = NiceStep(t_max, 10);
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const Panel &p = panels[pi];
    const Group &g = *p.group;
    const RunResult &r = *p.run;
    const double y0 = p.y0, y1 = p.y0 + kPanelHeight;
    auto Y = [&](double bytes) {
      return y1 - std::clamp(bytes / static_cast<double>(kMiB) / y_max_mib, 0.0, 1.0) * kPanelHeight;
    };
    const std::string clip = "clip" + std::to_string(pi);
    out << "<g>\n<clipPath id=\"" << clip << "\"><rect x=\"" << F(kLeft) << "\" y=\"" << F(y0) << "\" width=\""
        << F(plot_w) << "\" height=\"" << F(kPanelHeight) << "\"/></clipPath>\n";

    // Panel title: runtime, policy, outcome.
    RunMetrics m = ComputeMetrics(r);
    std::string outcome = m.survived ? "survived" : m.end_short;
    if (m.peak_mib) outcome += ", peak " + F(*m.peak_mib) + " MiB";
    if (m.gc_cycles) outcome += ", " + std::to_string(static_cast<long long>(*m.gc_cycles)) + " GC cycles";
    out << "<text x=\"" << F(kLeft) << "\" y=\"" << F(y0 - 6) << "\" font-weight=\"bold\">"
        << XmlEscape(std::string(RuntimeName(g.runtime)) + " · " + g.policy.label + " — " + outcome) << "</text>\n";

    // Phase bands.
    for (size_t i = 0; i < r.phases.size(); ++i) {
      double a = r.phases[i].start_s;
      double b = i + 1 < r.phases.size() ? r.phases[i + 1].start_s : r.elapsed_s;
      if (i % 2 == 0) {
        out << "<rect x=\"" << F(X(a)) << "\" y=\"" << F(y0) << "\" width=\"" << F(std::max(0.0, X(b) - X(a)))
            << "\" height=\"" << F(kPanelHeight) << "\" fill=\"#f2f2f2\"/>\n";
      }
      if (X(b) - X(a) > 28) {
        out << "<text x=\"" << F(X(a) + 3) << "\" y=\"" << F(y0 + 11) << "\" fill=\"#777777\" font-size=\"9\">"
            << XmlEscape("P" + std::to_string(r.phases[i].n) + " live " + FormatMiB(r.phases[i].live_bytes))
            << "</text>\n";
      }
    }
    out << "<rect x=\"" << F(kLeft) << "\" y=\"" << F(y0) << "\" width=\"" << F(plot_w) << "\" height=\""
        << F(kPanelHeight) << "\" fill=\"none\" stroke=\"#444444\"/>\n";

    // Axes: memory ticks on the left, time ticks below.
    for (double v = 0; v <= y_max_mib + 1e-9; v += y_step) {
      double y = Y(v * static_cast<double>(kMiB));
      out << "<line x1=\"" << F(kLeft - 4) << "\" y1=\"" << F(y) << "\" x2=\"" << F(kLeft) << "\" y2=\"" << F(y)
          << "\" stroke=\"#444444\"/>\n";
      out << "<text x=\"" << F(kLeft - 6) << "\" y=\"" << F(y + 4) << "\" text-anchor=\"end\">"
          << static_cast<long long>(v) << "</text>\n";
    }
    for (double t = 0; t <= t_max + 1e-9; t += t_step) {
      double x = X(t);
      out << "<line x1=\"" << F(x) << "\" y1=\"" << F(y1) << "\" x2=\"" << F(x) << "\" y2=\"" << F(y1 + 4)
          << "\" stroke=\"#444444\"/>\n";
      char label[32];
      snprintf(label, sizeof(label), t_step < 1 ? "%.1f" : "%.0f", t);
      out << "<text x=\"" << F(x) << "\" y=\"" << F(y1 + 15) << "\" text-anchor=\"middle\">" << label << "</text>\n";
    }
    out << "<text x=\"14\" y=\"" << F((y0 + y1) / 2) << "\" transform=\"rotate(-90 14 " << F((y0 + y1) / 2)
        << ")\" text-anchor=\"middle\">MiB</text>\n";
    if (pi + 1 == panels.size()) {
      out << "<text x=\"" << F(kLeft + plot_w / 2) << "\" y=\"" << F(y1 + 30) << "\" text-anchor=\"middle\">"
          << "seconds since the run started</text>\n";
    }

    // Cap and soft limit, labelled on the right.
    auto hline = [&](double bytes, const char *stroke, const char *dash, const std::string &label) {
      double y = Y(bytes);
      out << "<line x1=\"" << F(kLeft) << "\" y1=\"" << F(y) << "\" x2=\"" << F(kLeft + plot_w) << "\" y2=\"" << F(y)
          << "\" stroke=\"" << stroke << "\" stroke-width=\"1.5\""
          << (dash[0] ? std::string(" stroke-dasharray=\"") + dash + "\"" : "") << "/>\n";
      out << "<text x=\"" << F(kLeft + plot_w + 6) << "\" y=\"" << F(y + 4) << "\" fill=\"" << stroke << "\">"
          << XmlEscape(label) << "</text>\n";
    };
    hline(static_cast<double>(s.cap_bytes), "#d62728", "", "cap " + FormatSize(s.cap_bytes));
    if (g.policy.limit_bytes != 0) {
      double dy = std::fabs(Y(static_cast<double>(g.policy.limit_bytes)) - Y(static_cast<double>(s.cap_bytes)));
      std::string label = "soft limit " + FormatSize(g.policy.limit_bytes);
      if (dy < 12) label = "  " + label;  // keep both labels readable when the lines are close
      hline(static_cast<double>(g.policy.limit_bytes), "#ff8c00", "6,4", label);
    }

    // Series.
    auto polyline = [&](const std::vector<std::pair<double, double>> &pts, const char *stroke, double width,
                        const char *dash, bool step) {
      if (pts.empty()) return;
      out << "<polyline clip-path=\"url(#" << clip << ")\" fill=\"none\" stroke=\"" << stroke << "\" stroke-width=\""
          << F(width) << "\"" << (dash[0] ? std::string(" stroke-dasharray=\"") + dash + "\"" : "") << " points=\"";
      double prev_y = 0;
      for (size_t i = 0; i < pts.size(); ++i) {
        double x = X(pts[i].first), y = Y(pts[i].second);
        if (step && i > 0) out << F(x) << "," << F(prev_y) << " ";
        out << F(x) << "," << F(y) << " ";
        prev_y = y;
      }
      out << "\"/>\n";
    };
    auto series = [&](std::function<std::optional<uint64_t>(const WorkerSample &)> get) {
      std::vector<std::pair<double, double>> pts;
      for (const WorkerSample &w : r.samples) {
        auto v = get(w);
        // A goal far above the panel is drawn at its top (the clip path cuts it).
        if (v) pts.emplace_back(w.t_s, std::min(static_cast<double>(*v), y_max_bytes * 2));
      }
      return pts;
    };
    polyline(series([](const WorkerSample &w) { return w.live; }), "#8a8a8a", 1.2, "", false);
    polyline(series([](const WorkerSample &w) { return w.heap_goal; }), "#2a9d3a", 1.2, "5,3", true);
    polyline(series([](const WorkerSample &w) { return w.total; }), "#1f6fd1", 1.4, "", false);
    std::vector<std::pair<double, double>> usage;
    for (const UsagePoint &u : r.usage) usage.emplace_back(u.t_s, static_cast<double>(u.bytes));
    polyline(usage, "#000000", 1.8, "", false);

    // The kill.
    if (r.died_of_memory() || r.end == EndKind::kSignaled) {
      double kb = r.usage.empty() ? static_cast<double>(s.cap_bytes) : static_cast<double>(r.usage.back().bytes);
      if (r.end == EndKind::kOomKilled || r.end == EndKind::kWatchdogKilled) kb = static_cast<double>(s.cap_bytes);
      double x = X(r.elapsed_s), y = Y(kb);
      out << "<path d=\"M" << F(x - 6) << "," << F(y - 6) << " L" << F(x + 6) << "," << F(y + 6) << " M" << F(x - 6)
          << "," << F(y + 6) << " L" << F(x + 6) << "," << F(y - 6) << "\" stroke=\"#d62728\" stroke-width=\"3\"/>\n";
      std::string label = (r.end == EndKind::kOomKilled        ? "OOM kill"
                           : r.end == EndKind::kWatchdogKilled ? "watchdog kill"
                           : r.end == EndKind::kHeapExhausted  ? "out of memory"
                                                               : "died") +
                          std::string(r.last_phase() ? " in phase " + std::to_string(r.last_phase()) : "");
      bool right = x + 8 + 6.2 * static_cast<double>(label.size()) < kLeft + plot_w;
      out << "<text x=\"" << F(right ? x + 9 : x - 9) << "\" y=\"" << F(y + 18) << "\" fill=\"#d62728\""
          << (right ? "" : " text-anchor=\"end\"") << " font-weight=\"bold\">" << XmlEscape(label) << "</text>\n";
    }
    out << "</g>\n";
  }
  if (panels.empty()) {
    out << "<text x=\"" << F(kLeft) << "\" y=\"" << F(kTop + 30) << "\">no runs to plot</text>\n";
  }
  out << "</svg>\n";
}

}  // namespace pacegc::oomsim
