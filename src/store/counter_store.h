// CounterStore maps counter names to PN-counter states. States live in
// memory for reads and increments and are persisted in RocksDB (layout in
// codec.h).
//
// Persistence: changed ("dirty") counters are written as one WriteBatch
// every `flush_interval_ms` by a background thread, and by Flush() and
// Close(). In durable mode an increment returns only after a synced
// WriteBatch holding it reached RocksDB's WAL; concurrent increments share
// one sync (group commit).
//
// Identity: this node's increments are recorded under the actor id
// "<challenge_id>.<incarnation>.<node_id>". Unless the last run ended with a
// clean Close() (every count on disk), Open() raises the incarnation with a
// synced write before anything is served. A node restarted after losing
// un-flushed increments therefore never reuses an actor id with a lower
// count, so merges cannot hide its new increments; clean restarts do not
// add actors.
//
// Thread-safe: every method may be called from any thread without external
// locking. Never blocks on the network.

#ifndef DIST_COUNTER_STORE_COUNTER_STORE_H_
#define DIST_COUNTER_STORE_COUNTER_STORE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "crdt/pn_counter.h"
#include "util/status.h"

namespace rocksdb {
class DB;
}

namespace dist_counter {

class Metrics;

struct StoreOptions {
  std::string data_dir;  // RocksDB directory; created if missing
  std::string challenge_id = "DEFAULT";  // names this node's actor ids
  int flush_interval_ms = 5000;  // dirty counters go out as one WriteBatch
  bool durable = false;          // true: acknowledge only after a WAL sync
  Metrics* metrics = nullptr;    // not owned; may be null; must outlive store
};

// One counter's state as returned by ChangesSince().
struct CounterChange {
  std::string name;
  PnCounter state;
  size_t bytes = 0;  // EncodedCounterBytes(state), when known
  // Set by ChangesSince() for a state larger than the byte budget: `state`
  // is then left empty and `bytes` says how large the state is.
  bool omitted = false;
};

class CounterStore {
 public:
  // Opens (creating if needed) the store in options.data_dir, loads every
  // counter, raises the incarnation with a synced write, and starts the
  // flush thread. On success stores the store in *store and returns OK.
  // Returns Busy if another process holds the directory, Corruption if a
  // stored record does not decode (nothing is guessed), IOError otherwise.
  static Status Open(const StoreOptions& options,
                     std::unique_ptr<CounterStore>* store);

  CounterStore(const CounterStore&) = delete;
  CounterStore& operator=(const CounterStore&) = delete;

  // Calls Close() if it was not called.
  ~CounterStore();

  // This node's actor id for this incarnation, e.g. "1.3.3f2a9c01".
  const std::string& actor_id() const { return actor_id_; }
  const std::string& challenge_id() const { return challenge_id_; }
  // 8 hex digits, fixed for the life of the data directory.
  const std::string& node_id() const { return node_id_; }
  uint64_t incarnation() const { return incarnation_; }
  // Random, chosen at each Open(); a ChangesSince() cursor is meaningful
  // only together with the instance id it came from.
  uint64_t instance_id() const { return instance_id_; }

  // Adds `delta` to counter `name` for this node's actor, creating the
  // counter (even for delta 0). Returns InvalidArgument, changing nothing,
  // for an invalid name or if the actor's total would overflow 64 bits. In
  // durable mode returns after the change is synced to the WAL, or IOError.
  Status Increment(const std::string& name, int64_t delta);

  // Called with an increment's result once it is acknowledged.
  using DoneCallback = std::function<void(const Status&)>;

  // Like Increment(), but in durable mode returns without waiting for the
  // WAL sync: `done` runs with the result on the store's commit thread once
  // the change is synced (many increments share one sync). When not
  // durable, when the change is refused, or after Close() began, `done` runs
  // before IncrementAsync returns, on the caller's thread. `done` must not
  // call back into this store's write methods.
  void IncrementAsync(const std::string& name, int64_t delta,
                      DoneCallback done);

  // Applies every (name, delta) as Increment() would, all or nothing: if
  // any one is invalid or would overflow, returns InvalidArgument naming it
  // and changes nothing. A name may appear more than once.
  Status IncrementBatch(
      const std::vector<std::pair<std::string, int64_t>>& deltas);

  // Stores counter `name`'s state in *state and returns OK. If there is no
  // such counter, leaves *state unchanged and returns NotFound.
  Status Get(const std::string& name, PnCounter* state) const;

  // Merges `remote` (a peer's state of `name`) into the local state,
  // creating the counter if needed. Sets *changed (if not null) to whether
  // the local state changed. Persisted with the next flush. Returns
  // InvalidArgument for an invalid name.
  Status Merge(const std::string& name, const PnCounter& remote, bool* changed);

