// harness/core/safetensors: the reader's checks on every header field, the
// writer's layout, and both against the python safetensors library.
#include <catch2/catch.hpp>

#include <cstring>

#include <nlohmann/json.hpp>

#include "harness/core/errors.hpp"
#include "harness/core/safetensors.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

// A safetensors file by hand: the 8-byte length, `header` as given, `data`.
std::string raw_file(const std::string& header, const std::string& data) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  return out + header + data;
}

std::string read_error(const std::string& path) {
  return test::user_error_of([&] { SafetensorsFile f(path); });
}

}  // namespace

TEST_CASE("safetensors: written files read back, names sorted, header padded to 8 bytes", "[fast][safetensors]") {
  test::TempDir dir;
  const std::vector<float> a = {1.0f, -2.5f, 3.25f, 0.0f, 5.0f, 6.0f};
  const std::vector<std::uint16_t> b = {0x3f80, 0xc040};  // bf16 1.0, -3.0
  write_safetensors(dir.file("t.safetensors"), {{"z.weight", TensorDtype::kF32, {2, 3}, a.data()},
                                                 {"a.bias", TensorDtype::kBF16, {2}, b.data()}});
  const std::string bytes = test::read_text(dir.file("t.safetensors"));
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK(n % 8 == 0);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(header["__metadata__"]["format"] == "pt");
  CHECK(header["a.bias"]["data_offsets"] == nlohmann::json({0, 4}));  // sorted: a.bias first
  CHECK(header["z.weight"]["data_offsets"] == nlohmann::json({4, 28}));
  CHECK(bytes.size() == 8 + n + 28);

  SafetensorsFile f(dir.file("t.safetensors"));
  REQUIRE(f.tensors().size() == 2);
  const auto& z = f.tensors().at("z.weight");
  CHECK(z.dtype == TensorDtype::kF32);
  CHECK(z.shape == std::vector<std::int64_t>{2, 3});
  CHECK(std::memcmp(z.data, a.data(), 24) == 0);
  CHECK(std::memcmp(f.tensors().at("a.bias").data, b.data(), 4) == 0);
  CHECK(f.metadata().at("format") == "pt");
}

TEST_CASE("safetensors: the python library reads masklab's files and masklab reads the library's",
          "[fast][safetensors][python]") {
  test::TempDir dir;
  const auto written = test::run_venv_python("hf_safetensors_file.py", "write " + dir.file("py.safetensors"));
  REQUIRE(written.exit_code == 0);
  SafetensorsFile f(dir.file("py.safetensors"));
  REQUIRE(f.tensors().size() == 3);
  const auto& a = f.tensors().at("a.f32");
  CHECK(a.shape == std::vector<std::int64_t>{2, 3});
  std::vector<float> av(6);
  std::memcpy(av.data(), a.data, 24);
  CHECK(av == std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1.0f, 1.25f});
  std::uint16_t half[3];
  std::memcpy(half, f.tensors().at("b.f16").data, 6);
  CHECK(half[0] == 0x3e00);  // 1.5 in IEEE half
  CHECK(half[2] == 0x7bff);  // 65504, the largest half
  std::uint16_t bf[2];
  std::memcpy(bf, f.tensors().at("c.bf16").data, 4);
  CHECK(bf[0] == 0x3f00);  // 0.5
  CHECK(bf[1] == 0xc040);  // -3.0

  const std::vector<float> x = {0.5f, -1.0f, 2.0f, 4.0f};
  const std::vector<std::uint16_t> y = {0x3c00, 0xc000};  // half 1.0, -2.0
  write_safetensors(dir.file("ours.safetensors"),
                    {{"x", TensorDtype::kF32, {2, 2}, x.data()}, {"y", TensorDtype::kF16, {2}, y.data()}});
  const auto read = test::run_venv_python("hf_safetensors_file.py", "read " + dir.file("ours.safetensors"));
  REQUIRE(read.exit_code == 0);
  const auto j = nlohmann::json::parse(read.out);
  CHECK(j["x"]["dtype"] == "torch.float32");
  CHECK(j["x"]["shape"] == nlohmann::json({2, 2}));
  CHECK(j["x"]["values"] == nlohmann::json({0.5, -1.0, 2.0, 4.0}));
  CHECK(j["y"]["dtype"] == "torch.float16");
  CHECK(j["y"]["values"] == nlohmann::json({1.0, -2.0}));
}

TEST_CASE("safetensors: every damaged header is a UserError naming the file and the tensor", "[fast][safetensors]") {
  test::TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  struct Case {
    const char* what;
    std::string bytes;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"shorter than 8 bytes", "abc", "truncated"},
      {"header longer than the file", raw_file("{" + ok_entry + "}", std::string(8, '\0')).substr(0, 20), "truncated"},
      {"data shorter than the offsets", raw_file("{" + ok_entry + "}", std::string(4, '\0')), "'w': data_offsets [0, 8] lie outside"},
      {"absurd header length", std::string("\xff\xff\xff\xff\xff\x00\x00\x00", 8) + "{}", "absurd"},
      {"not JSON", raw_file("{nope", ""), "not JSON"},
      {"not an object", raw_file("[1,2]", ""), "not a JSON object"},
      {"I8", raw_file(R"({"w":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}})", "ab"), "'w': dtype I8 cannot be read"},
      {"F64", raw_file(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0')), "dtype F64"},
      {"negative shape", raw_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0')), "'w': shape [-1]"},
      {"overflowing shape", raw_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", std::string(4, '\0')), "overflows"},
      {"size mismatch", raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')), "'w': data_offsets [0, 8] hold 8 bytes"},
      {"overlap", raw_file(R"({"u":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')), "'v': its data_offsets overlap those of 'u'"},
      {"duplicate", raw_file("{" + ok_entry + "," + ok_entry + "}", std::string(8, '\0')), "'w': named twice"},
      {"missing fields", raw_file(R"({"w":{"dtype":"F32"}})", ""), "'w': entry needs"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    test::write_text(path, c.bytes);
    const std::string error = read_error(path);
    CHECK_THAT(error, Catch::Contains(path) && Catch::Contains(c.expected));
    CHECK(error.find('\n') == std::string::npos);
  }
}

TEST_CASE("safetensors: shards are read through the index, a missing shard is named", "[fast][safetensors]") {
  test::TempDir dir;
  const std::vector<float> a = {1, 2}, b = {3, 4, 5};
  write_safetensors(dir.file("s1.safetensors"), {{"a", TensorDtype::kF32, {2}, a.data()}});
  write_safetensors(dir.file("s2.safetensors"), {{"b", TensorDtype::kF32, {3}, b.data()}});
  test::write_text(dir.file("model.safetensors.index.json"),
                   R"({"metadata":{},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  SafetensorsCheckpoint ckpt(dir.path());
  REQUIRE(ckpt.tensors().size() == 2);
  CHECK(ckpt.tensors().at("b")->shape == std::vector<std::int64_t>{3});
  CHECK(ckpt.files().size() == 2);

  test::write_text(dir.file("model.safetensors.index.json"),
                   R"({"weight_map":{"a":"s1.safetensors","b":"s3.safetensors"}})");
  CHECK_THAT(test::user_error_of([&] { SafetensorsCheckpoint c(dir.path()); }),
             Catch::Contains("names shard 's3.safetensors', which is missing"));
  test::write_text(dir.file("model.safetensors.index.json"),
                   R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}})");
  CHECK_THAT(test::user_error_of([&] { SafetensorsCheckpoint c(dir.path()); }),
             Catch::Contains("'b': listed in the index but absent"));
}
