// Small helpers for tests that use Linux network namespaces: find a
// program, run a command (optionally inside a named namespace) and capture
// its output, move the calling thread into a namespace, and run a function
// on a thread that lives in one.
//
// A named namespace is the file /run/netns/<name> that `ip netns add` makes.
// A network namespace is a property of a thread, not of a process (setns(2)
// with CLONE_NEWNET applies to the calling thread only), so a test can keep
// its main thread where it is and talk to addresses that exist only inside
// a namespace from a thread that entered it.
//
// All functions are safe to call from any thread.

#ifndef DIST_COUNTER_TESTS_TESTING_NETNS_H_
#define DIST_COUNTER_TESTS_TESTING_NETNS_H_

#include <functional>
#include <string>
#include <vector>

namespace dist_counter {
namespace test {

// The full path of program `name`, searched in $PATH and then in /usr/sbin,
// /sbin, /usr/bin and /bin (root's tools live in sbin, which a test
// runner's PATH may lack). "" if not found.
std::string FindProgram(const std::string& name);

// Runs `argv` (argv[0] a program name or path) and waits for it. With a
// non-empty `netns` the child first joins namespace /run/netns/<netns>.
// Stores its stdout and stderr, interleaved and without trailing
// whitespace, in *output. Returns its exit
// code; 127 if the program was not found or could not be executed, 124 if
// the namespace could not be joined, -1 if it could not be started or was
// killed by a signal (then *output says so).
int RunCommand(const std::string& netns, const std::vector<std::string>& argv,
               std::string* output);

// Moves the calling thread into namespace /run/netns/<name>. Returns false
// and stores the reason in *error if it cannot (no such namespace, no
// CAP_SYS_ADMIN); the thread then stays where it was.
bool EnterNetns(const std::string& name, std::string* error);

// Runs `fn` on a new thread that first entered namespace `name`, and waits
// for it. Returns false (with *error set, `fn` not run) if the thread could
// not enter the namespace.
bool RunInNetns(const std::string& name, const std::function<void()>& fn,
                std::string* error);

}  // namespace test
}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_TESTING_NETNS_H_
