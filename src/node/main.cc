// dist_counter: one node of a distributed database of PN-counters.
// Reads flags into NodeOptions, starts a Node, and stops it cleanly on
// SIGTERM or SIGINT (a second signal exits at once).

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "api/auth.h"
#include "cluster/peer_client.h"
#include "cluster/peer_resolver.h"
#include "node/node.h"
#include "store/backup.h"
#include "util/peer_address.h"
#include "util/utf8.h"

DEFINE_string(challenge_id, "",
              "Name of this node; its actor ids start with it. Falls back to "
              "the CHALLENGE_ID environment variable, then to \"DEFAULT\". "
              "Every node of a cluster needs its own.");
DEFINE_int32(port, 7777, "HTTP port to listen on (0 picks a free one).");
DEFINE_string(bind, "0.0.0.0", "Address to listen on.");
DEFINE_string(data_dir, "data",
              "RocksDB directory holding this node's counters and identity; "
              "created if missing. One node per directory.");
DEFINE_int32(flush_interval_ms, 5000,
             "Changed counters are written to RocksDB as one WriteBatch this "
             "often, start to start (a flush that overruns is followed at "
             "once by the next). A kill -9 can lose the increments that no "
             "peer pulled yet and that were acknowledged since the start of "
             "the last completed flush: at most this interval plus the "
             "duration of one flush (two flush durations when a flush takes "
             "longer than the interval), and never more than "
             "--max_unflushed_ms worth. See --durable.");
DEFINE_bool(durable, false,
            "Acknowledge an increment only once it is synced to RocksDB's "
            "write-ahead log (concurrent increments share one sync); a kill "
            "-9 then loses nothing acknowledged. An increment whose sync "
            "fails is discarded (never read, never sent to peers) and gets "
            "503 StorageUnavailable.");
DEFINE_int32(max_unflushed_ms, 30000,
             "Default mode: increments get 503 StorageUnavailable (and "
             "/ping fails) while the last successful flush started longer "
             "ago than this, e.g. on a hung disk. At least 3 x "
             "--flush_interval_ms is always allowed.");
DEFINE_int32(close_retry_ms, 10000,
             "On a clean stop a failing final flush (full disk) is retried "
             "this long; if it still fails the node logs an ERROR and exits "
             "1: acknowledged increments are then not all on disk.");
DEFINE_uint64(max_counters, 10000000,
              "Most counters this node holds. An increment or batch that "
              "would create one more gets 507 ResourceExhausted, a peer's "
              "new counter is not merged (metric "
              "dist_counter_merges_refused_total); existing counters keep "
              "working.");
DEFINE_uint64(max_peer_counters, 0,
              "Most counters this node holds for which a peer's new counter "
              "is still merged; beyond it new counters from peers are "
              "refused (metric dist_counter_merges_refused_total{reason="
              "\"max_peer_counters\"}, rate-limited WARNING) while known "
              "ones keep merging, and the rest of --max_counters is kept for "
              "this node's clients, so a hostile peer cannot use up the "
              "quota. 0 picks 90% of --max_counters; must not exceed it.");
DEFINE_int32(threads, 2, "HTTP worker threads.");
DEFINE_uint64(max_connections, 0,
              "Most client connections open at once; one more is closed at "
              "once after a 503. 0 picks min(10000, descriptor limit - "
              "reserve), the reserve (RocksDB's open files, the pull threads, "
              "consistent-read threads x --max_peers, and a margin: 488 by "
              "default; at least 256, at most half the limit) being left for "
              "RocksDB and peers. At start the soft "
              "descriptor limit (ulimit -n) is raised to the hard one; a "
              "value above limit - reserve is refused.");
DEFINE_uint64(max_body_bytes, 64 * 1024,
              "Largest request body accepted; larger ones get 413.");
DEFINE_uint64(connection_reply_bytes, 1024 * 1024,
              "Back-pressure: while one connection's replies not yet taken "
              "by its socket exceed this, its further requests are not read. "
              "A connection with nothing queued still goes on.");
DEFINE_uint64(total_reply_bytes, 64 * 1024 * 1024,
              "Back-pressure: while all connections' replies not yet taken "
              "by their sockets exceed this, only connections with nothing "
              "queued have requests read. Reply memory stays under this plus "
              "one reply per connection (gauge "
              "dist_counter_http_reply_bytes_queued).");
