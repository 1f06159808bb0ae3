#include "testing/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

extern char** environ;

namespace dist_counter {
namespace test {

namespace {

std::string NetnsPath(const std::string& name) { return "/run/netns/" + name; }

// Opens namespace `name` for setns(2). Returns the descriptor, or -1 with
// the reason in *error.
int OpenNetns(const std::string& name, std::string* error) {
  const int fd = open(NetnsPath(name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = "open " + NetnsPath(name) + ": " + std::strerror(errno);
  }
  return fd;
}

}  // namespace

std::string FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    return access(name.c_str(), X_OK) == 0 ? name : "";
  }
  const char* env_path = std::getenv("PATH");
  std::string dirs = env_path != nullptr ? env_path : "";
  dirs += ":/usr/sbin:/sbin:/usr/bin:/bin";
  size_t begin = 0;
  while (begin <= dirs.size()) {
    size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(begin, end - begin);
    begin = end + 1;
    if (dir.empty()) continue;
    const std::string path = dir + "/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

int RunCommand(const std::string& netns, const std::vector<std::string>& argv,
               std::string* output) {
  output->clear();
  if (argv.empty()) {
    *output = "RunCommand: no program";
    return -1;
  }
  const std::string program = FindProgram(argv[0]);
  if (program.empty()) {
    *output = argv[0] + ": not found";
    return 127;
  }
  int ns_fd = -1;
  if (!netns.empty()) {
    ns_fd = OpenNetns(netns, output);
    if (ns_fd < 0) return 124;
  }
  // Everything the child needs is prepared before fork().
  std::vector<std::string> args = argv;
  args[0] = program;
  std::vector<char*> child_argv;
  for (std::string& a : args) child_argv.push_back(a.data());
  child_argv.push_back(nullptr);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    *output = std::string("pipe: ") + std::strerror(errno);
    if (ns_fd >= 0) close(ns_fd);
    return -1;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    *output = std::string("fork: ") + std::strerror(errno);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    if (ns_fd >= 0) close(ns_fd);
    return -1;
  }
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET) != 0) _exit(124);
    execve(child_argv[0], child_argv.data(), environ);
    _exit(127);
  }
  close(pipe_fds[1]);
  if (ns_fd >= 0) close(ns_fd);
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
    if (n > 0) {
      output->append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(pipe_fds[0]);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) {
      *output += std::string("waitpid: ") + std::strerror(errno);
      return -1;
    }
  }
  while (!output->empty() &&
         std::isspace(static_cast<unsigned char>(output->back()))) {
    output->pop_back();
  }
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  *output += "killed by signal " + std::to_string(WTERMSIG(wstatus));
  return -1;
}

bool EnterNetns(const std::string& name, std::string* error) {
  const int fd = OpenNetns(name, error);
  if (fd < 0) return false;
  const bool ok = setns(fd, CLONE_NEWNET) == 0;
  if (!ok) *error = "setns " + NetnsPath(name) + ": " + std::strerror(errno);
  close(fd);
  return ok;
}

bool RunInNetns(const std::string& name, const std::function<void()>& fn,
                std::string* error) {
  bool entered = false;
  std::thread thread([&] {
    entered = EnterNetns(name, error);
    if (entered) fn();
  });
  thread.join();
  return entered;
}

}  // namespace test
}  // namespace dist_counter
