#include "cluster/peer_resolver.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <glog/logging.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <iterator>
#include <utility>

#include "util/metrics.h"
#include "util/mutex.h"
#include "util/peer_address.h"
#include "util/thread_annotations.h"

namespace dist_counter {

namespace {

using Clock = std::chrono::steady_clock;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             Clock::now().time_since_epoch())
      .count();
}

// "[a, b]" for logs.
std::string Describe(const std::vector<std::string>& peers) {
  std::string text = "[";
  for (size_t i = 0; i < peers.size(); ++i) {
    if (i > 0) text += ", ";
    text += peers[i];
  }
  return text + "]";
}

// The entries of `a` that are not in `b` (both sorted).
std::vector<std::string> Minus(const std::vector<std::string>& a,
                               const std::vector<std::string>& b) {
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(),
                      std::back_inserter(out));
  return out;
}

}  // namespace

// Everything the resolver thread uses, so that it can outlive the
// PeerResolver while a resolution finishes after Stop().
struct PeerResolver::State {
  PeerResolverOptions options;
  ResolveFunction resolve;
  PeersCallback on_change;

  mutable Mutex mu;  // a leaf
  CondVar cv;        // signalled at Stop() and when a callback ends
  bool started GUARDED_BY(mu) = false;
  bool stopped GUARDED_BY(mu) = false;
  bool resolving GUARDED_BY(mu) = false;              // in resolve()
  bool in_callback GUARDED_BY(mu) = false;            // in on_change()
  std::vector<std::string> delivered GUARDED_BY(mu);  // sorted
  PeerResolverStats stats GUARDED_BY(mu);
  uint64_t failure_streak GUARDED_BY(mu) = 0;  // failures since a success
  uint64_t unlogged_failures GUARDED_BY(mu) = 0;
  int64_t last_failure_log_ms GUARDED_BY(mu) = 0;  // 0: never
  // Metrics (null without options.metrics); touched only under mu while
  // not stopped, so never after Stop().
  std::atomic<uint64_t>* ok_metric = nullptr;
  std::atomic<uint64_t>* error_metric = nullptr;
  std::atomic<int64_t>* peers_metric = nullptr;

  // Counts a failed resolution and reports it (ReportFailure).
  void Fail(const std::string& what) REQUIRES(mu);
  // Logs a failure unless one was logged less than the failure log
  // interval ago.
  void ReportFailure(const std::string& what) REQUIRES(mu);
  // Resolves once; returns false (and counts a failure) if the answer is
  // not usable, else fills *peers.
  bool ResolveOnce(std::vector<std::string>* peers) EXCLUDES(mu);
  // Delivers `peers` if they differ from the list in force.
  void Deliver(const std::vector<std::string>& peers) EXCLUDES(mu);
  void Run() EXCLUDES(mu);
};

void PeerResolver::State::Fail(const std::string& what) {
  ++stats.failures;
  if (error_metric != nullptr) error_metric->fetch_add(1);
  ++failure_streak;
  ReportFailure(what);
}

void PeerResolver::State::ReportFailure(const std::string& what) {
  const int64_t now = NowMs();
  if (last_failure_log_ms != 0 &&
      now - last_failure_log_ms < options.failure_log_interval_ms) {
    ++unlogged_failures;
    return;
  }
  LOG(WARNING) << "--peers_dns " << options.name << ": " << what
               << "; keeping the " << delivered.size() << " peers in force"
               << (unlogged_failures > 0
                       ? " (" + std::to_string(unlogged_failures) +
                             " more failures since the last report)"
                       : std::string());
  ++stats.failure_logs;
  unlogged_failures = 0;
  last_failure_log_ms = now;
}