DEFINE_int32(write_timeout_ms, 30000,
             "A client that takes no reply bytes for this long while replies "
             "wait for it is disconnected.");
DEFINE_string(actors, "",
              "Peer list, as a JSON array ([\"host:port\",...]) or "
              "comma-separated. Replaces the stored list at startup. Falls "
              "back to the ACTORS environment variable; when both are empty "
              "the list last set with POST /config is used.");
DEFINE_uint64(max_peers, 64,
              "Most peers a node takes, from --actors or POST /config (more "
              "get 400 InvalidArgument); a --peers_dns answer is cut to it. "
              "Each peer costs a puller and its connections.");
DEFINE_int32(merge_interval_ms, 1000,
             "How often the merger pulls every peer's changes.");
DEFINE_int32(peer_timeout_ms, 500,
             "Timeout of one request to a peer (pulls and consistent_value).");
DEFINE_int32(pull_threads, 8,
             "Threads pulling peers; at most this many peers are pulled at "
             "once, however many are configured.");
DEFINE_uint64(max_actors_per_counter, 1024,
              "A counter state from a peer with more actors (or whose merge "
              "would give our copy more) is refused and reported.");
DEFINE_uint64(max_counter_bytes, 256 * 1024,
              "A counter state from a peer larger than this, encoded (or "
              "whose merge would make our copy larger), is refused and "
              "reported.");
DEFINE_uint64(max_page_bytes, 1024 * 1024,
              "Size of one page of changes asked from a peer; replies over "
              "twice this plus 64 KiB are refused. Pages this node serves "
              "are capped at 16 MiB.");
DEFINE_uint64(max_round_bytes, 16 * 1024 * 1024,
              "Bytes pulled from one peer per merge interval at most; the "
              "rest waits for the next interval.");

// ---- Token authentication
DEFINE_string(auth_token_file, "",
              "File holding a token (visible ASCII; a trailing newline is "
              "ignored). When set, every route but /ping needs the header "
              "\"Authorization: Bearer <token>\" (others get 401), and this "
              "node sends the same header when it pulls its peers: give "
              "every node of a cluster the same file. Falls back to the "
              "DIST_COUNTER_AUTH_TOKEN_FILE environment variable; empty: no "
              "authentication. A missing, unreadable or empty file stops the "
              "start; a file open to other users is warned about.");

DEFINE_bool(protected_mode, true,
            "Without --auth_token_file, answer POST /config (which re-points "
            "this node's peers) and /admin/* only to clients on a loopback "
            "address (127.0.0.0/8, ::1); others get 403. Reads and "
            "increments stay open. false: anyone who reaches the port may "
            "call them. Ignored with a token, which then guards every "
            "route.");

// Identity.
DEFINE_int64(min_incarnation_move_interval_s, 60,
             "A peer holding more for this node's current actor than it "
             "does moves the node to a new incarnation (a new actor id) at "
             "most once per this many seconds; claims in between concern an "
             "actor this node has just moved to, are forged, and are "
             "refused (counted in "
             "dist_counter_incarnation_moves_refused_total). 0: no limit.");

// Peer discovery through DNS (Kubernetes headless services).
DEFINE_string(peers_dns, "",
              "NAME:PORT (PORT 7777 when omitted): the peer list is every "
              "IPv4 address NAME resolves to (A records), each at PORT, "
              "resolved again every --merge_interval_ms, e.g. a Kubernetes "
              "headless service. This node's own address in the answer is "
              "skipped; peers that leave the answer are dropped; at most "
              "--max_peers are taken (sorted). A failed or empty resolution "
              "keeps the last list. The list is persisted like POST /config's "
              "and used until the first answer; POST /config is refused with "
              "409 Conflict. Excludes --actors and ACTORS.");
DEFINE_string(peers_dns_server, "",
              "With --peers_dns: IP:PORT of the one DNS server to ask (UDP, "
              "the name as given: no search domains, no hosts file), instead "
              "of the system resolver (getaddrinfo with /etc/resolv.conf). "
              "For tests and setups whose resolv.conf is not the right "
              "server.");

// Backup and restore.
DEFINE_string(backup_dir, "",
              "Directory for the backups POST /admin/backup makes (a RocksDB "
              "checkpoint each, in a subdirectory named by its UTC time); "
              "created if missing; must not be inside --data_dir. Put it on "
              "another disk to survive the loss of the data dir. Empty: "
              "backups are disabled (the /admin/backup routes answer 503).");
