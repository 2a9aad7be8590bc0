#pragma once
// Text output shared by the report writers: CSV fields (RFC 4180), HTML/XML
// escaping and numbers that round-trip. Atomic writes: harness/core/files.hpp.
#include <string>
#include <vector>

#include "harness/core/files.hpp"

namespace masklab::reports {

// One CSV field, quoted when it holds a comma, quote, CR, LF or edge spaces;
// quotes inside are doubled (RFC 4180). Text (not a number) that begins with
// = + - @, tab or CR gets a leading ' so that spreadsheets show it, not run it.
std::string csv_field(const std::string& text);
// One CSV record: the quoted fields joined by commas, ending in "\n" (not
// RFC 4180's CRLF: pandas, R and spreadsheets read both, and Unix tools prefer LF).
std::string csv_row(const std::vector<std::string>& fields);

// A number as a CSV cell: the shortest text that parses back to the same
// double, "inf"/"-inf" for infinities, and "" (a missing value) for NaN.
std::string csv_number(double value);

// & < > " ' as entities: safe in HTML and SVG text and in quoted attributes.
std::string html_escape(const std::string& text);

}  // namespace masklab::reports
