// Slurm job arrays: the scripts `sweep --slurm` writes, their settings and
// checks, the task's signal forwarding and requeue, and whole sweeps run
// through a real slurmctld and slurmd started on this machine.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/core/run_record.hpp"
#include "harness/core/text.hpp"
#include "harness/sweep/slurm.hpp"
#include "harness/sweep/sweep.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
namespace fs = std::filesystem;

namespace {

// A model that trains in about a second.
const std::string kTinyBase =
    "base:\n"
    "  model: {n_layers: 1, d_model: 32, n_heads: 2, max_seq_len: 96}\n"
    "  train: {steps: 3, eval_every: 0, threads: 1, batch_size: 4}\n"
    "  data: {tasks: [count], train_size: 20, eval_size: 4, train_eval_size: 4}\n"
    "  eval: {samples: 0}\n";
// 2 strategies x 3 seeds.
const std::string kTinySpec = kTinyBase + "grid:\n  strategy: [full, completion_only]\n  seed: [1, 2, 3]\n";

// The #SBATCH options of a script in order, as sbatch reads them: "--array=0-2%2".
std::vector<std::string> sbatch_options(const std::string& script) {
  std::vector<std::string> out;
  std::istringstream in(script);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("#SBATCH ", 0) == 0) out.push_back(trim(line.substr(8)));
  }
  return out;
}

// The value of `--name=value` among the options; "" when absent, "<flag>" for a bare flag.
std::string option_value(const std::vector<std::string>& options, const std::string& name) {
  for (const auto& o : options) {
    if (o == name) return "<flag>";
    if (o.rfind(name + "=", 0) == 0) return o.substr(name.size() + 1);
  }
  return "";
}

void make_executable(const std::string& path, const std::string& text) {
  test::write_text(path, text);
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
}

// A stand-in for masklab that writes its arguments, one a line, and $FOO (the setup line's), to `record`.
std::string recording_binary(const test::TempDir& dir, const std::string& record) {
  const std::string path = dir.file("fake-masklab");
  make_executable(path, "#!/bin/bash\nprintf '%s\\n' \"$@\" > " + record + "\necho \"FOO=${FOO:-}\" >> " + record +
                            "\nexit 0\n");
  return path;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

SlurmJob job_for(const SweepSpec& spec, const std::string& binary, const std::string& out) {
  SlurmJob job;
  job.name = spec.name;
  job.masklab_binary = binary;
  job.spec_path = fs::absolute(spec.path).string();
  job.out_dir = out;
  job.run_count = static_cast<int>(spec.runs.size());
  return job;
}

}  // namespace

TEST_CASE("Slurm time limits convert to seconds in each of Slurm's forms", "[fast][slurm]") {
  CHECK(slurm_time_seconds("30", "t") == 30 * 60);
  CHECK(slurm_time_seconds("30:15", "t") == 30 * 60 + 15);
  CHECK(slurm_time_seconds("4:00:00", "t") == 4 * 3600);
  CHECK(slurm_time_seconds("1-2", "t") == 86400 + 2 * 3600);
  CHECK(slurm_time_seconds("1-2:03", "t") == 86400 + 2 * 3600 + 3 * 60);
  CHECK(slurm_time_seconds("2-00:00:05", "t") == 2 * 86400 + 5);
  CHECK(slurm_time_seconds("UNLIMITED", "t") == -1);
  CHECK_THAT(test::user_error_of([] { slurm_time_seconds("soon", "--time"); }), Catch::StartsWith("--time 'soon'"));
  CHECK_THAT(test::user_error_of([] { slurm_time_seconds("0", "--time"); }), Catch::Contains("longer than 0"));
}