DEFINE_uint64(backups_to_keep, 7,
              "After each backup the oldest ones beyond this many are "
              "removed from --backup_dir.");
DEFINE_string(restore_from, "",
              "Restore mode: copy this backup directory (one subdirectory of "
              "a --backup_dir) into --data_dir, which must be empty or "
              "missing, then exit 0 without serving; a non-empty data dir is "
              "refused (exit 1). The restored node's next start takes a new "
              "incarnation, so none of its new increments can be hidden by "
              "the larger totals peers hold for its old actors.");

// Exactly-once increments (Idempotency-Key).
DEFINE_int64(idempotency_window_s, 86400,
             "How long (seconds) a POST /counter/<name> with an "
             "Idempotency-Key is remembered: a retry with the same key and "
             "body within it is answered again without counting twice; "
             "after it the key is forgotten (compaction drops it from disk). "
             "Must be positive.");

DECLARE_bool(help);
DECLARE_bool(helpshort);

namespace {

bool ValidatePositive(const char* flagname, int32_t value) {
  if (value > 0) return true;
  std::cerr << "--" << flagname << " must be positive, got " << value << "\n";
  return false;
}

bool ValidatePositiveSize(const char* flagname, uint64_t value) {
  if (value > 0) return true;
  std::cerr << "--" << flagname << " must be positive\n";
  return false;
}

bool ValidatePort(const char* /*flagname*/, int32_t value) {
  if (value >= 0 && value <= 65535) return true;
  std::cerr << "--port must be in 0..65535, got " << value << "\n";
  return false;
}

const bool kFlushValid =
    gflags::RegisterFlagValidator(&FLAGS_flush_interval_ms, &ValidatePositive);
const bool kThreadsValid =
    gflags::RegisterFlagValidator(&FLAGS_threads, &ValidatePositive);
const bool kMergeValid =
    gflags::RegisterFlagValidator(&FLAGS_merge_interval_ms, &ValidatePositive);
const bool kTimeoutValid =
    gflags::RegisterFlagValidator(&FLAGS_peer_timeout_ms, &ValidatePositive);
const bool kPullThreadsValid =
    gflags::RegisterFlagValidator(&FLAGS_pull_threads, &ValidatePositive);
const bool kActorsPerCounterValid = gflags::RegisterFlagValidator(
    &FLAGS_max_actors_per_counter, &ValidatePositiveSize);
const bool kCounterBytesValid = gflags::RegisterFlagValidator(
    &FLAGS_max_counter_bytes, &ValidatePositiveSize);
const bool kPageBytesValid =
    gflags::RegisterFlagValidator(&FLAGS_max_page_bytes, &ValidatePositiveSize);
const bool kRoundBytesValid = gflags::RegisterFlagValidator(
    &FLAGS_max_round_bytes, &ValidatePositiveSize);
const bool kConnectionReplyValid = gflags::RegisterFlagValidator(
    &FLAGS_connection_reply_bytes, &ValidatePositiveSize);
const bool kTotalReplyValid = gflags::RegisterFlagValidator(
    &FLAGS_total_reply_bytes, &ValidatePositiveSize);
const bool kWriteTimeoutValid =
    gflags::RegisterFlagValidator(&FLAGS_write_timeout_ms, &ValidatePositive);
const bool kPortValid =
    gflags::RegisterFlagValidator(&FLAGS_port, &ValidatePort);

std::string FlagOrEnv(const std::string& flag, const char* env,
                      const std::string& fallback) {
  if (!flag.empty()) return flag;
  const char* value = std::getenv(env);
  if (value != nullptr && value[0] != '\0') return value;
  return fallback;
}

// Fills the --peers_dns options. Returns false (after printing why) if they
// are malformed or combined with a static peer list.
bool ReadPeersDnsFlags(dist_counter::NodeOptions* options) {
  if (FLAGS_peers_dns.empty()) {
    if (FLAGS_peers_dns_server.empty()) return true;
    std::cerr << "--peers_dns_server needs --peers_dns\n";
    return false;
  }
  if (options->peers_given) {
    std::cerr << "--peers_dns and --actors (or ACTORS) exclude each other: "
                 "the DNS answer is the whole peer list\n";
    return false;
  }
  dist_counter::PeerAddress target;
  dist_counter::Status s =
      dist_counter::ParsePeerAddress(FLAGS_peers_dns, &target);
  if (!s.ok()) {
    std::cerr << "--peers_dns: " << s.message() << "\n";
    return false;
  }
  if (!FLAGS_peers_dns_server.empty()) {
    dist_counter::ResolveFunction unused;
    s = dist_counter::MakeServerResolver(FLAGS_peers_dns_server, 1000, &unused);
    if (!s.ok()) {
      std::cerr << "--peers_dns_server: " << s.message() << "\n";
      return false;
    }
  }
  options->peers_dns = target.ToString();
  options->peers_dns_server = FLAGS_peers_dns_server;
  options->api.peers_dns = target.ToString();
  return true;
}

// Fills *options from the flags. Returns false (after printing why) if a
// flag's value is unusable.
bool ReadFlags(dist_counter::NodeOptions* options) {
  options->store.data_dir = FLAGS_data_dir;
  options->store.challenge_id =
      FlagOrEnv(FLAGS_challenge_id, "CHALLENGE_ID", "DEFAULT");
  options->store.flush_interval_ms = FLAGS_flush_interval_ms;
  options->store.durable = FLAGS_durable;
  options->store.max_unflushed_ms = FLAGS_max_unflushed_ms;
  options->store.close_retry_ms = FLAGS_close_retry_ms;
  options->store.max_counters = FLAGS_max_counters;
  options->store.max_peer_counters = FLAGS_max_peer_counters;
  options->store.backup_dir = FLAGS_backup_dir;
  options->store.backups_to_keep = FLAGS_backups_to_keep;
  options->store.idempotency_window_s = FLAGS_idempotency_window_s;
  if (FLAGS_idempotency_window_s <= 0) {
    std::cerr << "--idempotency_window_s must be positive\n";
    return false;
  }
  options->store.min_incarnation_move_interval_s =
      FLAGS_min_incarnation_move_interval_s;
  if (FLAGS_min_incarnation_move_interval_s < 0 ||
      FLAGS_min_incarnation_move_interval_s > 365LL * 86400) {
    std::cerr << "--min_incarnation_move_interval_s must be in 0..31536000\n";
    return false;
  }
  if (FLAGS_backups_to_keep == 0) {
    std::cerr << "--backups_to_keep must be positive\n";
    return false;
  }
  if (FLAGS_max_unflushed_ms <= 0 || FLAGS_close_retry_ms < 0 ||
      FLAGS_max_counters == 0) {
    std::cerr << "--max_unflushed_ms and --max_counters must be positive, "
                 "--close_retry_ms must not be negative\n";
    return false;
  }
  if (FLAGS_max_peer_counters > FLAGS_max_counters) {
    std::cerr << "--max_peer_counters must not exceed --max_counters\n";
    return false;
  }
  options->http.bind = FLAGS_bind;
  options->http.port = static_cast<uint16_t>(FLAGS_port);
  options->http.threads = FLAGS_threads;
  options->http.max_body_bytes = FLAGS_max_body_bytes;
  options->http.connection_reply_bytes = FLAGS_connection_reply_bytes;
  options->http.total_reply_bytes = FLAGS_total_reply_bytes;
  options->http.write_timeout_ms = FLAGS_write_timeout_ms;
  options->api.max_body_bytes = FLAGS_max_body_bytes;
  options->api.max_peers = FLAGS_max_peers;
  options->api.protected_mode = FLAGS_protected_mode;
  options->merge_interval_ms = FLAGS_merge_interval_ms;
  options->peer_timeout_ms = FLAGS_peer_timeout_ms;
  options->pull_threads = FLAGS_pull_threads;
  options->max_actors_per_counter = FLAGS_max_actors_per_counter;
  options->max_counter_bytes = FLAGS_max_counter_bytes;
  options->max_page_bytes = FLAGS_max_page_bytes;
  options->max_round_bytes = FLAGS_max_round_bytes;

  for (char c : options->store.challenge_id) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
      std::cerr << "--challenge_id must be printable without spaces\n";
      return false;
    }
  }
  // It starts every actor id, and peers take only UTF-8 actor ids.
  if (!dist_counter::IsValidUtf8(options->store.challenge_id)) {
    std::cerr << "--challenge_id must be UTF-8\n";
    return false;
  }
  const std::string actors = FlagOrEnv(FLAGS_actors, "ACTORS", "");
  if (!actors.empty()) {
    dist_counter::Status s =
        dist_counter::ParsePeerList(actors, &options->peers);
    if (s.ok())
      s = dist_counter::CheckPeerList(options->peers, FLAGS_max_peers);
    if (!s.ok()) {
      std::cerr << "--actors: " << s.message() << "\n";
      return false;
    }
    options->peers_given = true;
  }
  return ReadPeersDnsFlags(options);
}

