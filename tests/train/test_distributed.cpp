// Data-parallel training (harness/train/distributed.cpp, the step's share
// and sums in trainer.cpp, the launcher in harness/cli/launch.cpp): two ranks
// train what one process trains with the same global batch.
#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/core/errors.hpp"
#include "harness/core/safetensors.hpp"
#include "harness/train/distributed.hpp"
#include "harness/train/loss.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

// A grad_accum > 1 job over examples of uneven lengths (two tasks, padded
// batches), an evaluation point (with its train_loss) after every step.
// train.eps=1e-6: AdamW divides by sqrt(v) + eps, so with the default 1e-8 a
// weight whose gradient cancels to ~1e-9 moves by lr x (its rounding noise /
// its size): a different summation order (two ranks' shares) then shows up
// as ~3e-6 in that one weight while every loss agrees to 2e-7. An eps above
// that noise keeps the comparison about the sums, not AdamW's conditioning.
std::string ddp_args(const std::string& out, const std::string& normalization, int batch_size) {
  return fmt::format(
      "train --strategy weighted:0.3 --seed 3 --out {} --save-model"
      " --set model.n_layers=1 --set model.d_model=32 --set model.n_heads=2 --set model.max_seq_len=96"
      " --set train.steps=20 --set train.batch_size={} --set train.grad_accum=2 --set train.warmup_steps=2"
      " --set train.eval_every=1 --set train.log_every=1 --set train.threads=1 --set train.device=cpu --set train.eps=1e-6"
      " --set loss.normalization={} --set data.tasks=count,lookup --set data.train_size=64"
      " --set data.eval_size=4 --set data.train_eval_size=4 --set eval.samples=1",
      out, batch_size, normalization);
}

// train_loss of every step, from curve.jsonl (one point per step, after step 0's).
std::vector<double> step_losses(const std::string& dir) {
  std::istringstream lines(test::read_text(dir + "/curve.jsonl"));
  std::vector<double> losses;
  for (std::string line; std::getline(lines, line);) {
    const auto point = nlohmann::json::parse(line);
    if (point["train_loss"].is_number()) losses.push_back(point["train_loss"].get<double>());
  }
  return losses;
}

struct Agreement {
  double loss_rel = 0;    // max |a - b| / |b| over the steps' losses
  double weight_abs = 0;  // max |a - b| over every final weight
};

Agreement compare_runs(const std::string& a, const std::string& b) {
  Agreement out;
  const auto la = step_losses(a), lb = step_losses(b);
  REQUIRE(la.size() == 20);
  REQUIRE(lb.size() == la.size());
  for (size_t i = 0; i < la.size(); ++i) out.loss_rel = std::max(out.loss_rel, std::abs(la[i] - lb[i]) / std::abs(lb[i]));
  const SafetensorsFile wa(a + "/model/model.safetensors"), wb(b + "/model/model.safetensors");
  REQUIRE(wa.tensors().size() == wb.tensors().size());
  for (const auto& [name, ta] : wa.tensors()) {
    const auto& tb = wb.tensors().at(name);
    REQUIRE(ta.dtype == TensorDtype::kF32);
    REQUIRE(ta.size == tb.size);
    const auto* pa = reinterpret_cast<const float*>(ta.data);
    const auto* pb = reinterpret_cast<const float*>(tb.data);
    for (size_t i = 0; i < ta.size / sizeof(float); ++i) {
      out.weight_abs = std::max(out.weight_abs, static_cast<double>(std::abs(pa[i] - pb[i])));
    }
  }
  return out;
}

nlohmann::json metrics_of(const std::string& dir) { return nlohmann::json::parse(test::read_text(dir + "/metrics.json")); }

// A TCP port nobody listens on now (the kernel's pick for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The pid of the child of `parent` whose environment holds `RANK=<rank>`, or 0.
pid_t rank_child(pid_t parent, int rank) {
  std::ifstream children(fmt::format("/proc/{}/task/{}/children", parent, parent));
  const std::string wanted = fmt::format("{}RANK={}{}", '\0', rank, '\0');
  for (pid_t child; children >> child;) {
    if (('\0' + test::read_text(fmt::format("/proc/{}/environ", child))).find(wanted) != std::string::npos) return child;
  }
  return 0;
}

