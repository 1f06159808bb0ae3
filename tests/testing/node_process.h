// Test helpers that run the real `dist_counter` binary as a child process:
// TempDir (a directory removed with its contents), FreePort() and
// NodeProcess (start, wait until it answers, stop, kill, pause, restart).
//
// The binary's path comes from the compile definition DIST_COUNTER_BINARY
// (set by the dc_testing CMake target). A NodeProcess always passes
// --bind=<host> --port=<port> --data_dir=<data_dir> (host 127.0.0.1 unless
// set), then the extra flags; its stdout and stderr are appended to
// "<data_dir>.log" next to the data directory. The child gets the parent's
// environment minus CHALLENGE_ID and ACTORS, plus NodeProcessOptions::env. With
// NodeProcessOptions::netns the child runs in that network namespace, and
// WaitReady() asks it from a thread inside the same namespace.
//
// Not thread-safe: use a NodeProcess from one thread.

#ifndef DIST_COUNTER_TESTS_TESTING_NODE_PROCESS_H_
#define DIST_COUNTER_TESTS_TESTING_NODE_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dist_counter {
namespace test {

// A fresh directory under $TMPDIR (or /tmp), removed recursively by the
// destructor.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Sub(const std::string& name) const;

 private:
  std::string path_;
};

// A loopback port that was free a moment ago: binds 127.0.0.1:0, reads the
// port and closes the socket. Returns 0 on failure.
uint16_t FreePort();

// A loopback port below the ephemeral range (where FreePort() and every
// outgoing connection take theirs), free a moment ago. Test suites running
// at the same time then do not grab it, and a node stopped (or killed) and
// started again on it gets it back. Falls back to FreePort(). Not
// thread-safe (one random sequence per process).
uint16_t StablePort();

// The whole content of file `path` ("" if it cannot be read).
std::string ReadFileOrEmpty(const std::string& path);

struct NodeProcessOptions {
  std::string data_dir;            // required
  uint16_t port = 0;               // 0: FreePort() at construction
  std::vector<std::string> flags;  // extra flags, e.g. "--challenge_id=1"
  std::map<std::string, std::string> env;  // extra environment variables
  std::string binary;                      // "": DIST_COUNTER_BINARY
  // If not 0, the child's soft and hard RLIMIT_NOFILE, set before exec (a
  // failure shows as the child exiting with status 125).
  uint64_t max_open_files = 0;
  // The address to bind and to reach the node at (Url(), Address()).
  std::string host = "127.0.0.1";
  // If not empty, the child joins network namespace /run/netns/<netns>
  // before exec (see testing/netns.h; a failure shows as the child exiting
  // with status 124). `host` is then an address of that namespace.
  std::string netns;
};

class NodeProcess {
 public:
  explicit NodeProcess(const NodeProcessOptions& options);
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;
  // Kills a live child with SIGKILL (after SIGCONT) and reaps it.
  ~NodeProcess();

  // Forks and execs the binary. Returns false (with errno's text in the
  // log) if fork failed or a child is already running. A failed exec shows
  // as the child exiting with status 127.
  bool Start();

  // Polls GET /ping until it answers 200 or `timeout_ms` passes. Returns
  // false on timeout or if the child exited meanwhile (see exit_status()).
  // With a netns, the pings are sent from inside it.
  bool WaitReady(int timeout_ms = 30000);

  // Start() then WaitReady().
  bool StartAndWait(int timeout_ms = 30000);

  // Sends SIGTERM (resuming a paused child first) and waits up to
  // `timeout_ms` for it to exit. Returns its exit status (see
  // exit_status()), or -1 if it did not exit in time (it is then killed).
  int Stop(int timeout_ms = 30000);

  // Sends SIGKILL and reaps the child. No-op if none is running.
  void Kill9();

  // Waits up to `timeout_ms` for the child to exit by itself. Returns its
  // exit status, or -1 if it is still running.
  int Wait(int timeout_ms = 30000);

  // SIGSTOP / SIGCONT.
  void Pause();
  void Resume();

  // Stop()s a running child, then Start()s and WaitReady()s again with the
  // same options (same port and data dir). Returns WaitReady's result.
  bool Restart(int timeout_ms = 30000);

  // True if a child was started and has not been reaped.
  bool running();

  pid_t pid() const { return pid_; }
  uint16_t port() const { return options_.port; }
  const std::string& data_dir() const { return options_.data_dir; }
  // "http://<host>:<port>" + path.
  std::string Url(const std::string& path) const;
  // "<host>:<port>", as a peer address for /config.
  std::string Address() const;
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const { return ReadFileOrEmpty(log_path_); }

  // The last reaped child's status: its exit code if it exited, 128 +
  // signal number if a signal killed it, -1 if none was reaped yet.
  int exit_status() const { return exit_status_; }

 private:
  // Reaps the child if it exited; with `block`, waits up to `timeout_ms`.
  // Returns true if the child is gone.
  bool Reap(int timeout_ms);

  NodeProcessOptions options_;
  std::string log_path_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

}  // namespace test
}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_TESTING_NODE_PROCESS_H_
