#include "testing/netns_cluster.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "testing/netns.h"

namespace dist_counter {
namespace test {

namespace {

constexpr char kPrefix[] = "dcnet";
constexpr char kSubnet[] = "10.213.0.";
constexpr int kClientHost = 100;

// "dcnet<pid>-<k>", k counting the clusters of this process.
std::string NewPrefix() {
  static std::atomic<int> clusters{0};
  return kPrefix + std::to_string(getpid()) + "-" + std::to_string(++clusters);
}

// The pid in a namespace name "dcnet<pid>-...", or 0 if it has another form.
pid_t OwnerOf(const std::string& name) {
  const size_t begin = std::strlen(kPrefix);
  if (name.compare(0, begin, kPrefix) != 0) return 0;
  const size_t dash = name.find('-', begin);
  if (dash == std::string::npos || dash == begin) return 0;
  pid_t pid = 0;
  for (size_t i = begin; i < dash; ++i) {
    if (name[i] < '0' || name[i] > '9') return 0;
    pid = pid * 10 + (name[i] - '0');
  }
  return pid;
}

// Removes the namespaces "dcnet<pid>-..." whose process is gone (a test
// killed before its teardown). Those of live processes are left alone.
void RemoveStaleNamespaces() {
  DIR* dir = opendir("/run/netns");
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    const pid_t owner = OwnerOf(name);
    if (owner > 0 && kill(owner, 0) != 0 && errno == ESRCH) {
      stale.push_back(name);
    }
  }
  closedir(dir);
  std::string ignored;
  for (const std::string& name : stale) {
    RunCommand("", {"ip", "netns", "del", name}, &ignored);
  }
}

std::string Quote(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& a : argv) text += (text.empty() ? "" : " ") + a;
  return text;
}

}  // namespace

std::string NetnsCluster::MissingPrerequisites() {
  std::string missing;
  for (const char* program : {"ip", "tc", "iptables"}) {
    if (FindProgram(program).empty()) missing += std::string(" ") + program;
  }
  if (!missing.empty()) {
    return "missing programs:" + missing +
           " (install the Debian packages iproute2 and iptables, e.g. with "
           "scripts/install_deps.sh)";
  }
  RemoveStaleNamespaces();
  const std::string probe = kPrefix + std::to_string(getpid()) + "-probe";
  std::string output;
  if (RunCommand("", {"ip", "netns", "add", probe}, &output) != 0) {
    return "cannot create a network namespace (`ip netns add` said: " + output +
           "); the test needs root, or CAP_SYS_ADMIN and "
           "CAP_NET_ADMIN";
  }
  struct Step {
    std::vector<std::string> argv;
    const char* what;
  };
  const Step steps[] = {
      {{"ip", "link", "add", "br0", "type", "bridge"},
       "the kernel cannot make a bridge (CONFIG_BRIDGE)"},
      {{"ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"},
       "the kernel cannot make a veth pair (CONFIG_VETH)"},
      {{"iptables", "-w", "-A", "OUTPUT", "-m", "statistic", "--mode", "random",
        "--probability", "0.5", "-j", "DROP"},
       "iptables cannot filter in a namespace (netfilter, xt_statistic)"},
      {{"tc", "qdisc", "add", "dev", "v0", "root", "tbf", "rate", "64kbit",
        "burst", "4kb", "latency", "500ms"},
       "tc cannot shape a link (sch_tbf)"},
  };
  std::string result;
  for (const Step& step : steps) {
    if (RunCommand(probe, step.argv, &output) != 0) {
      result = std::string(step.what) + ": `" + Quote(step.argv) +
               "` said: " + output;
      break;
    }
  }
  RunCommand("", {"ip", "netns", "del", probe}, &output);
  return result;
}

NetnsCluster::NetnsCluster(const NetnsClusterOptions& options)
    : options_(options),
      prefix_(NewPrefix()),
      switch_ns_(prefix_ + "-sw"),
      client_ns_(prefix_ + "-cl"),
      has_qdisc_(options.nodes, false) {}

