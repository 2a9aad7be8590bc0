// write_report: the analysis once, then every file from it, each written atomically.
//
//   runs.csv         one row per run: run_id, the factors, status, error, every metric
//   summary.csv      one row per condition × metric: n, mean, std, ci95_low, ci95_high (ok runs)
//   comparisons.csv  one row per setting × strategy × metric with a better direction
//                    and at least one seed shared with the baseline: the paired t-test
//                    against the baseline, Holm-corrected per metric over every setting
//                    and strategy; with a single pair the test columns are empty
//                    (columns ... mde, bootstrap_low, bootstrap_high, bootstrap_p: see ComparisonRow)
//   plw_fit.csv      only when λ varies: the quadratic fit per setting × metric
//   wordings.csv     only when a set has several wordings: each strategy's mean per wording and the spread
//   headline.md      the headline sentences (reports/headline.hpp)
//   FILE             with ReportInputs::findings_path: the findings page (reports/findings.hpp)
//   figures/*.svg    every chart, standalone
//   report.html      the page
#include <filesystem>
#include <set>

#include "harness/core/errors.hpp"
#include "reports/figures.hpp"
#include "reports/findings.hpp"
#include "reports/headline.hpp"
#include "reports/html.hpp"
#include "reports/io.hpp"
#include "reports/report.hpp"
#include "reports/sets.hpp"
#include "reports/tables.hpp"

namespace masklab::reports {
namespace {

// Figures of an earlier report that this one does not redraw would sit
// beside the new ones and mislead; the figures folder is the report's own.
void remove_stale_figures(const std::filesystem::path& folder, const std::vector<Figure>& figures) {
  namespace fs = std::filesystem;
  std::set<std::string> current;
  for (const auto& f : figures) current.insert(fs::path(f.file).filename().string());
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (entry.path().extension() == ".svg" && !current.count(entry.path().filename().string())) {
      stale.push_back(entry.path());
    }
  }
  for (const auto& path : stale) fs::remove(path, ec);
}

}  // namespace

std::vector<std::string> write_report(const ReportInputs& inputs, const std::string& out_dir) {
  namespace fs = std::filesystem;
  const Analysis analysis = analyze(inputs);
  const std::vector<Figure> figures = build_figures(inputs, analysis);

  const fs::path root(out_dir);
  std::error_code ec;
  fs::create_directories(root / "figures", ec);
  if (ec) throw UserError((root / "figures").string() + ": cannot create (" + ec.message() + ")");

  std::vector<std::string> written;
  std::vector<std::string> data_files;
  auto write = [&](const std::string& name, const std::string& content) {
    const std::string path = (root / name).string();
    write_file_atomic(path, content);
    written.push_back(path);
  };
  auto write_data = [&](const std::string& name, const std::string& content) {
    write(name, content);
    data_files.push_back(name);
  };
  write_data("runs.csv", runs_csv(inputs, analysis));
  write_data("summary.csv", summary_csv(analysis));
  write_data("comparisons.csv", comparisons_csv(analysis));
  if (analysis.plw_varies) {
    write_data("plw_fit.csv", plw_fit_csv(analysis));
  } else {
    fs::remove(root / "plw_fit.csv", ec);  // from an earlier report of a sweep that varied λ
  }
  if (!analysis.wording_spreads.empty()) {
    write_data("wordings.csv", wordings_csv(analysis));
  } else {
    fs::remove(root / "wordings.csv", ec);
  }
  write("headline.md", headline_markdown(inputs, analysis));

  for (const auto& f : figures) write(f.file, f.svg);
  remove_stale_figures(root / "figures", figures);

  write("report.html", report_html(inputs, analysis, figures, data_files));
  if (!inputs.findings_path.empty()) {
    write_file_atomic(inputs.findings_path, findings_markdown(inputs, analysis));
    written.push_back(inputs.findings_path);
  }
  return written;
}

}  // namespace masklab::reports