TEST_CASE("array.sbatch: each slurm setting lands on its #SBATCH line and task K runs shard K+1/N",
          "[fast][slurm]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), kTinySpec +
      "slurm:\n  partition: gpu\n  time: \"1:00:00\"\n  cpus_per_task: 4\n  gpus_per_task: 2\n  max_parallel: 2\n"
      "  signal_grace: 300\n  sbatch: [\"--account=abc\", \"#SBATCH --qos=low\"]\n  setup: export FOO=bar\n");
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  SlurmJob job = job_for(spec, recording_binary(dir, dir.file("args.txt")), dir.file("out"));
  job.sweep_args = {"--jobs", "1"};
  const std::string script = array_script(job, spec.slurm);
  const auto options = sbatch_options(script);
  CHECK(option_value(options, "--array") == "0-5%2");  // 6 runs, one task each, 2 at once
  CHECK(option_value(options, "--partition") == "gpu");
  CHECK(option_value(options, "--time") == "1:00:00");
  CHECK(option_value(options, "--cpus-per-task") == "4");
  CHECK(option_value(options, "--gpus-per-task") == "2");
  CHECK(option_value(options, "--account") == "abc");
  CHECK(option_value(options, "--qos") == "low");
  CHECK(option_value(options, "--requeue") == "<flag>");
  CHECK(option_value(options, "--signal") == "B:USR1@300");
  CHECK(option_value(options, "--output") == dir.file("out") + "/slurm/logs/array-%A_%a.out");
  CHECK(option_value(options, "--open-mode") == "append");  // a requeued task adds to its log
  CHECK(option_value(options, "--job-name") == "masklab-s");
  test::write_text(dir.file("array.sbatch"), script);
  CHECK(test::run_shell("bash -n " + dir.file("array.sbatch")).exit_code == 0);

  // Task 4 of 6 runs shard 5/6 with absolute paths; 2 GPUs become two devices.
  const auto ran = test::run_shell("env SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_COUNT=6 SLURM_ARRAY_JOB_ID=99 "
                                   "bash " + dir.file("array.sbatch"));
  INFO(ran.out);
  CHECK(ran.exit_code == 0);
  CHECK(lines_of(test::read_text(dir.file("args.txt"))) ==
        std::vector<std::string>{"sweep", fs::absolute(dir.file("s.yaml")).string(), "--out", dir.file("out"),
                                 "--shard", "5/6", "--jobs", "1", "--devices", "cuda:0,cuda:1", "FOO=bar"});

  // The report job: the shared lines, no array, no GPUs; it runs `masklab report DIR`.
  const std::string report = report_script(job, spec.slurm);
  const auto report_options = sbatch_options(report);
  CHECK(option_value(report_options, "--partition") == "gpu");
  CHECK(option_value(report_options, "--account") == "abc");
  CHECK(option_value(report_options, "--array").empty());
  CHECK(option_value(report_options, "--gpus-per-task").empty());
  CHECK(option_value(report_options, "--output") == dir.file("out") + "/slurm/logs/report-%j.out");
  test::write_text(dir.file("report.sbatch"), report);
  REQUIRE(test::run_shell("bash " + dir.file("report.sbatch")).exit_code == 0);
  CHECK(lines_of(test::read_text(dir.file("args.txt"))) ==
        std::vector<std::string>{"report", dir.file("out"), "FOO=bar"});
}