void clear_dist_env() {
  for (const char* name : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_NTASKS",
                           "SLURM_PROCID", "SLURM_LOCALID", "MASKLAB_DIST_STORE", "MASKLAB_DIST_TIMEOUT"}) {
    ::unsetenv(name);
  }
}

std::string user_error_of_env() {
  return test::user_error_of([] { dist_env_from_environment(); });
}

}  // namespace

TEST_CASE("normalize_step with the step's global denominator gives each rank the unsplit step's coefficients",
          "[fast][loss][distributed]") {
  // The step of "each normalization mode matches a direct computation over
  // the step" (tests/train/test_loss.cpp): micro-batch 1 has two rows
  // (examples 0 and 1), micro-batch 2 one row. Split as two ranks would:
  // rank 0 holds row 0 of micro-batch 1 and micro-batch 2, rank 1 row 1 of micro-batch 1.
  const auto w1 = torch::tensor({{0.f, 1.f, 0.5f}, {2.f, 0.f, 0.f}});
  const auto w2 = torch::tensor({{1.f, 1.f, 0.f}});
  const auto s1 = torch::tensor({{0L, 0L, 0L}, {1L, 1L, -1L}});
  const auto s2 = torch::tensor({{0L, 0L, -1L}});
  const auto l1 = torch::tensor({{3.f, 1.f, 2.f}, {4.f, 9.f, 9.f}});
  const auto l2 = torch::tensor({{1.f, 5.f, 7.f}});
  const std::vector<torch::Tensor> r0_w{w1.slice(0, 0, 1), w2}, r0_s{s1.slice(0, 0, 1), s2};
  const std::vector<torch::Tensor> r1_w{w1.slice(0, 1, 2)}, r1_s{torch::tensor({{0L, 0L, -1L}})};
  // Hand-worked denominators: Σw = 5.5, #{w>0} = 5, 3 examples with weight.
  const std::vector<std::pair<Normalization, double>> modes = {
      {Normalization::kWeightSum, 5.5}, {Normalization::kTokenCount, 5.0}, {Normalization::kSequence, 3.0}};
  for (const auto& [mode, denominator] : modes) {
    const double d0 = step_denominator(r0_w, r0_s, mode), d1 = step_denominator(r1_w, r1_s, mode);
    CHECK(d0 + d1 == denominator);
    const auto whole = normalize_step({w1, w2}, {s1, s2}, mode);
    const auto rank0 = normalize_step(r0_w, r0_s, mode, d0 + d1);
    const auto rank1 = normalize_step(r1_w, r1_s, mode, d0 + d1);
    CHECK(torch::equal(rank0[0], whole[0].slice(0, 0, 1)));
    CHECK(torch::equal(rank0[1], whole[1]));
    CHECK(torch::equal(rank1[0], whole[0].slice(0, 1, 2)));
    // Σ coeff·ℓ over both ranks is the step's loss (hand-worked in test_loss.cpp).
    const double split_loss = (rank0[0] * l1.slice(0, 0, 1)).sum().item<double>() +
                              (rank0[1] * l2).sum().item<double>() +
                              (rank1[0] * l1.slice(0, 1, 2)).sum().item<double>();
    const double expected = mode == Normalization::kWeightSum    ? 16.0 / 5.5
                            : mode == Normalization::kTokenCount ? 16.0 / 5.0
                                                                 : (2.0 / 1.5 + 4.0 + 3.0) / 3.0;
    CHECK(split_loss == Approx(expected).epsilon(1e-6));
    // Without the global denominator a rank would normalize over its share alone.
    CHECK_FALSE(torch::equal(normalize_step(r1_w, r1_s, mode)[0], rank1[0]));
  }
}