bool PeerResolver::State::ResolveOnce(std::vector<std::string>* peers) {
  std::vector<std::string> addresses;
  const Status s = resolve(options.name, &addresses);
  size_t dropped = 0;
  if (s.ok()) {
    *peers = PeersFromAddresses(addresses, options.port, options.max_peers,
                                &dropped);
  }
  MutexLock lock(&mu);
  resolving = false;
  cv.SignalAll();
  if (stopped) return false;
  ++stats.resolutions;
  if (!s.ok()) {
    Fail("resolution failed: " + s.ToString());
    return false;
  }
  if (peers->empty()) {
    Fail("the answer holds no usable IPv4 address");
    return false;
  }
  if (ok_metric != nullptr) ok_metric->fetch_add(1);
  if (failure_streak > 0) {
    LOG(INFO) << "--peers_dns " << options.name << " resolves again after "
              << failure_streak << " failures";
    failure_streak = 0;
  }
  if (dropped > 0 && *peers != delivered) {
    LOG(WARNING) << "--peers_dns " << options.name << ": the answer holds "
                 << peers->size() + dropped << " addresses; taking the first "
                 << peers->size() << " (--max_peers)";
  }
  return true;
}

void PeerResolver::State::Deliver(const std::vector<std::string>& peers) {
  std::vector<std::string> before;
  {
    MutexLock lock(&mu);
    if (stopped || peers == delivered) return;
    before = delivered;
    in_callback = true;
  }
  const Status s = on_change(peers);
  MutexLock lock(&mu);
  in_callback = false;
  cv.SignalAll();
  if (!s.ok()) {
    ReportFailure("applying the new peer list failed: " + s.ToString());
    return;
  }
  ++stats.changes;
  delivered = peers;
  if (peers_metric != nullptr) peers_metric->store(peers.size());
  LOG(WARNING) << "--peers_dns " << options.name << ": peers "
               << Describe(before) << " -> " << Describe(peers) << " (added "
               << Describe(Minus(peers, before)) << ", removed "
               << Describe(Minus(before, peers)) << ")";
}

void PeerResolver::State::Run() {
  const auto interval = std::chrono::milliseconds(options.interval_ms);
  auto next = Clock::now();
  for (;;) {
    {
      MutexLock lock(&mu);
      while (!stopped && Clock::now() < next) {
        cv.WaitFor(&mu, next - Clock::now());
      }
      if (stopped) return;
      resolving = true;
    }
    next = Clock::now() + interval;
    std::vector<std::string> peers;
    if (ResolveOnce(&peers)) Deliver(peers);
  }
}

PeerResolver::PeerResolver(const PeerResolverOptions& options,
                           ResolveFunction resolve, PeersCallback on_change)
    : state_(std::make_shared<State>()) {
  state_->options = options;
  state_->options.interval_ms = std::max(1, options.interval_ms);
  state_->resolve = std::move(resolve);
  state_->on_change = std::move(on_change);
  Metrics* m = options.metrics;
  if (m == nullptr) return;
  m->Describe("dist_counter_peers_dns_resolutions_total", "counter",
              "--peers_dns resolutions, by result (error: failed or empty)");
  m->Describe("dist_counter_peers_dns_peers", "gauge",
              "peers in the --peers_dns list in force");
  state_->ok_metric =
      m->Counter("dist_counter_peers_dns_resolutions_total", "result=\"ok\"");
  state_->error_metric = m->Counter("dist_counter_peers_dns_resolutions_total",
                                    "result=\"error\"");
  state_->peers_metric = m->Gauge("dist_counter_peers_dns_peers");
}

PeerResolver::~PeerResolver() { Stop(); }

void PeerResolver::Start(const std::vector<std::string>& current) {
  MutexLock lock(&state_->mu);
  if (state_->started || state_->stopped) return;
  state_->started = true;
  state_->delivered = current;
  std::sort(state_->delivered.begin(), state_->delivered.end());
  if (state_->peers_metric != nullptr) {
    state_->peers_metric->store(state_->delivered.size());
  }
  std::shared_ptr<State> state = state_;
  thread_ = std::thread([state] { state->Run(); });
}

