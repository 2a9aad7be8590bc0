#pragma once
// report.html: one self-contained page (inline CSS and inline SVG; no
// scripts, nothing fetched) with what was run, the headline table with
// significance marks against the baseline, the charts, the task length
// profiles, the runs that did not finish well, and one example's tokens
// coloured by each strategy's weight; and a page of such examples alone.
// Every text that comes from data or config goes through html_escape.
#include <string>
#include <vector>

#include "reports/figures.hpp"
#include "reports/report.hpp"
#include "reports/tables.hpp"

namespace masklab::reports {

// data_files: the CSV files written next to the page, named in its footer.
std::string report_html(const ReportInputs& inputs, const Analysis& analysis, const std::vector<Figure>& figures,
                        const std::vector<std::string>& data_files);

// A page of examples alone (as `masklab inspect --html` writes it): each
// example's tokens with every strategy's weights, styled as in the report.
std::string examples_page(const std::string& title, const std::vector<WeightedExample>& examples);

}  // namespace masklab::reports
