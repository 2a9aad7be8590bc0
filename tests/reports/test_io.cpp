// reports/io: CSV fields that a spreadsheet cannot run as formulas, numbers
// left as numbers.
#include <catch2/catch.hpp>

#include <limits>

#include "reports/io.hpp"

using namespace masklab::reports;

TEST_CASE("CSV text that begins like a formula gets a leading quote, numbers stay numbers", "[fast][reports][csv]") {
  CHECK(csv_field("=HYPERLINK(\"http://x\")") == "\"'=HYPERLINK(\"\"http://x\"\")\"");
  CHECK(csv_field("+cmd") == "'+cmd");
  CHECK(csv_field("-2+3+cmd|' /C calc'!A0") == "'-2+3+cmd|' /C calc'!A0");
  CHECK(csv_field("@SUM(A1)") == "'@SUM(A1)");
  CHECK(csv_field("\tx") == "'\tx");
  CHECK(csv_field("\rx") == "\"'\rx\"");
  CHECK(csv_field("-") == "'-");
  CHECK(csv_field("-e") == "'-e");
  // Ordinary text and every number the number formatter writes are unchanged.
  CHECK(csv_field("weighted:0.1") == "weighted:0.1");
  CHECK(csv_field("a=b") == "a=b");
  for (const double v : {-1.5, -0.001, -1e-05, -3e+20, -std::numeric_limits<double>::infinity(), 2.0}) {
    INFO(v);
    CHECK(csv_field(csv_number(v)) == csv_number(v));
  }
  CHECK(csv_field("-1.5") == "-1.5");
  CHECK(csv_field("+2") == "+2");
  CHECK(csv_row({"=1+1", "-0.5", "x"}) == "'=1+1,-0.5,x\n");
}