TEST_CASE("sweep --slurm: flags win over the spec's slurm: block, and --submit chains the report afterany",
          "[fast][slurm]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), kTinySpec + "slurm:\n  partition: cpu\n  time: \"30\"\n"
                                                                 "  max_parallel: 4\n");
  const std::string out = dir.file("out");
  const auto written = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out +
                                         " --slurm --partition long --max-parallel 2 --array-tasks 3 --jobs 2");
  INFO(written.out);
  REQUIRE(written.exit_code == 0);
  CHECK_THAT(written.out, Catch::Contains("sbatch --parsable '" + out + "/slurm/array.sbatch'"));
  CHECK_THAT(written.out, Catch::Contains("--dependency=afterany:"));
  const auto options = sbatch_options(test::read_text(out + "/slurm/array.sbatch"));
  CHECK(option_value(options, "--partition") == "long");  // the flag
  CHECK(option_value(options, "--time") == "30");         // the spec
  CHECK(option_value(options, "--array") == "0-2%2");
  CHECK(option_value(options, "--signal") == "B:USR1@120");  // the default grace
  CHECK(fs::is_directory(out + "/slurm/logs"));
  CHECK_FALSE(fs::exists(out + "/runs"));  // nothing ran
  CHECK_THAT(test::read_text(out + "/slurm/array.sbatch"),
             Catch::Contains("'" + std::string(MASKLAB_BINARY) + "' sweep '" + dir.file("s.yaml") + "' --out '" + out +
                             "' --shard \"$shard\" '--jobs' '2' &"));

  // --submit: the array first, then the report after it, whatever its tasks' fate.
  fs::create_directories(dir.file("bin"));
  make_executable(dir.file("bin/sbatch"),
                  "#!/bin/bash\necho \"$*\" >> " + dir.file("calls.txt") +
                      "\nn=$(wc -l < " + dir.file("calls.txt") + ")\necho \"$((40 + n));cluster\"\n");
  const auto submitted = test::run_shell("PATH=" + dir.file("bin") + ":$PATH " + std::string(MASKLAB_BINARY) +
                                         " sweep " + dir.file("s.yaml") + " --out " + out + " --slurm --submit");
  INFO(submitted.out);
  REQUIRE(submitted.exit_code == 0);
  CHECK_THAT(submitted.out, Catch::Contains("submitted array job 41 and report job 42"));
  CHECK(lines_of(test::read_text(dir.file("calls.txt"))) ==
        std::vector<std::string>{"--parsable " + out + "/slurm/array.sbatch",
                                 "--parsable --dependency=afterany:41 " + out + "/slurm/report.sbatch"});
}

TEST_CASE("bad slurm settings exit 2 with one line naming the key or flag, and write nothing", "[fast][slurm][errors]") {
  test::TempDir dir;
  const std::string out = dir.file("out");
  const std::vector<std::pair<std::string, std::string>> bad_flags = {
      {"--slurm --time 1:xx", "--time"},
      {"--slurm --max-parallel 0", "--max-parallel"},
      {"--slurm --cpus-per-task 0", "--cpus-per-task"},
      {"--slurm --gpus-per-task -1", "--gpus-per-task"},
      {"--slurm --array-tasks 7", "--array-tasks"},  // the spec has 6 runs
      {"--slurm --partition 'a b'", "--partition"},
      {"--slurm --time 2 --signal-grace 120", "--signal-grace"},
      {"--slurm --shard 1/2", "--shard"},
      {"--submit", "--submit"},
      {"--time 10", "--time"},
      {"--devices cpu,gpu", "--devices"},
      {"--devices cpu --jobs 2", "--devices"}};
  test::write_text(dir.file("s.yaml"), kTinySpec);
  for (const auto& [flags, named] : bad_flags) {
    const auto r = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out + " " + flags);
    INFO(flags << ": " << r.out);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.out, Catch::Contains(named));
    CHECK(trim(r.out).find('\n') == std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
  const std::vector<std::pair<std::string, std::string>> bad_keys = {
      {"  time: soon\n", "s.yaml:10: slurm.time"},
      {"  max_parallel: 0\n", "s.yaml:10: slurm.max_parallel"},
      {"  cpus_per_task: two\n", "s.yaml:10: slurm.cpus_per_task"},
      {"  sbatch: [\"account=abc\"]\n", "s.yaml:10: slurm.sbatch"},
      {"  sbatch: --account=abc\n", "s.yaml:10: slurm.sbatch"},
      {"  partition: \"a;b\"\n", "s.yaml:10: slurm.partition"},
      {"  queue: fast\n", "s.yaml:10: unknown slurm key 'queue'"}};
  for (const auto& [block, named] : bad_keys) {
    test::write_text(dir.file("s.yaml"), kTinySpec + "slurm:\n" + block);
    const auto r = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out + " --slurm");
    INFO(block << ": " << r.out);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.out, Catch::Contains(named));
    CHECK(trim(r.out).find('\n') == std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
}