  // Appends to *names up to `limit` counter names that start with `prefix`
  // and sort after `start_after`, in byte order.
  void List(const std::string& prefix, const std::string& start_after,
            size_t limit, std::vector<std::string>* names) const;

  // The number of counters held.
  size_t size() const;

  // Appends to *changes up to `limit` counters changed after cursor
  // `since` (0 = every counter), oldest change first, and stores in *next
  // the cursor to pass next time. Cursors are only valid for this
  // instance_id(). A counter changed again appears once, at its last change.
  //
  // Stops adding changes before their encoded states and names
  // (EncodedCounterBytes, plus the name and a little framing) would exceed
  // `max_bytes`, but always returns at least one change if there is one, so
  // the cursor moves. A state larger than `max_bytes` on its own comes back
  // with `omitted` set and no state, so the caller never holds it: at most
  // about `max_bytes` of states are copied.
  void ChangesSince(uint64_t since, size_t limit, size_t max_bytes,
                    std::vector<CounterChange>* changes, uint64_t* next) const;
  // ChangesSince() without a byte budget.
  void ChangesSince(uint64_t since, size_t limit,
                    std::vector<CounterChange>* changes, uint64_t* next) const {
    ChangesSince(since, limit, SIZE_MAX, changes, next);
  }

  // The cursor of the latest change (0 if nothing changed since Open).
  uint64_t LatestCursor() const;

  // Persists the peer list with a synced write, replacing the old one.
  Status SetPeers(const std::vector<std::string>& peers);
  // The peer list last set (empty if none).
  std::vector<std::string> Peers() const;

  // Writes every dirty counter now as one WriteBatch (synced if `sync`).
  // Returns OK or the write's error (the counters then stay dirty).
  Status Flush(bool sync = false);

  // Stops the flush thread, writes every dirty counter with a synced
  // write, marks the stop clean (so the next Open keeps the incarnation),
  // and closes RocksDB. Later writes return IOError. Idempotent.
  Status Close();

 private:
  struct Entry {
    PnCounter state;
    uint64_t seq = 0;  // cursor of the last change
  };

  explicit CounterStore(const StoreOptions& options);

  Status LoadIdentity();
  Status LoadCounters();
  // Records that `name`'s entry changed: new seq, dirty. Requires mu_.
  void MarkChangedLocked(const std::string& name, Entry* entry);
  // Validates and applies an increment in memory; stores its ticket.
  Status ApplyIncrement(const std::string& name, int64_t delta,
                        uint64_t* ticket);
  // In durable mode, waits until ticket `ticket` is synced (group commit).
  Status CommitThrough(uint64_t ticket);
  void FlushLoop();
  // Durable mode: syncs queued changes and runs their callbacks.
  void CommitLoop();
  void RegisterMetrics();

  const StoreOptions options_;
  std::string challenge_id_;
  std::string node_id_;
  uint64_t incarnation_ = 0;
  std::string actor_id_;
  uint64_t instance_id_ = 0;
  std::unique_ptr<rocksdb::DB> db_;

  mutable std::mutex mu_;  // guards everything from here to write_mu_
  std::map<std::string, Entry> counters_;
  std::map<uint64_t, std::string> by_seq_;  // seq -> name, one per counter
  std::set<std::string> dirty_;             // changed since last write
  uint64_t next_seq_ = 0;                   // last seq handed out
  uint64_t ticket_ = 0;                     // changes made, ever
  std::vector<std::string> peers_;
  bool closed_ = false;

  std::mutex write_mu_;           // serializes RocksDB writes of counters
  uint64_t written_through_ = 0;  // tickets persisted; guarded by write_mu_

  std::mutex flush_mu_;  // guards stop_flush_; with flush_cv_
  std::condition_variable flush_cv_;
  bool stop_flush_ = false;
  std::thread flush_thread_;

  struct PendingAck {
    uint64_t ticket;
    DoneCallback done;
  };
  std::mutex commit_mu_;  // guards pending_, stop_commit_; with commit_cv_
  std::condition_variable commit_cv_;
  std::deque<PendingAck> pending_;  // async increments awaiting their sync
  bool stop_commit_ = false;
  std::thread commit_thread_;  // runs CommitLoop() in durable mode

  // Metrics (null-safe through the helpers in the .cc).
  std::atomic<uint64_t>* increments_metric_ = nullptr;
  std::atomic<uint64_t>* flushes_metric_ = nullptr;
  std::atomic<uint64_t>* flush_micros_metric_ = nullptr;
  std::atomic<uint64_t>* flushed_counters_metric_ = nullptr;
  std::atomic<int64_t>* last_batch_metric_ = nullptr;
  std::atomic<int64_t>* counters_metric_ = nullptr;
  std::atomic<uint64_t>* merges_applied_metric_ = nullptr;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_STORE_COUNTER_STORE_H_