// Reads the token named by --auth_token_file (or its environment variable)
// into options->api.auth. Returns false (after printing why) if the file
// cannot serve; logs its warnings. Never prints the token.
bool ReadAuthFlags(dist_counter::NodeOptions* options) {
  const std::string path =
      FlagOrEnv(FLAGS_auth_token_file, "DIST_COUNTER_AUTH_TOKEN_FILE", "");
  if (path.empty()) {
    if (FLAGS_protected_mode) {
      LOG(INFO) << "no --auth_token_file: protected mode, POST /config and "
                   "/admin/* answer only clients on loopback";
    } else {
      LOG(WARNING) << "no --auth_token_file and --protected_mode=false: "
                      "anyone who reaches the port can re-point this node's "
                      "peers (POST /config)";
    }
    return true;
  }
  std::vector<std::string> warnings;
  dist_counter::Status s =
      dist_counter::LoadAuthToken(path, &options->api.auth.token, &warnings);
  if (!s.ok()) {
    std::cerr << "--auth_token_file: " << s.message() << "\n";
    return false;
  }
  for (const std::string& warning : warnings) LOG(WARNING) << warning;
  LOG(INFO) << "token authentication on (token from " << path
            << "): every route but /ping needs Authorization: Bearer";
  return true;
}

// --restore_from: restores the backup into --data_dir and returns the exit
// status.
int RestoreMain() {
  uint64_t next = 0;
  dist_counter::Status s =
      dist_counter::RestoreBackup(FLAGS_restore_from, FLAGS_data_dir, &next);
  if (!s.ok()) {
    LOG(ERROR) << "cannot restore " << FLAGS_restore_from << " into "
               << FLAGS_data_dir << ": " << s.message();
    return 1;
  }
  LOG(INFO) << "restored " << FLAGS_restore_from << " into " << FLAGS_data_dir
            << "; the node will start at incarnation " << next
            << " and get back from its peers what they hold beyond the backup";
  return 0;
}