TEST_CASE("an array task forwards USR1 to its sweep and requeues itself when the sweep exits 75",
          "[fast][slurm][preempt]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), kTinySpec);
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  // A sweep that stands by until it gets USR1, then exits as a preempted sweep does (or with `code`).
  auto fake_sweep = [&](int code) {
    make_executable(dir.file("fake-masklab"),
                    "#!/bin/bash\ntrap 'echo usr1 >> " + dir.file("sweep.log") + "; exit " + std::to_string(code) +
                        "' USR1\ntouch " + dir.file("ready") + "\nwhile :; do sleep 0.05; done\n");
  };
  fs::create_directories(dir.file("bin"));
  make_executable(dir.file("bin/scontrol"), "#!/bin/bash\necho \"$*\" >> " + dir.file("scontrol.txt") + "\n");
  const SlurmJob job = job_for(spec, dir.file("fake-masklab"), dir.file("out"));
  test::write_text(dir.file("array.sbatch"), array_script(job, SlurmSettings{}));
  // The task's shell in the background; USR1 to it (as Slurm's --signal=B: does) once the sweep stands by.
  const std::string task = "cd " + dir.path() + " && export PATH=" + dir.file("bin") +
                           ":$PATH SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_COUNT=6 SLURM_ARRAY_JOB_ID=99; "
                           "rm -f ready; bash array.sbatch & pid=$!; "
                           "for i in $(seq 400); do [ -e ready ] && break; sleep 0.05; done; "
                           "kill -USR1 $pid; wait $pid; echo \"exit=$?\"";
  fake_sweep(75);
  const auto preempted = test::run_shell("timeout 60 bash -c " + shell_quote(task));
  INFO(preempted.out);
  CHECK_THAT(preempted.out, Catch::Contains("exit=75"));
  CHECK(test::read_text(dir.file("sweep.log")) == "usr1\n");          // the signal reached the sweep
  CHECK(test::read_text(dir.file("scontrol.txt")) == "requeue 99_2\n");  // and the task asked to run again

  fs::remove(dir.file("scontrol.txt"));
  fake_sweep(1);  // a sweep with a failed run: recorded, not requeued
  const auto failed = test::run_shell("timeout 60 bash -c " + shell_quote(task));
  INFO(failed.out);
  CHECK_THAT(failed.out, Catch::Contains("exit=1"));
  CHECK_FALSE(fs::exists(dir.file("scontrol.txt")));
}


namespace {

// A TCP port nothing listens on now, from the kernel (bind to port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof addr;
  const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size) == 0;
  if (fd >= 0) ::close(fd);
  return ok ? ntohs(addr.sin_port) : 0;
}

std::string short_hostname() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  const std::string host = name;
  return host.substr(0, host.find('.'));
}

// A daemon binary on PATH or in /usr/sbin (Debian's place for them); "" when missing.
std::string find_daemon(const std::string& name) {
  const auto found = test::run_shell("command -v " + name + " || command -v /usr/sbin/" + name);
  return found.exit_code == 0 ? trim(found.out) : "";
}

// A one-node Slurm cluster of this machine, all in a temp dir: munged with
// its own key and socket, slurmctld and slurmd on free ports, SLURM_CONF set
// for every slurm command this process and its children run. The destructor
// cancels every job and stops every daemon it started, however the test ends.
class LocalSlurm {
 public:
  // Why this machine cannot start a controller at all; "" when it can.
  static std::string unavailable() {
    if (find_daemon("slurmctld").empty() || find_daemon("slurmd").empty() || find_daemon("sbatch").empty()) {
      return "no slurmctld/slurmd/sbatch (Debian slurm-wlm: scripts/install-deps.sh --test installs it)";
    }
    if (find_daemon("munged").empty()) return "no munged (Debian munge: scripts/install-deps.sh --test installs it)";
    if (::geteuid() != 0) return "not root: munged and slurmd need root here";
    return "";
  }

