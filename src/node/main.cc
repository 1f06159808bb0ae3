// dist_counter: one node of a distributed database of PN-counters.
// Reads flags into NodeOptions, starts a Node, and stops it cleanly on
// SIGTERM or SIGINT (a second signal exits at once).

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <thread>

#include "cluster/peer_client.h"
#include "node/node.h"
#include "util/peer_address.h"

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
DEFINE_int32(threads, 2, "HTTP worker threads.");
DEFINE_uint64(max_body_bytes, 64 * 1024,
              "Largest request body accepted; larger ones get 413.");
DEFINE_string(actors, "",
              "Peer list, as a JSON array ([\"host:port\",...]) or "
              "comma-separated. Replaces the stored list at startup. Falls "
              "back to the ACTORS environment variable; when both are empty "
              "the list last set with POST /config is used.");
DEFINE_int32(merge_interval_ms, 1000,
             "How often the merger pulls every peer's changes.");
DEFINE_int32(peer_timeout_ms, 500,
             "Timeout of one request to a peer (pulls and consistent_value).");

DECLARE_bool(help);
DECLARE_bool(helpshort);

namespace {

bool ValidatePositive(const char* flagname, int32_t value) {
  if (value > 0) return true;
  std::cerr << "--" << flagname << " must be positive, got " << value << "\n";
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
const bool kPortValid =
    gflags::RegisterFlagValidator(&FLAGS_port, &ValidatePort);

std::string FlagOrEnv(const std::string& flag, const char* env,
                      const std::string& fallback) {
  if (!flag.empty()) return flag;
  const char* value = std::getenv(env);
  if (value != nullptr && value[0] != '\0') return value;
  return fallback;
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
  if (FLAGS_max_unflushed_ms <= 0 || FLAGS_close_retry_ms < 0 ||
      FLAGS_max_counters == 0) {
    std::cerr << "--max_unflushed_ms and --max_counters must be positive, "
                 "--close_retry_ms must not be negative\n";
    return false;
  }
  options->http.bind = FLAGS_bind;
  options->http.port = static_cast<uint16_t>(FLAGS_port);
  options->http.threads = FLAGS_threads;
  options->http.max_body_bytes = FLAGS_max_body_bytes;
  options->api.max_body_bytes = FLAGS_max_body_bytes;
  options->merge_interval_ms = FLAGS_merge_interval_ms;
  options->peer_timeout_ms = FLAGS_peer_timeout_ms;

  for (char c : options->store.challenge_id) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
      std::cerr << "--challenge_id must be printable without spaces\n";
      return false;
    }
  }
  const std::string actors = FlagOrEnv(FLAGS_actors, "ACTORS", "");
  if (!actors.empty()) {
    dist_counter::Status s =
        dist_counter::ParsePeerList(actors, &options->peers);
    if (!s.ok()) {
      std::cerr << "--actors: " << s.message() << "\n";
      return false;
    }
    options->peers_given = true;
  }
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

  dist_counter::NodeOptions options;
  if (!ReadFlags(&options)) return 2;

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