// Raises the soft RLIMIT_NOFILE to the hard limit (logged once) and returns
// the soft limit in force.
rlim_t RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    PLOG(WARNING) << "reading the descriptor limit";
    return 1024;
  }
  const rlim_t before = limit.rlim_cur;
  // An "unlimited" hard limit still stops at the kernel's nr_open.
  constexpr rlim_t kUnlimitedTarget = 1 << 20;
  const rlim_t target = limit.rlim_max == RLIM_INFINITY
                            ? std::max(before, kUnlimitedTarget)
                            : limit.rlim_max;
  if (before < target) {
    limit.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      PLOG(WARNING) << "raising the descriptor limit to " << target;
      limit.rlim_cur = before;
    }
  }
  LOG(INFO) << "descriptor limit (RLIMIT_NOFILE): " << limit.rlim_cur
            << (limit.rlim_cur != before
                    ? " (raised from " + std::to_string(before) + ")"
                    : std::string(" (the hard limit)"));
  return limit.rlim_cur;
}

// The descriptors the node needs besides its client connections, at most:
// RocksDB's open files (its table cache, plus WAL, MANIFEST, LOCK and
// directories), one connection per pull thread, one per peer for each
// consistent-read thread (a read asks every peer at once), and a margin for
// the rest (DNS, backups, logs, the signal and reactor descriptors). At
// least 256. Pistache's accept loop retries at once when accept() fails
// for want of a descriptor, so none of these may ever run short.
uint64_t DescriptorReserve(const dist_counter::NodeOptions& options) {
  const uint64_t rocksdb =
      static_cast<uint64_t>(std::max(options.store.max_open_files, 20)) + 32;
  const uint64_t pulls = static_cast<uint64_t>(options.pull_threads);
  const uint64_t reads = static_cast<uint64_t>(options.api.consistent_threads) *
                         options.api.max_peers;
  return std::max<uint64_t>(256, rocksdb + pulls + reads + 64);
}