void PeerResolver::Stop() {
  bool resolving = false;
  {
    MutexLock lock(&state_->mu);
    state_->stopped = true;
    state_->cv.SignalAll();
    while (state_->in_callback) state_->cv.Wait(&state_->mu);
    resolving = state_->resolving;
  }
  if (!thread_.joinable()) return;
  // A thread waiting or about to wait sees `stopped` at once; one inside
  // resolve() (which may block for the system resolver's timeouts) holds
  // its own reference to the state and delivers nothing when it returns.
  if (resolving) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

std::vector<std::string> PeerResolver::Peers() const {
  MutexLock lock(&state_->mu);
  return state_->delivered;
}

PeerResolverStats PeerResolver::Stats() const {
  MutexLock lock(&state_->mu);
  return state_->stats;
}

std::vector<std::string> PeersFromAddresses(
    const std::vector<std::string>& addresses, uint16_t port, size_t max_peers,
    size_t* dropped) {
  std::vector<std::string> peers;
  for (const std::string& address : addresses) {
    in_addr parsed{};
    if (inet_pton(AF_INET, address.c_str(), &parsed) != 1) continue;
    peers.push_back(address + ":" + std::to_string(port));
  }
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  const size_t cut = peers.size() > max_peers ? peers.size() - max_peers : 0;
  peers.resize(peers.size() - cut);
  if (dropped != nullptr) *dropped = cut;
  return peers;
}

Status ResolveWithSystem(const std::string& name,
                         std::vector<std::string>* addresses) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(name.c_str(), nullptr, &hints, &result);
  if (rc != 0) {
    const std::string why =
        rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc);
    return Status::Unavailable("getaddrinfo(" + name + "): " + why);
  }
  for (const addrinfo* a = result; a != nullptr; a = a->ai_next) {
    if (a->ai_family != AF_INET || a->ai_addr == nullptr) continue;
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) != nullptr) {
      addresses->push_back(text);
    }
  }
  freeaddrinfo(result);
  return Status::OK();
}

namespace {

// Appends the A records of a DNS reply to *addresses.
Status ParseAnswer(const unsigned char* reply, int length,
                   std::vector<std::string>* addresses) {
  ns_msg message;
  if (ns_initparse(reply, length, &message) != 0) {
    return Status::Unavailable("malformed DNS reply");
  }
  const int count = ns_msg_count(message, ns_s_an);
  for (int i = 0; i < count; ++i) {
    ns_rr record;
    if (ns_parserr(&message, ns_s_an, i, &record) != 0) {
      return Status::Unavailable("malformed DNS answer record");
    }
    if (ns_rr_type(record) != ns_t_a || ns_rr_class(record) != ns_c_in ||
        ns_rr_rdlen(record) != 4) {
      continue;  // e.g. a CNAME on the way
    }
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, ns_rr_rdata(record), text, sizeof(text))) {
      addresses->push_back(text);
    }
  }
  return Status::OK();
}

// Asks `server` for the A records of `name`.
Status QueryServer(const sockaddr_in& server, int timeout_s,
                   const std::string& name,
                   std::vector<std::string>* addresses) {
  struct __res_state res;
  std::memset(&res, 0, sizeof(res));
  if (res_ninit(&res) != 0) {
    return Status::Unavailable("cannot initialize the DNS resolver");
  }
  res.nscount = 1;
  res.nsaddr_list[0] = server;
  res.retrans = timeout_s;
  res.retry = 1;
  unsigned char reply[NS_PACKETSZ * 8];
  const int length =
      res_nquery(&res, name.c_str(), ns_c_in, ns_t_a, reply, sizeof(reply));
  const int error = res.res_h_errno;
  res_nclose(&res);
  if (length < 0) {
    return Status::Unavailable("DNS query for " + name + ": " +
                               hstrerror(error));
  }
  return ParseAnswer(reply, length, addresses);
}

}  // namespace

Status MakeServerResolver(std::string_view server, int timeout_ms,
                          ResolveFunction* resolve) {
  const size_t colon = server.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("DNS server must be ip:port, got \"" +
                                   std::string(server) + "\"");
  }
  const std::string host(server.substr(0, colon));
  const std::string_view port_text = server.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(
      port_text.data(), port_text.data() + port_text.size(), port);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  if (ec != std::errc() || end != port_text.data() + port_text.size() ||
      port == 0 || port > 65535 ||
      inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    return Status::InvalidArgument(
        "DNS server must be an IPv4 address and a port (ip:port), got \"" +
        std::string(server) + "\"");
  }
  address.sin_port = htons(static_cast<uint16_t>(port));
  const int timeout_s = std::max(1, (timeout_ms + 999) / 1000);
  *resolve = [address, timeout_s](const std::string& name,
                                  std::vector<std::string>* addresses) {
    return QueryServer(address, timeout_s, name, addresses);
  };
  return Status::OK();
}

}  // namespace dist_counter