NetnsCluster::~NetnsCluster() {
  nodes_.clear();  // SIGKILL: nothing may hold a namespace being removed
  std::string ignored;
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
    RunCommand("", {"ip", "netns", "del", *it}, &ignored);
  }
}

bool NetnsCluster::Run(const std::string& netns,
                       const std::vector<std::string>& argv) {
  std::string output;
  const int status = RunCommand(netns, argv, &output);
  if (status == 0) return true;
  error_ = "`" + Quote(argv) + "`" +
           (netns.empty() ? "" : " in namespace " + netns) + " exited " +
           std::to_string(status) + ": " + output;
  return false;
}

std::string NetnsCluster::node_netns(int i) const {
  return prefix_ + "-n" + std::to_string(i);
}

std::string NetnsCluster::Ip(int i) const {
  return kSubnet + std::to_string(i + 1);
}

std::string NetnsCluster::Address(int i) const {
  return Ip(i) + ":" + std::to_string(options_.port);
}

std::string NetnsCluster::Url(int i, const std::string& path) const {
  return "http://" + Address(i) + path;
}

bool NetnsCluster::Create() {
  RemoveStaleNamespaces();
  if (!Run("", {"ip", "netns", "add", switch_ns_})) return false;
  made_.push_back(switch_ns_);
  if (!Run(switch_ns_, {"ip", "link", "add", "br0", "type", "bridge"}) ||
      !Run(switch_ns_, {"ip", "link", "set", "br0", "up"})) {
    return false;
  }
  // One namespace per host, its eth0 plugged into port `port` of br0.
  auto add_host = [&](const std::string& ns, const std::string& port,
                      const std::string& ip) {
    if (!Run("", {"ip", "netns", "add", ns})) return false;
    made_.push_back(ns);
    return Run(switch_ns_, {"ip", "link", "add", port, "type", "veth", "peer",
                            "name", "eth0", "netns", ns}) &&
           Run(switch_ns_, {"ip", "link", "set", port, "master", "br0"}) &&
           Run(switch_ns_, {"ip", "link", "set", port, "up"}) &&
           Run(ns, {"ip", "addr", "add", ip + "/24", "dev", "eth0"}) &&
           Run(ns, {"ip", "link", "set", "eth0", "up"}) &&
           Run(ns, {"ip", "link", "set", "lo", "up"});
  };
  for (int i = 0; i < options_.nodes; ++i) {
    if (!add_host(node_netns(i), "n" + std::to_string(i), Ip(i))) return false;
  }
  if (!add_host(client_ns_, "cl", kSubnet + std::to_string(kClientHost))) {
    return false;
  }
  std::string output;
  netem_available_ = RunCommand(node_netns(0),
                                {"tc", "qdisc", "add", "dev", "lo", "root",
                                 "netem", "delay", "1ms"},
                                &output) == 0;
  if (netem_available_)
    Run(node_netns(0), {"tc", "qdisc", "del", "dev", "lo", "root"});

  std::string actors;
  for (int i = 0; i < options_.nodes; ++i) {
    actors += (i == 0 ? "" : ",") + Address(i);
  }
  for (int i = 0; i < options_.nodes; ++i) {
    NodeProcessOptions node;
    node.data_dir = dir_.Sub("node" + std::to_string(i + 1));
    node.port = options_.port;
    node.host = Ip(i);
    node.netns = node_netns(i);
    node.flags = {"--challenge_id=" + std::to_string(i + 1),
                  "--actors=" + actors};
    node.flags.insert(node.flags.end(), options_.flags.begin(),
                      options_.flags.end());
    nodes_.push_back(std::make_unique<NodeProcess>(node));
  }
  return true;
}

