#include "reports/html.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "reports/base.hpp"
#include "reports/headline.hpp"
#include "reports/io.hpp"

namespace masklab::reports {
namespace {

using nlohmann::json;

std::string esc(const std::string& text) { return html_escape(text); }

// Four significant digits: enough to tell strategies apart, short enough to scan.
std::string shown(double v) { return std::isfinite(v) ? fmt::format("{:.4g}", v) : "\u2013"; }

std::string stars(double p) {
  if (!(p < 0.05)) return "";
  return p < 0.001 ? "***" : p < 0.01 ? "**" : "*";
}

constexpr const char* kStyle = R"css(
body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;background:#fff;max-width:1200px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:24px;margin:0 0 2px}
h2{font-size:19px;border-bottom:2px solid #0072B2;padding-bottom:3px;margin:34px 0 10px}
h3{font-size:15px;margin:18px 0 6px}
p.sub{color:#555;margin:0 0 10px}
nav a{margin-right:14px;color:#0072B2;text-decoration:none}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13px}
th,td{border:1px solid #dcdcdc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f7;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.err{font:12px ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;max-width:560px;overflow-wrap:anywhere}
.sig{font-weight:bold;margin-left:5px}
.better{color:#0072B2}.worse{color:#D55E00}.ns{color:#9a9a9a;font-weight:normal}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;margin-right:6px;font-size:12px;color:#fff}
.st-ok{background:#009E73}.st-diverged{background:#E69F00;color:#000}.st-failed{background:#D55E00}.st-missing{background:#6b6b6b}
summary{cursor:pointer;font-weight:600;margin:10px 0 4px}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:10px;overflow:auto;max-height:360px;font-size:12px;margin:6px 0}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:14px 20px}
figure{margin:6px 0}
figure svg{width:100%;height:auto;border:1px solid #ececec}
figcaption{font-size:12px;color:#555;margin-top:3px}
code,.file{font:12px ui-monospace,Menlo,Consolas,monospace;color:#444}
h2 code,h3 code{font-size:0.9em}
.note{background:#fff8e5;border-left:4px solid #E69F00;padding:6px 10px;margin:8px 0}
.seqrow{display:flex;gap:10px;align-items:flex-start;margin:3px 0}
.seqlabel{flex:0 0 190px;font-size:12px;padding-top:3px;overflow-wrap:anywhere}
.seq{flex:1;display:flex;flex-wrap:wrap;row-gap:3px;font:13px/1.7 ui-monospace,Menlo,Consolas,monospace}
.tok{white-space:pre;padding:0 1px;margin-right:1px;border-radius:2px;min-width:4px}
.role-system{border-bottom:3px solid #CC79A7}.role-user{border-bottom:3px solid #0072B2}.role-template{border-bottom:3px solid #999}
.role-assistant{border-bottom:3px solid #009E73}.role-eos{border-bottom:3px solid #E69F00}
.scale{display:inline-block;width:160px;height:12px;vertical-align:middle;background:linear-gradient(to right,rgba(0,114,178,0),rgba(0,114,178,1));border:1px solid #ccc;margin:0 6px}
)css";

// The short header of a headline metric column, with the way it improves.
std::string metric_header(const std::string& metric) {
  static const std::map<std::string, std::string> names = {
      {"eval.exact_match", "exact match"},           {"eval.completion_nll", "completion NLL"},
      {"eval.completion_token_accuracy", "token accuracy"}, {"eval.prompt_nll", "prompt NLL"},
      {"train.completion_nll", "train completion NLL"},     {"rouge_l", "ROUGE-L"}, {"f1", "F1"},
      {"acc_norm", "acc (length-normalised)"}};
  const auto it = names.find(metric);
  const std::string name = it == names.end() ? metric : it->second;
  const Better b = better_direction(metric);
  return esc(name) + (b == Better::kHigher ? " \u2191" : b == Better::kLower ? " \u2193" : "");
}

std::string figures_of(const std::vector<Figure>& figures, const std::string& section) {
  std::string out;
  for (const auto& f : figures) {
    if (f.section != section) continue;
    out += "<figure>" + f.svg + "<figcaption>" + esc(f.caption) + " <span class=\"file\">" + esc(f.file) +
           "</span></figcaption></figure>\n";
  }
  return out.empty() ? "" : "<div class=\"figures\">\n" + out + "</div>\n";
}

// Flattens nested provenance objects to "a.b" keys for a two-column table.
void flatten_provenance(const json& node, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  if (node.is_object() && !node.empty()) {
    for (const auto& [key, child] : node.items()) flatten_provenance(child, prefix.empty() ? key : prefix + "." + key, out);
  } else {
    out.emplace_back(prefix, node.is_string() ? node.get<std::string>() : node.dump());
  }
}

std::string what_was_run(const ReportInputs& inputs, const Analysis& a) {
  std::map<std::string, long> by_status;
  for (const auto& run : inputs.runs) ++by_status[run.status];
  std::string out = "<section id=\"run\"><h2>What was run</h2>\n<p>";
  out += fmt::format("{} runs: ", inputs.runs.size());
  for (const char* status : {"ok", "diverged", "failed", "missing"}) {
    out += fmt::format("<span class=\"badge st-{0}\">{0} {1}</span>", status,
                       by_status.count(status) ? by_status[status] : 0);
  }
  for (const auto& [status, count] : by_status) {  // a status this page does not know, shown as recorded
    if (status != "ok" && status != "diverged" && status != "failed" && status != "missing") {
      out += fmt::format("<span class=\"badge st-missing\">{} {}</span>", esc(status), count);
    }
  }
  out += "</p>\n<table><tr><th>factor</th><th>values</th></tr>\n";
  for (const auto& factor : inputs.sweep.factors) {
    const std::vector<std::string> levels = factor_levels(inputs, factor);
    std::string joined;
    for (const auto& level : levels) joined += (joined.empty() ? "" : ", ") + std::string("<code>") + esc(level) + "</code>";
    out += "<tr><td>" + esc(factor) + "</td><td>" + joined + "</td></tr>\n";
  }
  out += "</table>\n";
  if (a.baseline_present) {
    out += "<p>Baseline for comparisons: <code>" + esc(a.baseline) + "</code>.</p>\n";
  } else {
    out += "<p class=\"note\">The baseline strategy <code>" + esc(a.baseline) +
           "</code> is not in this sweep, so nothing is compared with it (comparisons.csv has its header only).</p>\n";
  }
  out += base_section_html(inputs);
  out += "<h3>Spec <span class=\"file\">" + esc(inputs.sweep.spec_path) + "</span></h3>\n<pre>" +
         esc(inputs.sweep.spec_text) + "</pre>\n";
  std::vector<std::pair<std::string, std::string>> provenance;
  flatten_provenance(inputs.sweep.provenance, "", provenance);
  out += "<h3>Provenance</h3>\n<table>\n";
  for (const auto& [key, value] : provenance) {
    if (!key.empty()) out += "<tr><th>" + esc(key) + "</th><td>" + esc(value) + "</td></tr>\n";
  }
  return out + "</table>\n</section>\n";
}

// One cell of the headline table: mean ± CI half-width, with the comparison mark.
std::string headline_cell(const Analysis& a, size_t setting, const std::string& strategy, const std::string& metric) {
  const SummaryRow* row = a.find_summary(setting, strategy, metric);
  if (!row || row->stats.n == 0) {
    return fmt::format("<td class=\"num\" data-setting=\"{}\" data-strategy=\"{}\" data-metric=\"{}\" data-n=\"0\">\u2013</td>",
                       setting, esc(strategy), esc(metric));
  }
  const MeanInterval& s = row->stats;
  std::string text = shown(s.mean);
  if (std::isfinite(s.high)) text += " \u00b1 " + fmt::format("{:.2g}", (s.high - s.low) / 2);
  std::string mark;
  if (const ComparisonRow* c = a.find_comparison(setting, strategy, metric); c && c->test.n >= 2) {
    const std::string detail =
        fmt::format("vs {}: difference {:+.4g} [{}, {}], {} pairs, p = {:.3g}, Holm p = {:.3g}, d_z = {:.3g}, "
                    "wins {} / losses {} / ties {}, minimum detectable effect {}{}",
                    a.baseline, c->test.mean_diff, shown(c->test.low), shown(c->test.high), c->test.n, c->test.p_value,
                    c->p_holm, c->test.cohens_dz, c->wins, c->losses, c->ties, shown(c->mde),
                    c->bootstrap.seeds > 0
                        ? fmt::format(", bootstrap [{}, {}]", shown(c->bootstrap.low), shown(c->bootstrap.high))
                        : "");
    const std::string significance = stars(c->p_holm);
    if (significance.empty()) {
      mark = "<span class=\"sig ns\" title=\"" + esc(detail) + "\">ns</span>";
    } else {
      const bool up = c->test.mean_diff > 0;
      const bool improved = up == (better_direction(metric) == Better::kHigher);
      mark = fmt::format("<span class=\"sig {}\" title=\"{}\">{}{}</span>", improved ? "better" : "worse", esc(detail),
                         up ? "+" : "\u2212", significance);
    }
  }
  return fmt::format("<td class=\"num\" data-setting=\"{}\" data-strategy=\"{}\" data-metric=\"{}\" data-n=\"{}\" "
                     "data-mean=\"{}\" title=\"n = {}, 95% CI [{}, {}]\">{}{}</td>",
                     setting, esc(strategy), esc(metric), s.n, csv_number(s.mean), s.n, shown(s.low), shown(s.high),
                     text, mark);
}

// One strategy's row of a setting's headline table: λ, ok runs and a cell
// per headline metric; "" when the strategy has no run in the setting.
std::string headline_row(const ReportInputs& inputs, const Analysis& a, size_t setting, const std::string& strategy) {
  long ok = 0, total = 0;
  for (size_t r = 0; r < inputs.runs.size(); ++r) {
    const auto it = inputs.runs[r].factors.find("strategy");
    const std::string run_strategy = it == inputs.runs[r].factors.end() ? "" : it->second;
    if (a.run_setting[r] != setting || run_strategy != strategy) continue;
    ++total;
    ok += inputs.runs[r].status == "ok";
  }
  if (total == 0) return "";
  const auto lambda = a.lambda(strategy);
  std::string out = "<tr><td><code>" + esc(strategy) + "</code>" + (strategy == a.baseline ? " (baseline)" : "") + "</td>";
  out += "<td class=\"num\">" + (lambda ? fmt::format("{:g}", *lambda) : std::string("\u2013")) + "</td>";
  out += fmt::format("<td class=\"num\">{} / {}</td>", ok, total);
  for (const auto& metric : headline_metrics()) out += headline_cell(a, setting, strategy, metric);
  return out + "</tr>\n";
}

// A plain sentence on what a comparison can show, for the MDE column.
std::string power_note(const ComparisonRow& c) {
  if (c.test.n < 2) return "fewer than two seeds: untestable, underpowered";
  if (c.no_variation()) return "no variation: every paired difference is 0";
  if (c.underpowered()) return "underpowered: the observed |difference| is below the MDE";
  return "";
}

// The paired tests of `metrics`, folded away; a note when there are none.
std::string comparison_details(const Analysis& a, const std::vector<std::string>& metrics) {
  size_t shown_tests = 0;
  std::string table =
      "<table><tr>" +
      std::string(a.settings.size() > 1 ? "<th>setting</th>" : "") +
      "<th>strategy</th><th>metric</th><th>pairs</th><th>difference</th><th>MDE</th><th>95% CI</th>"
      "<th>bootstrap 95% CI</th><th>bootstrap p</th><th>t</th><th>p</th>"
      "<th>Holm p</th><th>d<sub>z</sub></th><th>wins / losses / ties</th><th>power</th></tr>\n";
  for (const auto& c : a.comparisons) {
    if (std::find(metrics.begin(), metrics.end(), c.metric) == metrics.end()) continue;
    ++shown_tests;
    table += "<tr>" + (a.settings.size() > 1 ? "<td>" + esc(a.setting_label(c.setting)) + "</td>" : std::string()) +
             "<td><code>" + esc(c.strategy) + "</code></td><td>" + esc(c.metric) + "</td>" +
             fmt::format("<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                         "<td class=\"num\">[{}, {}]</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                         "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}{}</td>"
                         "<td class=\"num\">{}</td><td class=\"num\">{} / {} / {}</td><td>{}</td></tr>\n",
                         c.test.n, shown(c.test.mean_diff), shown(c.mde), shown(c.test.low), shown(c.test.high),
                         c.bootstrap.seeds > 0 ? fmt::format("[{}, {}]", shown(c.bootstrap.low), shown(c.bootstrap.high))
                                               : std::string("\u2013"),
                         shown(c.bootstrap.p_value), shown(c.test.t), shown(c.test.p_value), shown(c.p_holm),
                         stars(c.p_holm), shown(c.test.cohens_dz), c.wins, c.losses, c.ties, esc(power_note(c)));
  }
  table += "</table>\n<p>All metrics, per task included: <span class=\"file\">comparisons.csv</span>. Fewer than "
           "two pairs leave the test empty. MDE: the smallest |difference| the paired t-test detects with 80% power at "
           "this comparison's own Holm step (0.05 / (m \u2212 rank) among the m tests of the metric), given its seeds "
           "and the sd of its differences. Bootstrap: 2.5th\u201397.5th percentiles of the difference over replicates "
           "that redraw seeds and examples with replacement (the same examples for every seed), from each example's "
           "score in eval_examples.jsonl; \u2013 where the runs wrote none.</p>\n";
  if (shown_tests > 0) {
    return fmt::format("<details><summary>Paired comparisons with the baseline ({} tests)"
                       "</summary>\n{}</details>\n",
                       shown_tests, table);
  }
  if (a.baseline_present) {
    return "<p class=\"note\">No strategy shares a seed with the baseline in any setting: nothing to compare.</p>\n";
  }
  return "";
}

std::string headline(const ReportInputs& inputs, const Analysis& a) {
  std::string out =
      "<section id=\"headline\"><h2>Headline: strategies on held-out data</h2>\n<p>Each cell: mean over seeds "
      "\u00b1 half-width of the 95% t interval (runs with status ok; no interval with one seed). Marks compare "
      "a strategy with the baseline <code>" +
      esc(a.baseline) +
      "</code> on the same seeds: the sign of (strategy \u2212 baseline), then <b>*</b> Holm p &lt; 0.05, "
      "<b>**</b> &lt; 0.01, <b>***</b> &lt; 0.001 (paired t-test, Holm-corrected per metric over every setting "
      "and strategy); <span class=\"better\"><b>blue</b></span> is an improvement, <span class=\"worse\"><b>"
      "vermillion</b></span> a degradation, <span class=\"ns\">ns</span> not significant. \u2191/\u2193: "
      "higher/lower is better. \u03bb: the prompt weight of strategies on the prompt-loss-weight axis, from the "
      "runs' recorded role weights. Hover a cell for the interval, the p-values and the wins.</p>\n";
  for (size_t setting = 0; setting < a.settings.size(); ++setting) {
    if (a.settings.size() > 1) out += "<h3>" + esc(a.setting_label(setting)) + "</h3>\n";
    out += "<table class=\"headline\"><tr><th>strategy</th><th>\u03bb</th><th>ok runs</th>";
    for (const auto& metric : headline_metrics()) out += "<th title=\"" + esc(metric) + "\">" + metric_header(metric) + "</th>";
    out += "</tr>\n";
    for (const auto& strategy : a.strategies) out += headline_row(inputs, a, setting, strategy);
    out += "</table>\n";
  }
  return out + comparison_details(a, headline_metrics()) + "</section>\n";
}

// The headline sentences and the stopping rule, at the top of the page.
std::string in_brief(const ReportInputs& inputs, const Analysis& a) {
  std::string out = "<section id=\"brief\"><h2>In brief</h2>\n";
  const std::string stopping = stopping_rule_sentence(inputs.sweep);
  if (!stopping.empty()) out += "<p class=\"stopping\">" + esc(stopping) + "</p>\n";
  const auto sentences = headline_sentences(a);
  if (sentences.empty()) return out + "<p>Nothing is compared with the baseline <code>" + esc(a.baseline) + "</code>.</p>\n</section>\n";
  out += "<ul class=\"brief\">\n";
  for (const auto& sentence : sentences) out += "<li>" + esc(sentence) + "</li>\n";
  return out + "</ul>\n<p>Written from the comparisons below (also <span class=\"file\">headline.md</span>).</p>\n</section>\n";
}

// One set's per-strategy table: a cell per metric of the set, as in the headline table.
std::string set_table(const Analysis& a, size_t setting, const std::vector<std::string>& columns, const std::string& set) {
  std::string out = "<table class=\"set\" data-set=\"" + esc(set) + "\"><tr><th>strategy</th>";
  for (const auto& metric : columns) {
    out += "<th title=\"" + esc(metric) + "\">" + metric_header(metric.substr(6 + set.size())) + "</th>";
  }
  out += "</tr>\n";
  for (const auto& strategy : a.strategies) {
    if (!a.find_summary(setting, strategy, columns[0])) continue;
    out += "<tr><td><code>" + esc(strategy) + "</code>" + (strategy == a.baseline ? " (baseline)" : "") + "</td>";
    for (const auto& metric : columns) out += headline_cell(a, setting, strategy, metric);
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

// Each strategy's score per wording and the spread across wordings.
std::string wording_table(const Analysis& a, size_t setting, const EvalSetInfo& set) {
  std::string out = "<table class=\"wordings\" data-set=\"" + esc(set.name) + "\"><tr><th>strategy</th><th>metric</th>";
  for (size_t w = 0; w < set.wordings.size(); ++w) {
    out += fmt::format("<th title=\"{}\">wording {}</th>", esc(set.wordings[w]), w);
  }
  out += "<th>spread (max \u2212 min)</th><th>sd</th></tr>\n";
  for (const auto& row : a.wording_spreads) {
    if (row.setting != setting || row.set != set.name) continue;
    out += "<tr><td><code>" + esc(row.strategy) + "</code></td><td>" + esc(row.metric) + "</td>";
    for (double m : row.means) out += "<td class=\"num\">" + shown(m) + "</td>";
    out += "<td class=\"num\">" + shown(row.spread) + "</td><td class=\"num\">" + shown(row.sd) + "</td></tr>\n";
  }
  out += "</table>\n<p>Wordings: ";
  for (size_t w = 0; w < set.wordings.size(); ++w) {
    out += fmt::format("{}<b>{}</b> <code>{}</code>", w ? "; " : "", w, esc(set.wordings[w]));
  }
  return out + ". Each cell: the mean over seeds of the set scored under that wording alone "
               "(<span class=\"file\">wordings.csv</span>).</p>\n";
}

std::string eval_sets_section(const Analysis& a, const std::vector<Figure>& figures) {
  if (a.sets.empty()) return "";
  std::string out = "<section id=\"sets\"><h2>Evaluation sets</h2>\n<p>Each set's metric is the mean over its "
                    "wordings; cells and marks as in the headline table.</p>\n";
  for (const auto& set : a.sets) {
    const auto columns = set_metric_columns(a, set.name);
    out += "<h3 id=\"set-" + esc(set.name) + "\">Set <code>" + esc(set.name) + "</code></h3>\n";
    out += fmt::format("<p>Kind <b>{}</b>, {} examples, {} wording{}.</p>\n", esc(set.kind.empty() ? "unknown" : set.kind),
                       set.examples, set.wordings.size(), set.wordings.size() == 1 ? "" : "s");
    if (columns.empty()) {
      out += "<p class=\"note\">No run with status ok has metrics for this set.</p>\n";
      continue;
    }
    for (size_t setting = 0; setting < a.settings.size(); ++setting) {
      if (a.settings.size() > 1) out += "<h4>" + esc(a.setting_label(setting)) + "</h4>\n";
      out += set_table(a, setting, columns, set.name);
      if (set.wordings.size() > 1) out += wording_table(a, setting, set);
    }
    out += figures_of(figures, "set:" + set.name);
    out += comparison_details(a, columns);
  }
  return out + "</section>\n";
}

std::string curves(const std::vector<Figure>& figures) {
  std::string body = figures_of(figures, "curves");
  if (body.empty()) body = "<p class=\"note\">No curve points: no run with status ok has held-out evaluations in its curve.jsonl.</p>\n";
  return "<section id=\"curves\"><h2>Held-out loss during training</h2>\n" + body + "</section>\n";
}

std::string plw(const Analysis& a, const std::vector<Figure>& figures) {
  std::string out = "<section id=\"plw\"><h2>Prompt-loss weight \u03bb</h2>\n";
  if (!a.plw_varies) {
    return out +
           "<p class=\"note\">The prompt weight does not vary in this sweep (fewer than three distinct \u03bb among "
           "the strategies whose recorded role weights put them on the prompt-loss-weight axis, such as "
           "<code>completion_only</code> = 0, <code>weighted:\u03bb</code> and <code>full</code> = 1), so there is no "
           "plw_fit.csv and no \u03bb chart.</p>\n</section>\n";
  }
  out += fmt::format(
      "<p>Following Huerta-Enochian &amp; Ko (2024), each metric is fitted by least squares as y = b0 + b1\u00b7x + "
      "b2\u00b7x\u00b2 with x = {}, one point per run with status ok. A negative b2 for a higher-is-better "
      "metric is an inner optimum; best \u03bb is the fitted optimum within the observed range.</p>\n",
      transform_formula(a.transform));
  out += figures_of(figures, "plw");
  out += "<table><tr>" + std::string(a.settings.size() > 1 ? "<th>setting</th>" : "") +
         "<th>metric</th><th>n</th><th>b1</th><th>b2</th><th>p(b2)</th><th>R\u00b2</th><th>best \u03bb</th></tr>\n";
  for (const auto& f : a.plw_fits) {
    if (f.metric.rfind("eval.", 0) != 0) continue;  // per-task fits: plw_fit.csv
    out += "<tr>" + (a.settings.size() > 1 ? "<td>" + esc(a.setting_label(f.setting)) + "</td>" : std::string()) +
           "<td>" + esc(f.metric) + "</td>" +
           fmt::format("<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                       "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} ({})</td></tr>\n",
                       f.fit.n, shown(f.fit.beta(1)), shown(f.fit.beta(2)), shown(f.fit.p(2)), shown(f.fit.r2),
                       shown(f.best_lambda), f.direction == Better::kHigher ? "max" : "min");
  }
  return out + "</table>\n<p>Per-task fits and standard errors: <span class=\"file\">plw_fit.csv</span>.</p>\n</section>\n";
}

std::string tasks(const ReportInputs& inputs, const std::vector<Figure>& figures) {
  std::string out = "<section id=\"tasks\"><h2>Tasks</h2>\n" + figures_of(figures, "tasks");
  out += "<h3>Length profile of the training data</h3>\n";
  if (inputs.tasks.empty()) return out + "<p class=\"note\">No task length profile was supplied.</p>\n</section>\n";
  const bool conditions = std::any_of(inputs.tasks.begin(), inputs.tasks.end(),
                                      [](const TaskProfile& t) { return !t.condition.empty(); });
  out += "<p>R<sub>g</sub> = mean completion tokens / mean prompt tokens: Shi et al. (2024) found loss on the "
         "prompt helps most when it is small (long prompts, short completions).</p>\n<table><tr><th>task</th>" +
         std::string(conditions ? "<th>setting</th>" : "") +
         "<th>examples</th><th>prompt tokens</th><th>completion tokens</th><th>R<sub>g</sub></th></tr>\n";
  for (const auto& t : inputs.tasks) {
    const double ratio = t.prompt_tokens_mean > 0 ? t.completion_tokens_mean / t.prompt_tokens_mean : NAN;
    out += "<tr><td>" + esc(t.task) + "</td>" + (conditions ? "<td>" + esc(t.condition) + "</td>" : std::string()) +
           fmt::format("<td class=\"num\">{}</td><td class=\"num\">{:.1f}</td><td class=\"num\">{:.1f}</td>"
                       "<td class=\"num\">{}</td></tr>\n",
                       t.examples, t.prompt_tokens_mean, t.completion_tokens_mean,
                       std::isfinite(ratio) ? fmt::format("{:.3f}", ratio) : "\u2013");
  }
  return out + "</table>\n</section>\n";
}

std::string problems(const ReportInputs& inputs) {
  std::string rows;
  for (const auto& run : inputs.runs) {
    if (run.status == "ok") continue;
    std::string factors;
    for (const auto& name : inputs.sweep.factors) {
      const auto it = run.factors.find(name);
      if (it != run.factors.end()) factors += (factors.empty() ? "" : ", ") + name + "=" + it->second;
    }
    rows += fmt::format("<tr><td><code>{}</code></td><td>{}</td><td><span class=\"badge st-{}\">{}</span></td>"
                        "<td class=\"err\">{}</td></tr>\n",
                        esc(run.id), esc(factors),
                        run.status == "diverged" || run.status == "failed" ? run.status : "missing", esc(run.status),
                        esc(run.error));
  }
  std::string out = "<section id=\"problems\"><h2>Runs that did not finish well</h2>\n";
  if (rows.empty()) return out + "<p>Every run finished with status ok.</p>\n</section>\n";
  return out + "<p>Not averaged anywhere in this report. <i>missing</i>: no metrics.json yet (not run, still "
               "running, or killed).</p>\n<table><tr><th>run</th><th>factors</th><th>status</th><th>error</th></tr>\n" +
         rows + "</table>\n</section>\n";
}

constexpr const char* kWeightLegend =
    "Each token's background is its weight as a label (the weight of predicting it): 0 "
    "<span class=\"scale\"></span> 1 (weights above 1 saturate). The first row underlines each token's role: "
    "<span class=\"role-system\">system</span> <span class=\"role-user\">user</span> "
    "<span class=\"role-template\">template</span> <span class=\"role-assistant\">assistant</span> "
    "<span class=\"role-eos\">eos</span>. Hover a token for its weight.";

// An example's tokens: a row of roles, then one row per strategy with each
// token's background shaded by its weight.
std::string weighted_tokens(const WeightedExample& ex) {
  std::string out = "<div class=\"seqrow\"><div class=\"seqlabel\"><b>role</b></div><div class=\"seq\">";
  for (size_t i = 0; i < ex.tokens.size(); ++i) {
    const std::string role = i < ex.roles.size() ? ex.roles[i] : "";
    out += "<span class=\"tok role-" + esc(role) + "\" title=\"" + esc(role) + "\">" + esc(ex.tokens[i]) + "</span>";
  }
  out += "</div></div>\n";
  for (const auto& [strategy, weights] : ex.weights) {
    out += "<div class=\"seqrow\"><div class=\"seqlabel\"><code>" + esc(strategy) + "</code></div><div class=\"seq\">";
    for (size_t i = 0; i < ex.tokens.size(); ++i) {
      const double w = i < weights.size() ? weights[i] : 0.0;
      const double alpha = std::clamp(std::isfinite(w) ? w : 0.0, 0.0, 1.0);
      const std::string style =
          alpha > 0 ? fmt::format(" style=\"background:rgba(0,114,178,{:.3f}){}\"", alpha, alpha > 0.55 ? ";color:#fff" : "")
                    : "";
      out += fmt::format("<span class=\"tok\"{} title=\"{} \u00b7 {} \u00b7 weight {:g}\">{}</span>", style,
                         esc(ex.tokens[i]), esc(i < ex.roles.size() ? ex.roles[i] : ""), w, esc(ex.tokens[i]));
    }
    out += "</div></div>\n";
  }
  return out;
}

std::string weighted_example(const ReportInputs& inputs) {
  std::string out = "<section id=\"example\"><h2>One example, as each strategy weighs it</h2>\n";
  if (!inputs.example) return out + "<p class=\"note\">No example was supplied.</p>\n</section>\n";
  out += "<p>Task <code>" + esc(inputs.example->task) + "</code>. " + kWeightLegend + "</p>\n";
  return out + weighted_tokens(*inputs.example) + "</section>\n";
}

std::string page_head(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
         esc(title) + "</title>\n<style>" + kStyle + "</style></head>\n<body>\n<h1>" + esc(title) + "</h1>\n";
}

}  // namespace

std::string report_html(const ReportInputs& inputs, const Analysis& analysis, const std::vector<Figure>& figures,
                        const std::vector<std::string>& data_files) {
  const std::string title = "masklab report: " + (inputs.sweep.name.empty() ? std::string("sweep") : inputs.sweep.name);
  std::string out = page_head(title);
  out += "<p class=\"sub\">Loss-masking strategies compared on the same training job. "
         "Spec <span class=\"file\">" + esc(inputs.sweep.spec_path) + "</span>.</p>\n";
  out += "<nav><a href=\"#brief\">in brief</a><a href=\"#run\">what was run</a><a href=\"#headline\">headline</a>" +
         std::string(analysis.sets.empty() ? "" : "<a href=\"#sets\">evaluation sets</a>") + "<a href=\"#curves\">loss curves</a>"
         "<a href=\"#plw\">prompt weight</a><a href=\"#tasks\">tasks</a><a href=\"#problems\">problem runs</a>"
         "<a href=\"#example\">weighted example</a></nav>\n";
  out += in_brief(inputs, analysis);
  out += what_was_run(inputs, analysis);
  out += headline(inputs, analysis);
  out += eval_sets_section(analysis, figures);
  out += curves(figures);
  out += plw(analysis, figures);
  out += tasks(inputs, figures);
  out += problems(inputs);
  out += weighted_example(inputs);
  std::string files;
  for (const auto& f : data_files) files += (files.empty() ? "" : ", ") + std::string("<span class=\"file\">") + esc(f) + "</span>";
  out += "<footer><h2>Data</h2><p>Next to this page: " + files +
         ", and every chart as a standalone SVG under <span class=\"file\">figures/</span>.</p></footer>\n";
  return out + "</body></html>\n";
}

std::string examples_page(const std::string& title, const std::vector<WeightedExample>& examples) {
  std::string out = page_head(title) + "<p class=\"sub\">" + kWeightLegend + "</p>\n";
  if (examples.empty()) out += "<p class=\"note\">No example to show.</p>\n";
  for (size_t i = 0; i < examples.size(); ++i) {
    out += fmt::format("<h2>Example {}: task <code>{}</code>, {} tokens</h2>\n", i + 1, esc(examples[i].task),
                       examples[i].tokens.size());
    out += weighted_tokens(examples[i]);
  }
  return out + "</body></html>\n";
}

}  // namespace masklab::reports