TEST_CASE("DistContext: two ranks sum, broadcast and meet, one process is untouched", "[fast][distributed]") {
  test::TempDir dir;
  // Two ranks as two threads of this process, over one FileStore.
  std::vector<torch::Tensor> sums(2), broadcasts(2);
  std::vector<std::string> errors(2);
  auto rank_main = [&](int rank) {
    try {
      DistEnv env;
      env.rank = rank;
      env.world = 2;
      env.store_file = dir.file("store");
      env.timeout_seconds = 30;
      const DistContext dist = DistContext::connect(env, /*cuda=*/false);
      sums[rank] = torch::tensor({1.0 + rank, 10.0 * (rank + 1), -0.5}, torch::kDouble);
      dist.allreduce_sum(sums[rank]);
      broadcasts[rank] = torch::full({4}, static_cast<float>(7 + rank));
      dist.broadcast(broadcasts[rank], /*root=*/0);
      dist.barrier();
    } catch (const std::exception& e) {
      errors[rank] = e.what();
    }
  };
  std::thread other(rank_main, 1);
  rank_main(0);
  other.join();
  CHECK(errors[0].empty());
  CHECK(errors[1].empty());
  for (int rank = 0; rank < 2; ++rank) {
    CHECK(torch::equal(sums[rank], torch::tensor({3.0, 30.0, -1.0}, torch::kDouble)));  // (1+2, 10+20, -0.5-0.5)
    CHECK(torch::equal(broadcasts[rank], torch::full({4}, 7.0f)));                      // rank 0's
  }
  // World 1: no group, nothing changes.
  const DistContext single;
  const auto t = torch::tensor({2.0f, 3.0f});
  single.allreduce_sum(t);
  single.barrier();
  CHECK(torch::equal(t, torch::tensor({2.0f, 3.0f})));
  CHECK(single.world() == 1);
  CHECK(single.is_main());
}

TEST_CASE("the rank comes from RANK/WORLD_SIZE or srun's SLURM_* variables", "[fast][distributed]") {
  clear_dist_env();  // start clean: a test run under srun or torchrun has these
  struct Restore {
    ~Restore() { clear_dist_env(); }
  } restore;
  CHECK(dist_env_from_environment().world == 1);
  ::setenv("SLURM_NTASKS", "4", 1);
  ::setenv("SLURM_PROCID", "3", 1);
  ::setenv("SLURM_LOCALID", "1", 1);
  CHECK(user_error_of_env().find("srun with 4 ranks: set MASTER_ADDR") != std::string::npos);
  ::setenv("MASTER_ADDR", "node7", 1);
  DistEnv env = dist_env_from_environment();
  CHECK(env.rank == 3);
  CHECK(env.world == 4);
  CHECK(env.local_rank == 1);
  CHECK(env.master_addr == "node7");
  CHECK(env.master_port == 29500);
  // torchrun's variables win over srun's.
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "1", 1);
  ::setenv("MASTER_PORT", "12345", 1);
  env = dist_env_from_environment();
  CHECK(env.rank == 1);
  CHECK(env.world == 2);
  CHECK(env.local_rank == 1);
  CHECK(env.master_port == 12345);
  ::setenv("RANK", "2", 1);
  CHECK(user_error_of_env().find("rank 2 of world size 2") != std::string::npos);
  ::setenv("RANK", "x", 1);
  CHECK(user_error_of_env().find("environment variable RANK='x'") != std::string::npos);
}

TEST_CASE("2-process data-parallel equals 1 process over 20 steps", "[slow][distributed]") {
  test::TempDir dir;
  for (const std::string normalization : {"weight_sum", "token_count", "sequence"}) {
    // batch_size 4: two examples per rank per micro-batch; 3: one rank gets two, the other one.
    for (const int batch_size : {4, 3}) {
      DYNAMIC_SECTION(normalization << ", batch_size " << batch_size) {
        const std::string one = dir.file(fmt::format("{}-{}-one", normalization, batch_size));
        const std::string two = dir.file(fmt::format("{}-{}-two", normalization, batch_size));
        const auto single = test::run_masklab(ddp_args(one, normalization, batch_size));
        REQUIRE(single.exit_code == 0);
        const auto parallel = test::run_masklab(ddp_args(two, normalization, batch_size) + " --nproc 2");
        INFO(parallel.out);
        REQUIRE(parallel.exit_code == 0);
        const Agreement agreement = compare_runs(two, one);
        WARN(fmt::format("{} batch_size {}: max loss rel diff {:.3g}, max weight abs diff {:.3g}", normalization,
                         batch_size, agreement.loss_rel, agreement.weight_abs));
        CHECK(agreement.loss_rel <= 1e-6);
        CHECK(agreement.weight_abs <= 1e-6);
        const auto m1 = metrics_of(one), m2 = metrics_of(two);
        CHECK(m2["provenance"]["world_size"] == 2);
        CHECK(m1["provenance"]["world_size"] == 1);
        // The whole step's counts and the run's order, as one process has them.
        CHECK(m2["tokens_trained"] == m1["tokens_trained"]);
        CHECK(m2["tokens_seen"] == m1["tokens_seen"]);
        CHECK(m2["same_job"] == m1["same_job"]);
      }
    }
  }
}