bool NetnsCluster::StartAll(int timeout_ms) {
  for (auto& node : nodes_) {
    if (!node->Start()) {
      error_ = "cannot start " + node->Address();
      return false;
    }
  }
  for (auto& node : nodes_) {
    if (!node->WaitReady(timeout_ms)) {
      error_ = node->Address() +
               " did not answer /ping; its log: " + node->ReadLog();
      return false;
    }
  }
  return true;
}

bool NetnsCluster::StopAll(int timeout_ms) {
  bool ok = true;
  for (auto& node : nodes_) {
    if (node->running()) {
      const int status = node->Stop(timeout_ms);
      if (status != 0) {
        error_ = node->Address() + " exited " + std::to_string(status) +
                 " on SIGTERM; log " + node->log_path();
        ok = false;
      }
    }
    const std::string log = node->ReadLog();
    for (const char* report :
         {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
          "runtime error:", "Check failed"}) {
      if (log.find(report) == std::string::npos) continue;
      error_ = std::string(report) + " in " + node->log_path();
      ok = false;
    }
  }
  return ok;
}

HttpResponse NetnsCluster::Request(const std::string& method,
                                   const std::string& url,
                                   const std::string& body, int timeout_ms) {
  HttpResponse response;
  std::string error;
  if (!RunInNetns(
          client_ns_,
          [&] { response = HttpRequest(method, url, body, {}, timeout_ms); },
          &error)) {
    response.error = error;
  }
  return response;
}

bool NetnsCluster::Iptables(int i, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"iptables", "-w"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(node_netns(i), argv);
}

bool NetnsCluster::CutTwoWay(int a, int b) {
  return Iptables(a, {"-A", "INPUT", "-s", Ip(b), "-j", "DROP"}) &&
         Iptables(a, {"-A", "OUTPUT", "-d", Ip(b), "-j", "DROP"});
}

bool NetnsCluster::CutOneWay(int from, int to) {
  return Iptables(to, {"-A", "INPUT", "-s", Ip(from), "-j", "DROP"});
}

bool NetnsCluster::Loss(int i, int percent) {
  const std::string probability = std::to_string(percent / 100.0);
  return Iptables(i, {"-A", "OUTPUT", "-o", "eth0", "-m", "statistic", "--mode",
                      "random", "--probability", probability, "-j", "DROP"});
}

bool NetnsCluster::SetQdisc(int i, const std::vector<std::string>& qdisc) {
  std::vector<std::string> argv = {"tc",  "qdisc", "replace",
                                   "dev", "eth0",  "root"};
  argv.insert(argv.end(), qdisc.begin(), qdisc.end());
  if (!Run(node_netns(i), argv)) return false;
  has_qdisc_[i] = true;
  return true;
}

bool NetnsCluster::Delay(int i, int delay_ms) {
  if (!netem_available_) {
    error_ = "the kernel has no netem queueing discipline (sch_netem)";
    return false;
  }
  return SetQdisc(i, {"netem", "delay", std::to_string(delay_ms) + "ms"});
}

bool NetnsCluster::Throttle(int i, int kbit) {
  return SetQdisc(i, {"tbf", "rate", std::to_string(kbit) + "kbit", "burst",
                      "4kb", "latency", "500ms"});
}

bool NetnsCluster::HealNetwork() {
  bool ok = true;
  for (int i = 0; i < size(); ++i) {
    ok = Iptables(i, {"-F"}) && ok;
    if (!has_qdisc_[i]) continue;
    ok =
        Run(node_netns(i), {"tc", "qdisc", "del", "dev", "eth0", "root"}) && ok;
    has_qdisc_[i] = false;
  }
  return ok;
}

std::string NetnsCluster::LogTails(size_t bytes_each) const {
  std::string tails;
  for (const auto& node : nodes_) {
    const std::string log = node->ReadLog();
    tails += "---- last lines of " + node->log_path() + "\n" +
             log.substr(log.size() > bytes_each ? log.size() - bytes_each : 0);
  }
  return tails;
}

}  // namespace test
}  // namespace dist_counter