  // Starts the daemons and waits for the node to be idle; a daemon that does not start fails the test.
  void start() {
    const std::string munged = find_daemon("munged"), slurmctld = find_daemon("slurmctld"),
                      slurmd = find_daemon("slurmd");
    write_key();
    const auto m = test::run_shell(munged + " --force --socket=" + dir_.file("munge.sock") + " --key-file=" +
                                   dir_.file("munge.key") + " --pid-file=" + dir_.file("munged.pid") + " --log-file=" +
                                   dir_.file("munged.log") + " --seed-file=" + dir_.file("munge.seed"));
    if (m.exit_code != 0) FAIL("munged did not start: " + trim(m.out));
    fs::create_directories(dir_.file("state"));
    fs::create_directories(dir_.file("spool"));
    test::write_text(dir_.file("slurm.conf"), slurm_conf());
    ::setenv("SLURM_CONF", dir_.file("slurm.conf").c_str(), 1);
    env_set_ = true;
    for (const std::string& daemon : {slurmctld + " -i", slurmd}) {
      const auto r = test::run_shell(daemon);
      if (r.exit_code != 0) FAIL(daemon + " did not start: " + trim(r.out));
    }
    if (!test::wait_until([] { return polled("sinfo -h -o %t") == "idle"; }, std::chrono::seconds(60))) {
      FAIL("the node never came up idle: " + polled("sinfo -h -o %t") + "; " + dir_.file("slurmctld.log"));
    }
  }

  ~LocalSlurm() {
    if (env_set_) {
      test::run_shell("scancel --user=root");
      test::wait_until([] { return polled("squeue -h").empty(); }, std::chrono::seconds(20));
    }
    for (const char* name : {"slurmd.pid", "slurmctld.pid", "munged.pid"}) stop(dir_.file(name));
    if (env_set_) ::unsetenv("SLURM_CONF");
  }

  std::string file(const std::string& name) const { return dir_.file(name); }

  // A slurm command's output, trimmed; paced so that polling does not load the machine.
  static std::string polled(const std::string& command) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return trim(test::run_shell(command).out);
  }

 private:
  void write_key() {
    std::random_device random;
    std::string key(1024, '\0');
    for (auto& c : key) c = static_cast<char>(random() & 0xff);
    test::write_text(dir_.file("munge.key"), key);
    fs::permissions(dir_.file("munge.key"), fs::perms::owner_read | fs::perms::owner_write);
  }

  std::string slurm_conf() const {
    const std::string host = short_hostname();
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    return fmt::format(
        "ClusterName=masklabtest\nSlurmctldHost={host}(127.0.0.1)\nSlurmctldPort={}\nSlurmdPort={}\n"
        "AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={dir}/munge.sock,cred_expire=10\n"
        "SlurmUser=root\nSlurmdUser=root\nStateSaveLocation={dir}/state\nSlurmdSpoolDir={dir}/spool\n"
        "SlurmctldPidFile={dir}/slurmctld.pid\nSlurmdPidFile={dir}/slurmd.pid\n"
        "SlurmctldLogFile={dir}/slurmctld.log\nSlurmdLogFile={dir}/slurmd.log\n"
        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\n"
        "SelectTypeParameters=CR_CPU\nSchedulerType=sched/backfill\nAccountingStorageType=accounting_storage/none\n"
        "JobAcctGatherType=jobacct_gather/none\nJobCompType=jobcomp/none\nMpiDefault=none\nReturnToService=2\n"
        "NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n"
        "PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
        free_port(), free_port(), fmt::arg("host", host), fmt::arg("dir", dir_.path()), fmt::arg("cpus", cpus));
  }

  // Stops the daemon whose pid file this is: TERM, then KILL if it lingers.
  static void stop(const std::string& pid_file) {
    std::string text;
    std::getline(std::ifstream(pid_file), text);
    const int pid = std::atoi(text.c_str());
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    if (!test::wait_until([&] { return gone(pid); }, std::chrono::seconds(15))) ::kill(pid, SIGKILL);
  }

  // A daemon's parent is init, which may reap it late: a zombie has stopped too.
  static bool gone(int pid) {
    if (::kill(pid, 0) != 0) return true;
    std::string stat;
    std::getline(std::ifstream("/proc/" + std::to_string(pid) + "/stat"), stat);
    const size_t paren = stat.rfind(')');
    return paren == std::string::npos || stat.substr(paren + 2, 1) == "Z";
  }

  test::TempDir dir_;
  bool env_set_ = false;
};

