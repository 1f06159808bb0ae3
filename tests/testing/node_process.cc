#include "testing/node_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "testing/http_client.h"
#include "testing/netns.h"

extern char** environ;

namespace dist_counter {
namespace test {

namespace {

using Clock = std::chrono::steady_clock;

int StatusFromWait(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

void AppendToLog(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && base[0] != '\0' ? base : "/tmp") +
      "/dc_test_XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    std::abort();  // tests cannot run without a scratch directory
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Sub(const std::string& name) const {
  return path_ + "/" + name;
}

uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

uint16_t StablePort() {
  static std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const uint16_t port = static_cast<uint16_t>(20000 + rng() % 12000);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const bool free =
        bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (free) return port;
  }
  return FreePort();
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

NodeProcess::NodeProcess(const NodeProcessOptions& options)
    : options_(options) {
  if (options_.port == 0) options_.port = FreePort();
  if (options_.binary.empty()) options_.binary = DIST_COUNTER_BINARY;
  std::string dir = options_.data_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  log_path_ = dir + ".log";
}

NodeProcess::~NodeProcess() { Kill9(); }

bool NodeProcess::running() {
  if (pid_ <= 0) return false;
  return !Reap(0);
}

bool NodeProcess::Reap(int timeout_ms) {
  if (pid_ <= 0) return true;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int wstatus = 0;
    const pid_t r = waitpid(pid_, &wstatus, WNOHANG);
    if (r == pid_) {
      exit_status_ = StatusFromWait(wstatus);
      pid_ = -1;
      return true;
    }
    if (r < 0 && errno != EINTR) {  // not our child any more
      pid_ = -1;
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool NodeProcess::Start() {
  if (running()) return false;
  std::vector<std::string> args = {options_.binary, "--bind=" + options_.host,
                                   "--port=" + std::to_string(options_.port),
                                   "--data_dir=" + options_.data_dir};
  args.insert(args.end(), options_.flags.begin(), options_.flags.end());

  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    if (name == "CHALLENGE_ID" || name == "ACTORS") continue;
    if (options_.env.count(name) != 0) continue;
    env.push_back(entry);
  }
  for (const auto& [name, value] : options_.env)
    env.push_back(name + "=" + value);

  // Everything the child needs is prepared before fork().
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  std::string command;
  for (const std::string& a : args) command += a + " ";
  AppendToLog(log_path_, "=== starting: " + command);

  int netns_fd = -1;
  if (!options_.netns.empty()) {
    const std::string netns_path = "/run/netns/" + options_.netns;
    netns_fd = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (netns_fd < 0) {
      AppendToLog(log_path_, netns_path + ": " + std::strerror(errno));
      return false;
    }
  }
  const int log_fd =
      open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    AppendToLog(log_path_, std::string("fork: ") + std::strerror(errno));
    if (log_fd >= 0) close(log_fd);
    if (null_fd >= 0) close(null_fd);
    if (netns_fd >= 0) close(netns_fd);
    return false;
  }
  if (pid == 0) {
    // The child dies with the test process.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    if (log_fd >= 0) {
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
    }
    // Signals blocked or ignored by the test runner must not leak in.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    if (options_.max_open_files != 0) {
      const rlimit limit{options_.max_open_files, options_.max_open_files};
      if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(125);
    }
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) _exit(124);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  if (log_fd >= 0) close(log_fd);
  if (null_fd >= 0) close(null_fd);
  if (netns_fd >= 0) close(netns_fd);
  pid_ = pid;
  exit_status_ = -1;
  return true;
}

bool NodeProcess::WaitReady(int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string url = Url("/ping");
  while (Clock::now() < deadline) {
    if (!running()) return false;
    HttpResponse r;
    auto ping = [&] { r = HttpRequest("GET", url, "", {}, 1000); };
    std::string error;
    if (options_.netns.empty()) {
      ping();
    } else if (!RunInNetns(options_.netns, ping, &error)) {
      AppendToLog(log_path_, "WaitReady: " + error);
      return false;
    }
    if (r.ok() && r.status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool NodeProcess::StartAndWait(int timeout_ms) {
  return Start() && WaitReady(timeout_ms);
}

int NodeProcess::Stop(int timeout_ms) {
  if (pid_ <= 0) return exit_status_;
  kill(pid_, SIGCONT);
  kill(pid_, SIGTERM);
  if (Reap(timeout_ms)) return exit_status_;
  Kill9();
  return -1;
}

void NodeProcess::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  kill(pid_, SIGCONT);
  Reap(60000);
}

int NodeProcess::Wait(int timeout_ms) {
  if (pid_ <= 0) return exit_status_;
  return Reap(timeout_ms) ? exit_status_ : -1;
}

namespace {

// The state letter of process `pid` in /proc/<pid>/stat ('T' when stopped),
// or '?' if it cannot be read.
char ProcessState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // "pid (comm) S ...": the command may hold spaces and parentheses.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return '?';
  return stat[close + 2];
}

}  // namespace

void NodeProcess::Pause() {
  if (pid_ <= 0) return;
  kill(pid_, SIGSTOP);
  // SIGSTOP is delivered asynchronously: return once the process is stopped,
  // so that a test never sees it answer "while paused".
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (ProcessState(pid_) != 'T' &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void NodeProcess::Resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

bool NodeProcess::Restart(int timeout_ms) {
  if (running()) Stop(timeout_ms);
  return StartAndWait(timeout_ms);
}

std::string NodeProcess::Url(const std::string& path) const {
  return "http://" + Address() + path;
}

std::string NodeProcess::Address() const {
  return options_.host + ":" + std::to_string(options_.port);
}

}  // namespace test
}  // namespace dist_counter