// Sets options->http.max_connections from --max_connections and the
// descriptor limit `descriptors`. Returns false (after printing why) if the
// flag leaves too few descriptors for RocksDB and peers.
bool SetMaxConnections(rlim_t descriptors, dist_counter::NodeOptions* options) {
  const uint64_t limit = descriptors;
  const uint64_t needed = DescriptorReserve(*options);
  const uint64_t reserve = std::min<uint64_t>(needed, limit / 2);
  if (reserve < needed) {
    LOG(WARNING) << "the descriptor limit (" << limit << ") leaves only "
                 << reserve << " descriptors beside "
                 << "client connections where the flags may need " << needed
                 << " (RocksDB, pull threads, consistent reads x "
                 << "--max_peers): raise the hard limit (ulimit -Hn) to at "
                 << "least " << 2 * needed << ", or lower --max_peers";
  }
  const uint64_t most = limit - reserve;
  uint64_t max = FLAGS_max_connections;
  if (max == 0) max = std::min<uint64_t>(10000, most);
  if (max > most) {
    std::cerr << "--max_connections=" << max << " leaves too few of the "
              << limit << " descriptors (ulimit -n) for RocksDB and peers: "
              << "use at most " << most << ", or raise the limit\n";
    return false;
  }
  options->http.max_connections = static_cast<size_t>(max);
  LOG(INFO) << "accepting at most " << max << " client connections";
  return true;
}

// Blocks SIGTERM and SIGINT in this thread and every thread started after,
// so that only WaitForSignal() sees them.
void BlockStopSignals(sigset_t* set) {
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
  pthread_sigmask(SIG_BLOCK, set, nullptr);
}

int WaitForSignal(const sigset_t& set) {
  int signal = 0;
  sigwait(&set, &signal);
  return signal;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "one node of dist_counter, a distributed database of PN-counters.\n"
      "Usage: dist_counter --challenge_id=1 --port=7777 --data_dir=data/node1"
      " [--actors='[\"host:port\",...]'] [--durable]");
  gflags::SetVersionString("0.1.0");
  gflags::ParseCommandLineNonHelpFlags(&argc, &argv, true);
  if (FLAGS_help || FLAGS_helpshort) {
    // Our own flags only; gflags' --help would bury them among glog's.
    gflags::ShowUsageWithFlagsRestrict(argv[0], "node/main.cc");
    std::cout << "\nEnvironment: CHALLENGE_ID and ACTORS stand in for "
                 "--challenge_id and --actors when those are not given.\n"
                 "--helpfull also lists glog's and gflags' own flags "
                 "(--v, --logtostderr, ...).\n";
    return 0;
  }
  gflags::HandleCommandLineHelpFlags();  // --helpfull, --version, ...
  FLAGS_logtostderr =
      FLAGS_logtostderr || std::getenv("GLOG_log_dir") == nullptr;
  google::InitGoogleLogging(argv[0]);

  if (!FLAGS_restore_from.empty()) return RestoreMain();

  dist_counter::NodeOptions options;
  if (!ReadFlags(&options)) return 2;
  if (!ReadAuthFlags(&options)) return 2;
  if (!SetMaxConnections(RaiseDescriptorLimit(), &options)) return 2;

  // libcurl (peer pulls) initializes once, before any thread exists.
  if (!dist_counter::InitPeerClients()) {
    LOG(ERROR) << "cannot initialize libcurl";
    return 1;
  }

  sigset_t stop_signals;
  BlockStopSignals(&stop_signals);

  std::unique_ptr<dist_counter::Node> node;
  dist_counter::Status s = dist_counter::Node::Start(options, &node);
  if (!s.ok()) {
    LOG(ERROR) << "cannot start: " << s.ToString();
    return 1;
  }

  const int signal = WaitForSignal(stop_signals);
  LOG(INFO) << "signal " << signal << ": flushing and stopping";
  // A second signal while stopping exits at once.
  std::thread([stop_signals] {
    WaitForSignal(stop_signals);
    LOG(WARNING) << "second signal: exiting without a clean stop";
    std::_Exit(1);
  }).detach();

  s = node->Stop();
  node.reset();
  if (!s.ok()) {
    LOG(ERROR) << "final flush failed: " << s.ToString();
    return 1;
  }
  LOG(INFO) << "stopped cleanly";
  return 0;
}