TEST_CASE("data-parallel: a micro-batch smaller than the ranks is one line, exit 2", "[slow][distributed]") {
  test::TempDir dir;
  const auto r = test::run_masklab(ddp_args(dir.file("run"), "weight_sum", 1) + " --nproc 2");
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("train.batch_size=1 is below the 2 ranks") != std::string::npos);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  CHECK_FALSE(std::filesystem::exists(dir.file("run")));
  const auto nested = test::run_shell("WORLD_SIZE=2 RANK=0 MASKLAB_DIST_STORE=" + dir.file("store") + " " +
                                      MASKLAB_BINARY + " " + ddp_args(dir.file("run"), "weight_sum", 4) +
                                      " --nproc 2");
  CHECK(nested.exit_code == 2);
  CHECK(nested.out.find("--nproc 2 inside rank 0 of 2") != std::string::npos);
}

TEST_CASE("data-parallel: ranks started with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT match --nproc 2",
          "[slow][distributed]") {
  test::TempDir dir;
  const std::string launched = dir.file("launched"), env = dir.file("env");
  REQUIRE(test::run_masklab(ddp_args(launched, "token_count", 4) + " --nproc 2").exit_code == 0);
  const std::string common = fmt::format("WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT={} MASKLAB_DIST_TIMEOUT=60 ",
                                         free_port());
  const std::string train = std::string(MASKLAB_BINARY) + " " + ddp_args(env, "token_count", 4);
  const auto r = test::run_shell(fmt::format("{0} RANK=1 LOCAL_RANK=1 {1} > {2}/rank1.log 2>&1 & "
                                             "{0} RANK=0 LOCAL_RANK=0 {1}; rc0=$?; wait $!; rc1=$?; "
                                             "echo \"rc $rc0 $rc1\"",
                                             common, train, dir.path()));
  INFO(r.out);
  REQUIRE(r.out.find("rc 0 0") != std::string::npos);
  const Agreement agreement = compare_runs(env, launched);
  CHECK(agreement.loss_rel <= 1e-6);
  CHECK(agreement.weight_abs <= 1e-6);
  CHECK(metrics_of(env)["provenance"]["world_size"] == 2);
  // Rank 1 printed nothing: rank 0 reports and records the run.
  CHECK(test::read_text(dir.file("rank1.log")).empty());
}

TEST_CASE("data-parallel: a rank that dies ends the launch with one line naming it, not a hang",
          "[slow][distributed]") {
  test::TempDir dir;
  const std::string pid_file = dir.file("pid");
  // Long enough to be killed while training; `timeout` turns a hang into a failure.
  const std::string args = ddp_args(dir.file("run"), "weight_sum", 4) + " --set train.steps=100000 --set train.eval_every=0";
  test::CommandResult result;
  std::thread launcher([&] {
    result = test::run_shell(fmt::format("timeout 120 sh -c 'echo $$ > {}; exec {} {} --nproc 2'", pid_file,
                                         MASKLAB_BINARY, args));
  });
  pid_t launcher_pid = 0, rank1 = 0;
  const bool training = test::wait_until(
      [&] {
        if (launcher_pid == 0 && std::filesystem::exists(pid_file)) launcher_pid = std::stoi(test::read_text(pid_file));
        if (launcher_pid != 0 && rank1 == 0) rank1 = rank_child(launcher_pid, 1);
        // Training has begun once rank 0 wrote the run's config.
        return rank1 != 0 && std::filesystem::exists(dir.file("run/config.yaml"));
      },
      std::chrono::seconds(60));
  if (training) ::kill(rank1, SIGKILL);
  else if (launcher_pid != 0) ::kill(launcher_pid, SIGKILL);
  launcher.join();
  INFO(result.out);
  REQUIRE(training);
  CHECK(result.exit_code == 1);
  CHECK(result.out.find("rank 1 of 2 was killed by signal 9") != std::string::npos);
}