// The JobState of every job (or array task) `id` names, one per line.
std::vector<std::string> job_states(const std::string& id) {
  std::vector<std::string> states;
  const std::string text = LocalSlurm::polled("scontrol -o show job " + id);
  static const std::regex state(R"(JobState=(\S+))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), state); it != std::sregex_iterator(); ++it) {
    states.push_back((*it)[1]);
  }
  return states;
}

bool ended(const std::string& state) {
  return state != "PENDING" && state != "RUNNING" && state != "CONFIGURING" && state != "COMPLETING" &&
         state != "REQUEUED" && state != "REQUEUE_HOLD" && state != "SUSPENDED";
}

// Waits (with a deadline) for `report_id` to end; by then every array task has (afterany).
bool wait_for_report(const std::string& report_id) {
  return test::wait_until(
      [&] {
        const auto states = job_states(report_id);
        return states.size() == 1 && ended(states[0]);
      },
      std::chrono::seconds(240));
}

std::string submitted_id(const std::string& out, const std::string& what) {
  std::smatch m;
  const std::regex ids(R"(submitted array job (\d+) and report job (\d+))");
  return std::regex_search(out, m, ids) ? m[what == "array" ? 1 : 2].str() : "";
}

// A CSV the report wrote, as rows of cells (no quoted commas in these reports).
std::vector<std::vector<std::string>> csv_rows(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& line : lines_of(test::read_text(path))) rows.push_back(split(line, ','));
  return rows;
}

bool is_timing(const std::vector<std::string>& row) {
  for (const auto& cell : row) {
    for (const char* name : {"wall_seconds", "tokens_per_second", "decode_seconds", "decode_tokens_per_second",
                             "train_seconds"}) {
      if (cell == name) return true;
    }
  }
  return false;
}

// Two report CSVs hold the same table, numbers to 1e-12; timing rows differ between machines and are left out.
void check_same_csv(const std::string& a, const std::string& b) {
  const auto x = csv_rows(a), y = csv_rows(b);
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (is_timing(x[i])) continue;
    REQUIRE(x[i].size() == y[i].size());
    for (size_t j = 0; j < x[i].size(); ++j) {
      INFO(a << " row " << i << " column " << j << ": " << x[i][j] << " vs " << y[i][j]);
      char* end_x = nullptr;
      char* end_y = nullptr;
      const double u = std::strtod(x[i][j].c_str(), &end_x), v = std::strtod(y[i][j].c_str(), &end_y);
      if (!x[i][j].empty() && *end_x == '\0' && !y[i][j].empty() && *end_y == '\0' && !std::isnan(u)) {
        CHECK(std::abs(u - v) <= 1e-12 * std::max(1.0, std::abs(u)));
      } else {
        CHECK(x[i][j] == y[i][j]);
      }
    }
  }
}

nlohmann::json run_numbers(const std::string& path) {
  nlohmann::json m = test::comparable_metrics(read_json_file(path), false);
  for (const char* key : {"decode_seconds", "decode_tokens_per_second"}) m.erase(key);
  return m;
}

// False, with one WARN line saying why, where this machine cannot start a controller.
bool can_start_slurm() {
  const std::string why = LocalSlurm::unavailable();
  if (!why.empty()) WARN("skipped: this machine cannot start a Slurm controller: " + why);
  return why.empty();
}

}  // namespace

