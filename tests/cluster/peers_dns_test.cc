// Peer discovery through DNS (--peers_dns), for real: a dnsmasq started
// here on a loopback port answers one name with several loopback addresses
// from a hosts file; dist_counter processes bound to those addresses ask it
// (--peers_dns_server) and must follow the answer as the test rewrites the
// file and reloads dnsmasq (SIGHUP): peers join, leave (their metrics go)
// and the counters converge. Skipped when dnsmasq is not installed
// (scripts/install_deps.sh installs it) or 127.0.0.2-5 cannot be bound.
//
// Timings are never asserted; deadlines only bound a failing test.

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cluster/peer_resolver.h"
#include "testing/http_client.h"
#include "testing/metric_value.h"
#include "testing/node_process.h"
#include "testing/wait_until.h"

namespace dist_counter {
namespace {

using test::HttpRequest;
using test::HttpResponse;
using test::NodeProcess;
using test::NodeProcessOptions;
using test::TempDir;

constexpr char kName[] = "counters.dns.test";
constexpr int kMergeIntervalMs = 100;

bool WaitUntil(const std::function<bool()>& done, int timeout_ms = 20000) {
  return test::WaitUntil(done, timeout_ms, /*poll_ms=*/50);
}

// The first of /usr/sbin/dnsmasq, /usr/bin/dnsmasq that exists, or "".
std::string FindDnsmasq() {
  for (const char* path : {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

// True if `ip`:`port` can be bound (TCP).
bool CanBind(const std::string& ip, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &address.sin_addr);
  const bool ok =
      bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return ok;
}

// A port below the ephemeral range, free on every address in `ips` a moment
// ago (so a restarted node gets it back), or 0.
uint16_t PickPort(const std::vector<std::string>& ips) {
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 200; ++attempt) {
    const uint16_t port = static_cast<uint16_t>(20000 + rng() % 10000);
    bool free = true;
    for (const std::string& ip : ips) free = free && CanBind(ip, port);
    if (free) return port;
  }
  return 0;
}

// A dnsmasq on 127.0.0.1:port() answering from one hosts file, with no
// upstream server. Not thread-safe.
class Dnsmasq {
 public:
  Dnsmasq(const std::string& binary, const std::string& dir)
      : binary_(binary), hosts_(dir + "/hosts"), log_(dir + "/dnsmasq.log") {}
  ~Dnsmasq() { Stop(); }

  // Writes `ips` as the addresses of kName (the file dnsmasq reads).
  void WriteHosts(const std::vector<std::string>& ips) {
    std::ofstream out(hosts_, std::ios::trunc);
    for (const std::string& ip : ips) out << ip << " " << kName << "\n";
  }

  // Starts dnsmasq; returns false if it did not start.
  bool Start(uint16_t port) {
    port_ = port;
    const passwd* user = getpwuid(getuid());
    const group* group = getgrgid(getgid());
    if (user == nullptr || group == nullptr) return false;
    // Runs as us: as root it would otherwise become nobody, who cannot read
    // the test's private directory on SIGHUP.
    std::vector<std::string> args = {binary_,
                                     "--keep-in-foreground",
                                     "--conf-file=/dev/null",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--addn-hosts=" + hosts_,
                                     "--listen-address=127.0.0.1",
                                     "--bind-interfaces",
                                     "--port=" + std::to_string(port),
                                     "--user=" + std::string(user->pw_name),
                                     "--group=" + std::string(group->gr_name),
                                     "--pid-file=",
                                     "--log-facility=-"};
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return true;
  }

  // Makes dnsmasq read the hosts file again.
  void Reload() {
    if (pid_ > 0) kill(pid_, SIGHUP);
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string ReadLog() const { return test::ReadFileOrEmpty(log_); }

 private:
  const std::string binary_;
  const std::string hosts_;
  const std::string log_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// What GET /config says.
struct Config {
  std::vector<std::string> actors;
  std::vector<std::string> connected;
};

bool ReadStrings(const rapidjson::Value& array, std::vector<std::string>* out) {
  if (!array.IsArray()) return false;
  for (const auto& item : array.GetArray()) {
    if (!item.IsString()) return false;
    out->push_back(item.GetString());
  }
  std::sort(out->begin(), out->end());
  return true;
}

class PeersDnsTest : public ::testing::Test {
 protected:
  const std::vector<std::string> kIps = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};

  void SetUp() override {
    const std::string binary = FindDnsmasq();
    ASSERT_FALSE(binary.empty()) << "dnsmasq is not installed: install it "
                                    "(apt-get install dnsmasq-base; "
                                    "scripts/install_deps.sh does)";
    port_ = PickPort(kIps);
    if (port_ == 0) GTEST_SKIP() << "cannot bind 127.0.0.2-4 on one port";
    dns_ = std::make_unique<Dnsmasq>(binary, dir_.path());
  }

  // Starts dnsmasq answering `ips` and waits until it does.
  void StartDns(const std::vector<std::string>& ips) {
    dns_->WriteHosts(ips);
    ASSERT_TRUE(dns_->Start(test::FreePort()));
    ResolveFunction resolve;
    ASSERT_TRUE(MakeServerResolver(dns_->server(), 1000, &resolve).ok());
    ASSERT_TRUE(WaitUntil([&] {
      std::vector<std::string> addresses;
      return resolve(kName, &addresses).ok() && addresses.size() == ips.size();
    })) << dns_->ReadLog();
  }

  // Starts the node bound to kIps[i] and waits until it answers.
  void StartNode(size_t i) {
    NodeProcessOptions options;
    options.data_dir = dir_.Sub("node" + std::to_string(i));
    options.port = port_;
    options.flags = {
        "--bind=" + kIps[i],
        "--challenge_id=dns" + std::to_string(i),
        "--peers_dns=" + std::string(kName) + ":" + std::to_string(port_),
        "--peers_dns_server=" + dns_->server(),
        "--merge_interval_ms=" + std::to_string(kMergeIntervalMs),
        "--flush_interval_ms=100"};
    nodes_[i] = std::make_unique<NodeProcess>(options);
    ASSERT_TRUE(nodes_[i]->Start());
    ASSERT_TRUE(WaitUntil([&] { return Get(i, "/ping").status == 200; }))
        << nodes_[i]->ReadLog();
  }

  std::string Url(size_t i, const std::string& path) const {
    return "http://" + kIps[i] + ":" + std::to_string(port_) + path;
  }
  std::string Peer(size_t i) const {
    return kIps[i] + ":" + std::to_string(port_);
  }
  HttpResponse Get(size_t i, const std::string& path) const {
    return HttpRequest("GET", Url(i, path), "", {}, 2000);
  }

  bool ReadConfig(size_t i, Config* config) const {
    const HttpResponse r = Get(i, "/config");
    if (r.status != 200) return false;
    rapidjson::Document doc;
    doc.Parse(r.body.c_str());
    return !doc.HasParseError() && doc.IsObject() && doc.HasMember("actors") &&
           doc.HasMember("connected_nodes") &&
           ReadStrings(doc["actors"], &config->actors) &&
           ReadStrings(doc["connected_nodes"], &config->connected);
  }

  // Waits until node i lists exactly `actors` and is connected to every one
  // of them but itself.
  bool WaitForPeers(size_t i, const std::vector<size_t>& members) {
    std::vector<std::string> actors, connected;
    for (size_t m : members) {
      actors.push_back(Peer(m));
      if (m != i) connected.push_back(Peer(m));
    }
    std::sort(actors.begin(), actors.end());
    std::sort(connected.begin(), connected.end());
    Config config;
    const bool ok = WaitUntil([&] {
      config = Config();
      return ReadConfig(i, &config) && config.actors == actors &&
             config.connected == connected;
    });
    if (!ok) {
      ADD_FAILURE() << "node " << kIps[i] << " lists "
                    << ::testing::PrintToString(config.actors) << ", connected "
                    << ::testing::PrintToString(config.connected) << "; want "
                    << ::testing::PrintToString(actors);
    }
    return ok;
  }

  void Increment(size_t i, const std::string& name, int delta) {
    const HttpResponse r = HttpRequest("POST", Url(i, "/counter/" + name),
                                       std::to_string(delta), {}, 5000);
    ASSERT_EQ(r.status, 204) << r.body << r.error;
  }

  bool WaitForValue(size_t i, const std::string& name, int64_t want) {
    std::string last;
    const bool ok = WaitUntil([&] {
      last = Get(i, "/counter/" + name + "/value").body;
      return last == std::to_string(want);
    });
    if (!ok) {
      ADD_FAILURE() << "node " << kIps[i] << " has " << name << " = " << last
                    << ", want " << want;
    }
    return ok;
  }

  // How often `text` is in node i's log.
  size_t CountInLog(size_t i, const std::string& text) const {
    const std::string log = nodes_[i]->ReadLog();
    size_t count = 0;
    for (size_t at = log.find(text); at != std::string::npos;
         at = log.find(text, at + 1)) {
      ++count;
    }
    return count;
  }

  TempDir dir_;
  uint16_t port_ = 0;
  std::unique_ptr<Dnsmasq> dns_;
  std::unique_ptr<NodeProcess> nodes_[3];
};

TEST_F(PeersDnsTest, PeersFollowTheDnsAnswerAsItChanges) {
  ASSERT_NO_FATAL_FAILURE(StartDns({kIps[0], kIps[1]}));
  for (size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(StartNode(i));

  // Two nodes in the answer find each other and converge.
  ASSERT_TRUE(WaitForPeers(0, {0, 1}));
  ASSERT_TRUE(WaitForPeers(1, {0, 1}));
  Increment(0, "c", 1);
  Increment(1, "c", 10);
  Increment(2, "c", 100);  // not in the answer yet: nobody pulls it
  ASSERT_TRUE(WaitForValue(0, "c", 11));
  ASSERT_TRUE(WaitForValue(1, "c", 11));

  // The third joins the answer: the others pull it, and the sum is exact.
  dns_->WriteHosts({kIps[0], kIps[1], kIps[2]});
  dns_->Reload();
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE(WaitForPeers(i, {0, 1, 2}));
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE(WaitForValue(i, "c", 111));

  // The second leaves the answer: it is dropped with its metric series,
  // and logged once, not every round.
  dns_->WriteHosts({kIps[0], kIps[2]});
  dns_->Reload();
  ASSERT_TRUE(WaitForPeers(0, {0, 2}));
  ASSERT_TRUE(WaitForPeers(2, {0, 2}));
  const std::string gone = "peer=\"" + Peer(1) + "\"";
  const std::string metrics = Get(0, "/metrics").body;
  EXPECT_EQ(metrics.find(gone), std::string::npos);
  EXPECT_EQ(test::MetricValue(metrics, "dist_counter_peers_dns_peers"), 2)
      << metrics;
  Increment(2, "c", 1000);
  ASSERT_TRUE(WaitForValue(0, "c", 1111));
  // Five more resolutions with the same answer: a change logged at every
  // resolution, not once, would show now.
  auto resolved = [&] {
    return test::MetricValue(
               Get(0, "/metrics").body,
               "dist_counter_peers_dns_resolutions_total{result=\"ok\"}")
        .value_or(0);
  };
  const double before = resolved();
  ASSERT_TRUE(WaitUntil([&] { return resolved() >= before + 5; }));
  // Three changes, each logged once: the first answer, the join, the leave.
  EXPECT_EQ(CountInLog(0, std::string("--peers_dns ") + kName + ": peers "), 3u)
      << nodes_[0]->ReadLog();
  EXPECT_EQ(CountInLog(0, "removed [" + Peer(1) + "]"), 1u);
}

TEST_F(PeersDnsTest, PostConfigIsRefusedWhilePeersComeFromDns) {
  ASSERT_NO_FATAL_FAILURE(StartDns({kIps[0]}));
  ASSERT_NO_FATAL_FAILURE(StartNode(0));
  const HttpResponse r = HttpRequest(
      "POST", Url(0, "/config"), "{\"actors\":[\"127.0.0.9:1\"]}", {}, 2000);
  EXPECT_EQ(r.status, 409);
  EXPECT_NE(r.body.find("\"type\":\"Conflict\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("--peers_dns"), std::string::npos) << r.body;
  Config config;
  ASSERT_TRUE(ReadConfig(0, &config));
  EXPECT_EQ(config.actors, std::vector<std::string>{Peer(0)});
}

TEST_F(PeersDnsTest, WithoutDnsTheLastListStaysAndSurvivesARestart) {
  ASSERT_NO_FATAL_FAILURE(StartDns({kIps[0], kIps[1]}));
  ASSERT_NO_FATAL_FAILURE(StartNode(0));
  ASSERT_NO_FATAL_FAILURE(StartNode(1));
  ASSERT_TRUE(WaitForPeers(0, {0, 1}));

  dns_->Stop();  // every resolution now fails
  Increment(1, "d", 5);
  ASSERT_TRUE(WaitForValue(0, "d", 5));
  ASSERT_TRUE(WaitUntil([&] { return CountInLog(0, "resolution failed") >= 1; },
                        30000));
  ASSERT_TRUE(WaitForPeers(0, {0, 1}));
  // Failures are logged once a minute at most.
  EXPECT_EQ(CountInLog(0, "resolution failed"), 1u);

  // A restart without DNS starts from the persisted list.
  ASSERT_EQ(nodes_[0]->Stop(), 0);
  ASSERT_TRUE(nodes_[0]->Start());
  ASSERT_TRUE(WaitUntil([&] { return Get(0, "/ping").status == 200; }));
  ASSERT_TRUE(WaitForPeers(0, {0, 1}));
  Increment(1, "d", 6);
  ASSERT_TRUE(WaitForValue(0, "d", 11));
}

// Without --peers_dns_server the system resolver (getaddrinfo) answers;
// "localhost" comes from /etc/hosts, so no DNS server is involved.
TEST(PeersDnsSystemTest, TheSystemResolverGivesThePeerList) {
  TempDir dir;
  NodeProcessOptions options;
  options.data_dir = dir.Sub("node");
  options.port = test::FreePort();
  options.flags = {"--peers_dns=localhost:" + std::to_string(options.port),
                   "--merge_interval_ms=100"};
  NodeProcess node(options);
  ASSERT_TRUE(node.StartAndWait()) << node.ReadLog();
  const std::string want =
      "{\"actors\":[\"127.0.0.1:" + std::to_string(options.port) +
      "\"],\"challenge_id\":\"DEFAULT\",\"connected_nodes\":[]}";
  std::string body;
  EXPECT_TRUE(WaitUntil([&] {
    body = HttpRequest("GET", node.Url("/config")).body;
    return body == want;
  })) << body;
  EXPECT_EQ(node.Stop(), 0) << node.ReadLog();
}

TEST(PeersDnsFlagsTest, ConflictingOrMalformedFlagsStopTheNode) {
  TempDir dir;
  const std::vector<std::vector<std::string>> bad = {
      {"--peers_dns=peers.test:7777", "--actors=127.0.0.1:1"},
      {"--peers_dns=peers.test:0"},
      {"--peers_dns=peers.test", "--peers_dns_server=localhost:53"},
      {"--peers_dns_server=127.0.0.1:53"},
  };
  int n = 0;
  for (const auto& flags : bad) {
    NodeProcessOptions options;
    options.data_dir = dir.Sub("node" + std::to_string(n++));
    options.flags = flags;
    NodeProcess node(options);
    ASSERT_TRUE(node.Start());
    EXPECT_EQ(node.Wait(), 2) << ::testing::PrintToString(flags) << "\n"
                              << node.ReadLog();
  }
}

}  // namespace
}  // namespace dist_counter
