#include "reports/io.hpp"


#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

namespace masklab::reports {

namespace {

// A cell as csv_number writes it ("-0.5", "1e-05", "-inf"): left as it is,
// since a spreadsheet reads it as a number, not a formula.
bool is_number_cell(const std::string& text) {
  if (text == "inf" || text == "-inf") return true;
  if (text.find_first_not_of("0123456789.eE+-") != std::string::npos) return false;
  char* end = nullptr;
  std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size();
}

}  // namespace

std::string csv_field(const std::string& raw) {
  // Spreadsheets run a cell that begins with = + - @ (or tab, CR) as a
  // formula, and names in the cells are the user's: a leading quote makes such
  // text plain text (OWASP, "CSV Injection").
  const bool formula_like = !raw.empty() && std::string("=+-@\t\r").find(raw.front()) != std::string::npos;
  const std::string text = formula_like && !is_number_cell(raw) ? "'" + raw : raw;
  const bool needs_quotes = text.find_first_of(",\"\r\n") != std::string::npos ||
                            (!text.empty() && (text.front() == ' ' || text.back() == ' '));
  if (!needs_quotes) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_row(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += csv_field(fields[i]);
  }
  return out + "\n";
}

std::string csv_number(double value) {
  if (std::isnan(value)) return "";
  return fmt::format("{}", value);  // fmt prints the shortest round-trip representation; inf as "inf"
}

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace masklab::reports