TEST_CASE("a sweep submitted as a Slurm array of 3 tasks reports what the same sweep run locally reports",
          "[slow][slurm]") {
  if (!can_start_slurm()) return;
  LocalSlurm slurm;
  slurm.start();
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), kTinySpec);
  const std::string local = dir.file("local"), cluster = dir.file("cluster");
  const auto here = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + local);
  INFO(here.out);
  REQUIRE(here.exit_code == 0);
  REQUIRE(test::run_masklab("report " + local).exit_code == 0);

  const auto submitted = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + cluster +
                                           " --slurm --submit --array-tasks 3 --max-parallel 3");
  INFO(submitted.out);
  REQUIRE(submitted.exit_code == 0);
  const std::string array_id = submitted_id(submitted.out, "array"), report_id = submitted_id(submitted.out, "report");
  REQUIRE(!array_id.empty());
  REQUIRE(wait_for_report(report_id));
  INFO(test::run_shell("cat " + cluster + "/slurm/logs/*").out);
  CHECK(job_states(array_id) == std::vector<std::string>{"COMPLETED", "COMPLETED", "COMPLETED"});
  CHECK(job_states(report_id) == std::vector<std::string>{"COMPLETED"});

  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  for (const auto& r : spec.runs) {
    INFO(r.id);
    CHECK(run_numbers(cluster + "/runs/" + r.id + "/metrics.json") == run_numbers(local + "/runs/" + r.id + "/metrics.json"));
  }
  check_same_csv(local + "/summary.csv", cluster + "/summary.csv");
  check_same_csv(local + "/comparisons.csv", cluster + "/comparisons.csv");
  // Each task ran its own shard: 2 of the 6 runs.
  for (int task = 0; task < 3; ++task) {
    CHECK_THAT(test::read_text(cluster + "/slurm/logs/array-" + array_id + "_" + std::to_string(task) + ".out"),
               Catch::Contains("sweep s: 2 runs, 0 done, 2 to run"));
  }
}

TEST_CASE("a preempted array task (its sweep exits 75) is requeued and its rerun skips the finished runs",
          "[slow][slurm][preempt]") {
  if (!can_start_slurm()) return;
  LocalSlurm slurm;
  slurm.start();
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), kTinyBase + "grid:\n  strategy: [full, completion_only]\n");
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  const std::string out = dir.file("out");
  // One task of 2 runs. Its first attempt runs the real sweep, then leaves
  // the second run without its record and exits 75, as a sweep preempted
  // during that run does; the requeued attempt is the real sweep alone.
  const std::string unfinished = out + "/runs/" + spec.runs[1].id;
  make_executable(dir.file("preempted-masklab"),
                  "#!/bin/bash\nif [ \"$1\" = sweep ] && [ \"${SLURM_RESTART_COUNT:-0}\" = 0 ]; then\n"
                  "  '" + std::string(MASKLAB_BINARY) + "' \"$@\" || exit $?\n"
                  "  rm " + unfinished + "/metrics.json\n  exit 75\nfi\n"
                  "exec '" + std::string(MASKLAB_BINARY) + "' \"$@\"\n");
  SlurmJob job = job_for(spec, dir.file("preempted-masklab"), out);
  SlurmSettings settings;
  settings.array_tasks = 1;
  const auto [array_path, report_path] = write_slurm_scripts(job, settings);
  const auto [array_id, report_id] = submit_slurm_scripts(array_path, report_path);
  // A requeued task starts again after the credential lifetime (cred_expire=10 here, 120 s by default).
  REQUIRE(wait_for_report(report_id));
  const std::string log = test::read_text(out + "/slurm/logs/array-" + array_id + "_0.out");
  INFO(log);
  CHECK(job_states(array_id) == std::vector<std::string>{"COMPLETED"});
  CHECK_THAT(LocalSlurm::polled("scontrol -o show job " + array_id), Catch::Contains("Restarts=1"));
  CHECK_THAT(log, Catch::Contains("exited 75 (preempted): requeueing " + array_id + "_0"));
  CHECK_THAT(log, Catch::Contains("sweep s: 2 runs, 0 done, 2 to run"));  // the first attempt
  CHECK_THAT(log, Catch::Contains("sweep s: 2 runs, 1 done, 1 to run"));  // the rerun: the finished run skipped
  for (const auto& r : spec.runs) CHECK(read_json_file(out + "/runs/" + r.id + "/metrics.json")["status"] == "ok");
  CHECK(job_states(report_id) == std::vector<std::string>{"COMPLETED"});
  CHECK(fs::exists(out + "/summary.csv"));
}