TEST_CASE("data-parallel: a rank whose peer dies fails with a line naming the collective, within the timeout",
          "[slow][distributed]") {
  test::TempDir dir;
  const std::string common = fmt::format("WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT={} MASKLAB_DIST_TIMEOUT=20 ",
                                         free_port());
  const std::string train = std::string(MASKLAB_BINARY) + " " + ddp_args(dir.file("run"), "weight_sum", 4) +
                            " --set train.steps=100000 --set train.eval_every=0";
  // Rank 1 dies after a few seconds of training; rank 0 must notice, record and exit.
  const auto r = test::run_shell(fmt::format("{0} RANK=1 {1} > /dev/null 2>&1 & p1=$!; "
                                             "(while [ ! -f {2}/run/config.yaml ]; do sleep 0.1; done; sleep 2; kill -9 $p1) & "
                                             "timeout 90 env {0} RANK=0 {1}; echo \"rc $?\"",
                                             common, train, dir.path()));
  INFO(r.out);
  CHECK(r.out.find("rc 1") != std::string::npos);
  const auto metrics = metrics_of(dir.file("run"));
  CHECK(metrics["status"] == "failed");
  CHECK(metrics["error"].get<std::string>().find("rank 0: all-reduce failed") != std::string::npos);
}

TEST_CASE("data-parallel: SIGTERM to --nproc 2 stops both ranks at one step, and the rerun equals the uninterrupted run",
          "[slow][distributed][resume]") {
  test::TempDir dir;
  const std::string whole = dir.file("whole"), stopped = dir.file("stopped");
  const std::string longer = " --set train.steps=60 --nproc 2";
  REQUIRE(test::run_masklab(ddp_args(whole, "token_count", 4) + longer).exit_code == 0);

  // The signal reaches the launcher, which forwards it to both ranks; they
  // agree on the boundary, rank 0 checkpoints, every process exits 75.
  std::vector<std::string> args{"train"};
  std::istringstream words(ddp_args(stopped, "token_count", 4) + longer);
  for (std::string w; words >> w;) if (w != "train") args.push_back(w);
  const auto first = test::interrupt_masklab_when(args, dir.file("stopped.log"), [&] {
    if (!std::filesystem::exists(stopped + "/curve.jsonl")) return false;
    const std::string curve = test::read_text(stopped + "/curve.jsonl");
    return std::count(curve.begin(), curve.end(), '\n') >= 15;
  }, SIGTERM);
  INFO(first.out);
  REQUIRE(first.exit_code == kExitPreempted);
  CHECK_FALSE(std::filesystem::exists(stopped + "/metrics.json"));
  REQUIRE(std::filesystem::exists(stopped + "/checkpoint"));

  const auto second = test::run_masklab(ddp_args(stopped, "token_count", 4) + longer);
  INFO(second.out);
  REQUIRE(second.exit_code == 0);
  CHECK_THAT(second.out, Catch::Contains("resuming from step"));
  CHECK(test::read_text(stopped + "/model/model.safetensors") == test::read_text(whole + "/model/model.safetensors"));
  CHECK(test::read_text(stopped + "/curve.jsonl") == test::read_text(whole + "/curve.jsonl"));
  auto a = test::comparable_metrics(metrics_of(stopped), false), b = test::comparable_metrics(metrics_of(whole), false);
  for (auto* m : {&a, &b}) m->erase("decode_seconds"), m->erase("decode_tokens_per_second");
  CHECK(a == b);
  CHECK_FALSE(std::filesystem::exists(stopped + "/checkpoint"));
}
