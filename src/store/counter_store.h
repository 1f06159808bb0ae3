// CounterStore maps counter names to PN-counter states. States live in
// memory for reads and increments and are persisted in RocksDB (layout in
// codec.h).
//
// Persistence: changed ("dirty") counters are written as one WriteBatch
// every `flush_interval_ms` by a background thread (scheduled start to
// start), and by Flush() and Close(). In durable mode an increment is
// staged, written with a synced WriteBatch, and only then published (made
// visible to Get(), ChangesSince() and so to peers); concurrent increments
// share one sync (group commit). A failed sync discards what it staged.
//
// Asynchronous writes: IncrementAsync(), IncrementBatchAsync(),
// IncrementOnceAsync(), IncrementBatchOnceAsync() and ResetAsync() never
// wait for the disk on the caller's thread. What must (a durable sync, a
// key's record read from RocksDB, a durable reset's own write) is done by
// the commit thread, which runs in both modes: each round it takes
// everything queued, does the work in order of arrival, syncs once for all
// of it, and runs the callbacks.
//
// Storage health: once a write fails (full disk, I/O error, no
// descriptors) or the data directory is removed or replaced, the store is
// unavailable: increments are refused with StorageUnavailable, reads and
// merges go on in memory, Health() says why. A background thread retries
// (RocksDB's Resume(), else closing and reopening the DB) and, once every
// dirty counter is written again with a synced write, accepts writes
// again. A lost data directory needs a restart. In default mode the
// un-persisted backlog is bounded too: increments are refused while the
// last successful flush began more than max_unflushed_ms ago.
//
// Identity: this node's increments are recorded under the actor id
// "<challenge_id>.<incarnation>.<node_id>". Unless the last run ended with a
// clean Close() (every count on disk), Open() raises the incarnation with a
// synced write before anything is served. A node restarted after losing
// un-flushed increments therefore never reuses an actor id with a lower
// count, so merges cannot hide its new increments; clean restarts do not
// add actors. Open() also starts above any actor of this node with an
// incarnation it never used that a stored counter holds (older versions
// took such actors from peers), logging a WARNING. While running, a peer
// found holding more for the current actor than this node does (a data
// directory copied or put back from a file system snapshot) makes the store
// move to a new incarnation at once (CheckPeerOwnCount()), at most once per
// min_incarnation_move_interval_s: see "Moves are rate limited" below.
//
// Moves are rate limited, and the limit loses no increment. A move is a new
// actor in every counter this node increments, for good; a peer that could
// make the node move at will could grow every counter's actor list to its
// bound (and freeze replication of it) in minutes. So a move is made only
// if none was made in the last min_incarnation_move_interval_s; the first
// move of a process is never delayed. Evidence within the interval is
// refused (Busy, counted in dist_counter_incarnation_moves_refused_total),
// not remembered for later: increments go on under the current actor, and
// none of them can be hidden, because:
//   - the current actor is then one this process moved to less than the
//     interval ago. Its incarnation is the larger of the next one and the
//     current time in microseconds, written with a synced write before any
//     increment used it, so it was never used before (barring a clock set
//     back by more than the gap): every count under it was issued by this
//     process, and every copy a peer holds came from this node, at most
//     what it published. A peer claiming more for it forged the claim (or
//     is a confused or hostile node); it is not evidence of lost data.
//   - this node never takes a peer's totals for its current actor (the
//     merger drops them), so its own value counts every increment;
//   - a node that would take the forged totals from that peer trusts it
//     with every other actor too: it can be fed any value, and a move would
//     not help, since the forger can claim the new actor as fast.
// Moving later instead (when the interval has passed) would protect
// nothing the refusal does not, and raising our count to the claim would
// count increments never made. After the interval a new claim moves again:
// a lying (configured) peer costs at most one actor per interval, and a
// claim made true by a clock set back still gets its move, at most one
// interval late. Only the merger's pulls call CheckPeerOwnCount(); a
// refresh for a consistent read never moves the node (cluster/merger.h).
//
// Backups (counter_store_backup.cc, store/backup.h): CreateBackup() flushes
// and makes a RocksDB checkpoint under options.backup_dir, keeping the
// newest backups_to_keep.
//
// Thread-safe: every method may be called from any thread without external
// locking. Never blocks on the network.
//
// Locks (util/mutex.h; clang's -Wthread-safety checks the GUARDED_BY and
// REQUIRES below, scripts/check_thread_safety.sh runs it). Lock order:
//   backup_mu_ -> write_mu_ -> mu_
// backup_mu_ serializes backups and is held across one (a flush, a
// checkpoint, its check and the pruning).
// write_mu_ serializes RocksDB writes and is held across them (flushes,
// syncs, recovery); mu_ guards the in-memory state and is never held
// across a RocksDB write or a file system check (only Open() reads RocksDB
// under it). flush_mu_ and commit_mu_ are leaves: nothing else is taken
// while either is held, and neither is taken while another lock is held.
// Callbacks (DoneCallback) run with no lock held.

#ifndef DIST_COUNTER_STORE_COUNTER_STORE_H_
#define DIST_COUNTER_STORE_COUNTER_STORE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "crdt/pn_counter.h"
#include "store/idempotency.h"
#include "util/mutex.h"
#include "util/status.h"
#include "util/thread_annotations.h"

namespace rocksdb {
class DB;
class Env;
class WriteBatch;
}  // namespace rocksdb

namespace dist_counter {

class Metrics;
struct BackupInfo;

struct StoreOptions {
  std::string data_dir;  // RocksDB directory; created if missing
  std::string challenge_id = "DEFAULT";  // names this node's actor ids
  int flush_interval_ms = 5000;  // dirty counters go out as one WriteBatch
  bool durable = false;          // true: acknowledge only after a WAL sync
  // Default mode: increments are refused (StorageUnavailable) while the last
  // successful flush began longer ago than this; at least three flush
  // intervals are always allowed. Bounds what a crash can lose.
  int max_unflushed_ms = 30000;
  // Close() retries a failing final flush for this long before giving up.
  int close_retry_ms = 10000;
  // Increments and merges that would create a counter beyond this many
  // (names awaiting a durable sync included) get ResourceExhausted.
  size_t max_counters = 10000000;
  // Merges from peers create new counters only while fewer than this many
  // are held (names awaiting a durable sync included); beyond it a peer's
  // new counter gets ResourceExhausted (counted in a metric), while its
  // known counters still merge. The rest of max_counters is a reserve that
  // only this node's increments can fill, so a hostile peer cannot take
  // every slot from the clients. 0 means 90% of max_counters (all of it
  // when that rounds to nothing); Open() refuses a value above max_counters.
  size_t max_peer_counters = 0;
  // Files RocksDB keeps open at once (its table cache of SST files; WAL,
  // MANIFEST and LOCK come on top). Bounded because RocksDB's default (-1)
  // keeps every SST file open, so a large data dir would outgrow the
  // descriptor reserve the HTTP server leaves beside its client connections
  // (256 descriptors, shared with the peer connections) and RocksDB would
  // fail with "Too many open files". Must be positive (Open() refuses
  // others); RocksDB raises values below 20 to 20. SST files beyond the
  // bound are reopened as reads and compactions need them.
  int max_open_files = 128;
  // Directory holding CreateBackup()'s backups, one subdirectory each;
  // created if missing. Empty: backups are disabled. Must not be data_dir
  // or inside it (Open() refuses that).
  std::string backup_dir;
  // CreateBackup() removes the oldest backups beyond this many (at least
  // 1 is kept).
  size_t backups_to_keep = 7;
  // IncrementOnce(): a key's record is kept this long after its first use
  // (then it is unknown again, and compaction drops it from disk).
  int64_t idempotency_window_s = 86400;
  // IncrementOnce(): at most this many records are cached in memory (the
  // oldest go first); the others are read from RocksDB when asked for.
  // Records not yet written (until the next flush) are held besides.
  size_t idempotency_cache_keys = 100000;
  // CheckPeerOwnCount() moves to a new incarnation at most once per this
  // many seconds (see "Moves are rate limited" above); 0: no limit.
  int64_t min_incarnation_move_interval_s = 60;
  // A monotonic clock in milliseconds for that limit; null:
  // std::chrono::steady_clock. For tests.
  std::function<int64_t()> now_ms;
  Metrics* metrics = nullptr;  // not owned; may be null; must outlive store
  // Test-only: RocksDB uses this Env (e.g. one that injects write faults)
  // instead of the default. Not owned; must outlive the store.
  rocksdb::Env* TEST_env = nullptr;
  // Test-only: the clock by which storage ERRORs repeat (at most every
  // 30 s) and a recovery reports how long storage was unavailable. Empty:
  // std::chrono::steady_clock::now. Called from any thread, under locks.
  std::function<std::chrono::steady_clock::time_point()> TEST_now;
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

// What IncrementOnce() did.
enum class IdempotentOutcome {
  kApplied,    // the key was new: the increment was applied and recorded
  kReplayed,   // the key is known with the same request: nothing applied
  kKeyReused,  // the key is known with another request: nothing applied
};

class CounterStore {
 public:
  // Opens (creating if needed) the store in options.data_dir, loads every
  // counter, raises the incarnation with a synced write, and starts the
  // flush thread. On success stores the store in *store and returns OK.
  // Returns InvalidArgument for invalid options (max_peer_counters above
  // max_counters among them), Busy if another process
  // holds the directory, Corruption if a stored record does not decode
  // (nothing is guessed), IOError otherwise.
  static Status Open(const StoreOptions& options,
                     std::unique_ptr<CounterStore>* store);

  CounterStore(const CounterStore&) = delete;
  CounterStore& operator=(const CounterStore&) = delete;

  // Calls Close() if it was not called.
  ~CounterStore();

  // This node's actor id for the current incarnation, e.g. "1.3.3f2a9c01".
  // It changes when CheckPeerOwnCount() moves to a new incarnation.
  std::string actor_id() const EXCLUDES(mu_);
  const std::string& challenge_id() const { return challenge_id_; }
  // 8 hex digits, fixed for the life of the data directory.
  const std::string& node_id() const { return node_id_; }
  // The current incarnation; it only grows.
  uint64_t incarnation() const EXCLUDES(mu_);
  // Peers may give back this node's own actors only for incarnations below
  // this one: the current incarnation, or the first one this process
  // started if that is lower. An incarnation this process started (raised
  // at Open, or moved to) was never used before it, so what this node holds
  // for it is all there is, and a peer claiming more for it forged it or is
  // a copy of this node; one kept after a clean stop continues earlier
  // runs, which may have issued more than the data dir holds (put back
  // from a snapshot), so once this node moved away from it, peers' totals
  // for it merge.
  uint64_t FirstRefusedIncarnation() const EXCLUDES(mu_);
  // Random, chosen at each Open(); a ChangesSince() cursor is meaningful
  // only together with the instance id it came from.
  uint64_t instance_id() const { return instance_id_; }

  // Adds `delta` to counter `name` for this node's actor, creating the
  // counter (even for delta 0). Changing nothing, returns InvalidArgument
  // for an invalid name or if the actor's total would overflow 64 bits,
  // ResourceExhausted if the counter is new and max_counters are held,
  // StorageUnavailable while the store cannot persist (see Health()), and
  // IOError after Close(). In durable mode returns OK once the change is
  // synced to the WAL and visible; if the sync fails, the change is
  // discarded (never visible, never sent to peers) and the result is
  // StorageUnavailable.
  Status Increment(const std::string& name, int64_t delta)
      EXCLUDES(write_mu_, mu_);

  // Called with an increment's result once it is acknowledged.
  using DoneCallback = std::function<void(const Status&)>;

  // Like Increment(), but in durable mode returns without waiting for the
  // WAL sync: `done` runs with the result on the store's commit thread once
  // the change is synced (many increments share one sync). When not
  // durable, when the change is refused, or after Close() began, `done` runs
  // before IncrementAsync returns, on the caller's thread. `done` must not
  // call back into this store's write methods.
  void IncrementAsync(const std::string& name, int64_t delta, DoneCallback done)
      EXCLUDES(write_mu_, mu_, commit_mu_);

  // Like IncrementBatch(), but never waits for the disk: in durable mode
  // `done` runs with the result on the commit thread once the batch is
  // synced (sharing the sync with other changes). When not durable, when
  // the batch is refused or empty, or after Close() began, `done` runs
  // before IncrementBatchAsync returns, on the caller's thread. `done` must
  // not call back into this store's write methods.
  void IncrementBatchAsync(
      const std::vector<std::pair<std::string, int64_t>>& deltas,
      DoneCallback done) EXCLUDES(write_mu_, mu_, commit_mu_);

  // Applies every (name, delta) as Increment() would, all or nothing: if
  // any one is invalid or would overflow, returns InvalidArgument naming it
  // and changes nothing; the other refusals of Increment() apply to the
  // whole batch. A name may appear more than once.
  Status IncrementBatch(
      const std::vector<std::pair<std::string, int64_t>>& deltas)
      EXCLUDES(write_mu_, mu_);

  // Increment() at most once per `key` (an Idempotency-Key, see
  // ValidateIdempotencyKey() in store/idempotency.h) within
  // options.idempotency_window_s. `fingerprint` identifies the request
  // (see store/idempotency.h) and `reply` is what the caller answers it
  // with; the store keeps both, opaque, in the key's record (idem/<key>).
  // If the key is unknown (or expired), applies the increment as
  // Increment() does and, if that succeeded, records the key in the same
  // write as the increment (the same WriteBatch when flushed, the same
  // synced write in durable mode): the record is on disk exactly when the
  // increment is. Sets *outcome to kApplied and *reply to `reply`.
  // If the key is known for the same request (SameRequest()), sets
  // kReplayed and the recorded reply; for another, kKeyReused; either way
  // nothing is applied. A retry that arrives while the first request of its
  // key awaits its durable sync waits for that sync and gets its result.
  // Returns what Increment() would (the key stays unknown then), or
  // InvalidArgument for an invalid key, or StorageUnavailable if the
  // record could not be read. Blocks for the sync in durable mode.
  Status IncrementOnce(const std::string& key,
                       const RequestFingerprint& fingerprint, int reply,
                       const std::string& name, int64_t delta,
                       IdempotentOutcome* outcome, int* recorded_reply)
      EXCLUDES(write_mu_, mu_);

  // Called with an IncrementOnce() result once it is acknowledged: the
  // status it returns and, when that is OK, the outcome and recorded reply.
  using OnceCallback =
      std::function<void(const Status&, IdempotentOutcome, int)>;

  // IncrementOnce() that never waits for the disk on the caller's thread:
  // the key's lookup (in memory, else in RocksDB), the increment and the
  // record are done on the store's commit thread, in order of arrival,
  // and in durable mode the changes of everything queued meanwhile share
  // one sync; `done` then runs there with the result. Each guarantee of
  // IncrementOnce() holds: applied at most once per key, the record on
  // disk exactly when the increment is, a failed sync forgets both, a
  // retry meeting its first request's sync gets its result. An invalid
  // key or name is refused with `done` run before IncrementOnceAsync
  // returns, on the caller's thread, and so is all work after Close()
  // began (then it may block). `done` must not call back into this
  // store's write methods.
  void IncrementOnceAsync(const std::string& key,
                          const RequestFingerprint& fingerprint, int reply,
                          const std::string& name, int64_t delta,
                          OnceCallback done)
      EXCLUDES(write_mu_, mu_, commit_mu_);

  // IncrementBatch() at most once per `key`, as IncrementOnce() is for
  // Increment(): the key's record goes in the same write as the batch.
  Status IncrementBatchOnce(
      const std::string& key, const RequestFingerprint& fingerprint, int reply,
      const std::vector<std::pair<std::string, int64_t>>& deltas,
      IdempotentOutcome* outcome, int* recorded_reply) EXCLUDES(write_mu_, mu_);

  // IncrementBatchOnce() as IncrementOnceAsync() is for IncrementOnce().
  void IncrementBatchOnceAsync(
      const std::string& key, const RequestFingerprint& fingerprint, int reply,
      const std::vector<std::pair<std::string, int64_t>>& deltas,
      OnceCallback done) EXCLUDES(write_mu_, mu_, commit_mu_);

  // Idempotency records held in memory: the bounded cache plus those not
  // yet written. For tests and metrics.
  size_t IdempotencyRecordsInMemory() const EXCLUDES(mu_);
  // Test-only: compacts the whole database (so expired idempotency records
  // are dropped now).
  Status TEST_CompactAll() EXCLUDES(write_mu_);

  // Resets counter `name` to zero as this node sees it (PnCounter::Reset():
  // every actor's baseline rises to its totals; increments this node has
  // not seen, staged durable ones included, survive). A change like any
  // other: the counter keeps its name, the reset goes out with the next
  // flush and to peers with the state. Returns NotFound if no such counter
  // is visible here, StorageUnavailable while the store cannot persist (see
  // Health()), IOError after Close(); a counter already at its baselines
  // is OK without a write. In durable mode returns OK once the reset is
  // synced to the WAL and only then makes it visible; if the sync fails,
  // the reset is discarded (never visible, never sent to peers) and the
  // result is StorageUnavailable.
  Status Reset(const std::string& name) EXCLUDES(write_mu_, mu_);

  // Reset() that never waits for the disk on the caller's thread: in
  // durable mode the reset and its sync are done on the store's commit
  // thread, which then runs `done` with the result. When not durable, or
  // after Close() began, `done` runs before ResetAsync returns, on the
  // caller's thread. `done` must not call back into this store's write
  // methods.
  void ResetAsync(const std::string& name, DoneCallback done)
      EXCLUDES(write_mu_, mu_, commit_mu_);

  // Stores counter `name`'s state in *state and returns OK. If there is no
  // such counter, leaves *state unchanged and returns NotFound.
  Status Get(const std::string& name, PnCounter* state) const EXCLUDES(mu_);

  // Merges `remote` (a peer's state of `name`) into the local state,
  // creating the counter if needed, except that an empty `remote` never
  // creates one (reads fetch peers' states of names nobody incremented).
  // Sets *changed (if not null) to whether the local state changed.
  // Persisted with the next flush; accepted while the storage is
  // unavailable (it is written on recovery). Returns InvalidArgument for an
  // invalid name, ResourceExhausted (counted in a metric by reason) if the
  // counter is new and max_counters, or max_peer_counters, are held, and
  // IOError after Close().
  Status Merge(const std::string& name, const PnCounter& remote, bool* changed)
      EXCLUDES(mu_);

  // Appends to *names up to `limit` counter names that start with `prefix`
  // and sort after `start_after`, in byte order.
  void List(const std::string& prefix, const std::string& start_after,
            size_t limit, std::vector<std::string>* names) const EXCLUDES(mu_);

  // The number of counters held.
  size_t size() const EXCLUDES(mu_);

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
                    std::vector<CounterChange>* changes, uint64_t* next) const
      EXCLUDES(mu_);
  // ChangesSince() without a byte budget.
  void ChangesSince(uint64_t since, size_t limit,
                    std::vector<CounterChange>* changes, uint64_t* next) const {
    ChangesSince(since, limit, SIZE_MAX, changes, next);
  }

  // The cursor of the latest change (0 if nothing changed since Open).
  uint64_t LatestCursor() const EXCLUDES(mu_);

  // Persists the peer list with a synced write, replacing the old one.
  Status SetPeers(const std::vector<std::string>& peers)
      EXCLUDES(write_mu_, mu_);
  // The peer list last set (empty if none).
  std::vector<std::string> Peers() const EXCLUDES(mu_);

  // Told that a peer's state of counter `name` holds `counts` for `actor`,
  // one of this node's own actors. If `actor` is the current actor and
  // `counts` is above (in p or in n) what this node holds for it, the peer
  // has seen increments this node no longer has (its data directory was
  // copied, or put back from a snapshot taken while it was stopped), and
  // further increments under this actor could be hidden by the max-merge.
  // The store then moves to a new incarnation, never used before: the
  // larger of the next one and the current time in microseconds, written
  // with a synced write before any increment uses it, and logged at ERROR.
  // Increments running meanwhile land whole under the old or the new
  // actor (durable ones still awaiting their sync go to the new one).
  // Afterwards peers' totals for `actor` merge unless this process started
  // its incarnation (see FirstRefusedIncarnation()). Sets *moved (if not null)
  // to whether this call moved. Returns OK when there is nothing to do or the
  // move is made; Busy, moving nothing, if a move was made less than
  // min_incarnation_move_interval_s ago (the claim is then forged: see
  // "Moves are rate limited" above; counted in a metric, logged by the
  // caller, who knows the peer); StorageUnavailable if the new incarnation
  // could not be written: increments are then refused until the store
  // recovers, and recovery makes the move first. IOError after Close().
  Status CheckPeerOwnCount(const std::string& name, const std::string& actor,
                           const ActorCounts& counts, bool* moved)
      EXCLUDES(write_mu_, mu_);

  // Backs up the live store: writes every changed counter with a synced
  // write (so everything acknowledged so far is in the backup), makes a
  // RocksDB checkpoint in a new subdirectory of options.backup_dir, opens
  // it read-only to count its counters, then removes the oldest backups
  // beyond backups_to_keep. Backups never run concurrently (a second
  // caller waits). On success fills *info (name, path, counters, bytes)
  // and returns OK; a failed prune is logged, not returned. Returns
  // Unavailable if options.backup_dir is empty, StorageUnavailable while
  // the store cannot persist (the flush failed), IOError if the checkpoint
  // cannot be made (nothing is left behind but a partial directory that
  // the next backup removes) or after Close().
  Status CreateBackup(BackupInfo* info) EXCLUDES(backup_mu_, write_mu_, mu_);

  // Stores the backups under options.backup_dir in *backups, oldest first.
  // Returns Unavailable if options.backup_dir is empty, IOError if it
  // cannot be read (a missing directory is an empty list).
  Status ListBackups(std::vector<BackupInfo>* backups) const;

  // OK while the store can persist. Otherwise StorageUnavailable whose
  // message says why (a failed write, no flush for too long, the data
  // directory gone); increments are then refused.
  Status Health() const EXCLUDES(mu_);

  // Writes every dirty counter now as one WriteBatch (synced if `sync`).
  // While the store is unavailable, first tries to recover (Resume(), else
  // reopening RocksDB). Returns OK, or StorageUnavailable saying why (the
  // counters then stay dirty and the store is unavailable), or IOError
  // after Close().
  Status Flush(bool sync = false) EXCLUDES(write_mu_, mu_);

  // Stops the flush thread, writes every dirty counter with a synced write
  // (retrying for up to close_retry_ms), marks the stop clean (so the next
  // Open keeps the incarnation), and closes RocksDB. Returns
  // StorageUnavailable if the final write could not be made: then some
  // acknowledged counts are not on disk. Later writes return IOError.
  // Idempotent: later calls return OK.
  Status Close() EXCLUDES(write_mu_, mu_, flush_mu_, commit_mu_);

 private:
  struct Entry {
    PnCounter state;
    uint64_t seq = 0;  // cursor of the last change
  };
  // A range of durable tickets whose sync failed, and why.
  struct FailedTickets {
    uint64_t first;
    uint64_t last;
    Status status;
  };
  using Clock = std::chrono::steady_clock;
  // Warnings and errors of a lasting condition repeat at most this often.
  static constexpr std::chrono::seconds kLogEvery{30};

  explicit CounterStore(const StoreOptions& options);

  // Open()'s work before the threads start: opens RocksDB, loads identity
  // and counters, and persists the identity to use.
  Status Load() EXCLUDES(write_mu_, mu_);
  // Opens RocksDB on data_dir into db_ (creating it only if `create`).
  Status OpenDb(bool create) REQUIRES(write_mu_);
  // Reads node id, incarnation (raised unless the last stop was clean),
  // and peers from disk; writes nothing. Stores in *recorded the
  // incarnation found on disk (0 if none).
  Status LoadIdentity(uint64_t* recorded) REQUIRES(write_mu_);
  Status LoadCounters() REQUIRES(write_mu_) EXCLUDES(mu_);
  // Raises incarnation_ above any actor of this node with an incarnation
  // above `recorded` (one it never used) found in the loaded counters,
  // logged at WARNING; at the highest possible incarnation, takes a new
  // node id instead.
  void SkipPoisonedIncarnations(uint64_t recorded) EXCLUDES(mu_);
  // Sets actor_id_ and persists the identity with a synced write.
  Status WriteIdentity() REQUIRES(write_mu_) EXCLUDES(mu_);
  // True if `counts` is above this actor's published counts of `name`.
  bool AboveOwnLocked(const std::string& name, const ActorCounts& counts) const
      REQUIRES(mu_);
  // Busy (counted in a metric) if a move was made less than
  // min_incarnation_move_interval_s ago, else OK.
  Status CheckMoveAllowedLocked(const std::string& name,
                                const ActorCounts& counts) REQUIRES(mu_);
  // options_.now_ms(), or the steady clock in milliseconds.
  int64_t NowMs() const;
  // Moves to a new incarnation (see CheckPeerOwnCount()): writes it with a
  // synced write, then switches actor_id_ and rebases staged durable
  // increments onto the new actor. `why` goes into the ERROR log line. On
  // a failed write the store is unavailable and the move stays pending.
  Status ReincarnateLocked(const std::string& why) REQUIRES(write_mu_)
      EXCLUDES(mu_);
  // Records that `name`'s entry changed: new seq, a ticket, and (if
  // `dirty`) a place in the next flush.
  void MarkChangedLocked(const std::string& name, Entry* entry,
                         bool dirty = true) REQUIRES(mu_);
  // Gives an empty state (a counter created with 0) this node's actor at
  // zero, so that peers, which never create a counter from an empty state,
  // learn of it.
  void KeepCreated(PnCounter* state) const REQUIRES(mu_);
  // Why an increment of `fresh` new names cannot be taken now, or OK.
  Status CheckWritableLocked(size_t fresh) const REQUIRES(mu_);
  // The longest time without a successful flush before increments are
  // refused (default mode).
  std::chrono::milliseconds UnflushedLimit() const;
  // The most counters held for which a peer's merge may still create one
  // (max_peer_counters, or its default share of max_counters).
  size_t PeerCounterLimit() const;
  // Counts `items` refused increments by the reason in `status`.
  void CountRefusal(const Status& status, uint64_t items);
  // The state `name` will have once `own` (this actor's staged totals) is
  // published.
  PnCounter StagedStateLocked(const std::string& name,
                              const ActorCounts& own) const REQUIRES(mu_);
  // True if `name` is held or awaits its durable sync.
  bool ExistsLocked(const std::string& name) const REQUIRES(mu_);
  // This node's actor's totals of `name`, staged changes included.
  ActorCounts OwnCountsLocked(const std::string& name) const REQUIRES(mu_);
  // Validates and applies (default mode) or stages (durable mode) an
  // increment; stores its ticket.
  Status ApplyIncrement(const std::string& name, int64_t delta,
                        uint64_t* ticket) EXCLUDES(mu_);
  // ApplyIncrement() after the name check, with mu_ held.
  Status ApplyIncrementLocked(const std::string& name, int64_t delta,
                              uint64_t* ticket) REQUIRES(mu_);
  // IncrementBatch()'s work after the name checks, with mu_ held: applies
  // (or stages) every delta or none, and stores the ticket.
  Status ApplyBatchLocked(
      const std::vector<std::pair<std::string, int64_t>>& deltas,
      uint64_t* ticket) REQUIRES(mu_);
  // IncrementOnce() and IncrementBatchOnce() after their checks: `deltas`
  // is applied as IncrementBatch() if `batch`, else its one item as
  // Increment().
  Status ApplyOnce(const std::string& key,
                   const RequestFingerprint& fingerprint, int reply,
                   const std::vector<std::pair<std::string, int64_t>>& deltas,
                   bool batch, IdempotentOutcome* outcome, int* recorded_reply)
      EXCLUDES(write_mu_, mu_);
  // ApplyOnce() up to the sync, which it leaves to the caller: stores in
  // *ticket the durable ticket to wait for (0: none) and in *increments
  // how many increments to count once it is synced.
  Status StageOnce(const std::string& key,
                   const RequestFingerprint& fingerprint, int reply,
                   const std::vector<std::pair<std::string, int64_t>>& deltas,
                   bool batch, IdempotentOutcome* outcome, int* recorded_reply,
                   uint64_t* ticket, uint64_t* increments)
      EXCLUDES(write_mu_, mu_);
  // IncrementOnceAsync() and IncrementBatchOnceAsync() after their checks.
  void ApplyOnceAsync(const std::string& key,
                      const RequestFingerprint& fingerprint, int reply,
                      std::vector<std::pair<std::string, int64_t>> deltas,
                      bool batch, OnceCallback done)
      EXCLUDES(write_mu_, mu_, commit_mu_);
  // An idempotency record not yet on disk.
  struct UnwrittenRecord {
    IdempotencyRecord record;
    uint64_t ticket = 0;   // durable mode: the increment it guards
    bool writing = false;  // in the batch WriteLocked() is writing
  };
  // The record of `key` held in memory (unwritten or cached) in *record
  // and, if it awaits a durable sync, its ticket in *ticket (else 0).
  // False if none is held or it expired before `now`.
  bool FindRecordLocked(const std::string& key, int64_t now,
                        IdempotencyRecord* record, uint64_t* ticket) const
      REQUIRES(mu_);
  // Adds `record` of `key` to the bounded cache, evicting the oldest.
  void CacheRecordLocked(const std::string& key,
                         const IdempotencyRecord& record) REQUIRES(mu_);
  // WriteLocked()'s part: adds unwritten records and pending deletions to
  // `batch`, marking them as being written.
  void AddRecordsToBatchLocked(rocksdb::WriteBatch* batch) REQUIRES(mu_);
  // After WriteLocked()'s write: on success forgets what it wrote from the
  // unwritten set; on failure keeps it for the next write.
  void RecordsWrittenLocked(bool ok) REQUIRES(mu_);
  // The entry of `name` that Reset() may change, in *entry; NotFound,
  // IOError or StorageUnavailable as Reset() says.
  Status FindResettableLocked(const std::string& name, Entry** entry)
      REQUIRES(mu_);
  // Reset() in durable mode: writes the reset state with its own synced
  // write, then publishes it.
  Status ResetDurable(const std::string& name) EXCLUDES(write_mu_, mu_);
  // In durable mode, waits until ticket `ticket` is synced and published
  // (group commit) or failed, and returns which.
  Status CommitThrough(uint64_t ticket) EXCLUDES(write_mu_, mu_);
  // The result of resolved ticket `ticket`.
  Status TicketResultLocked(uint64_t ticket) const REQUIRES(write_mu_);
  // Flush() with write_mu_ held.
  Status FlushLocked(bool sync) REQUIRES(write_mu_) EXCLUDES(mu_);
  // Writes dirty and staged counters as one batch; on success publishes
  // the staged ones, on failure makes the store unavailable. A write
  // that lands after the data dir was removed counts as failed.
  Status WriteLocked(bool sync) REQUIRES(write_mu_) EXCLUDES(mu_);
  // Fails every staged durable change with `status` and schedules its
  // counters to be rewritten from their published state.
  void FailStagedLocked(const Status& status) REQUIRES(write_mu_) EXCLUDES(mu_);
  // While unavailable: checks the data dir, then Resume()s or reopens
  // RocksDB. OK if writes may be tried.
  Status RecoverLocked() REQUIRES(write_mu_) EXCLUDES(mu_);
  // Enters (or stays in) the unavailable state; logs at ERROR,
  // rate-limited.
  void SetUnavailableLocked(const std::string& reason, bool dir_lost)
      REQUIRES(mu_);
  // True if the data dir is not the one opened (removed or replaced).
  bool DataDirLost(std::string* why) const;
  // Marks the store unavailable for good if the data dir is lost.
  void CheckDataDir() EXCLUDES(mu_);
  // Waits until `wake` or until Close() stops the flush thread; true if
  // it did.
  bool SleepUntil(Clock::time_point wake) EXCLUDES(flush_mu_);
  // options_.TEST_now() if set, else Clock::now(): the time of the storage
  // error log's rate limit.
  Clock::time_point LogNow() const;
  void FlushLoop() EXCLUDES(write_mu_, mu_, flush_mu_);
  // Runs queued work and syncs queued changes (PendingAck), then their
  // callbacks. Runs in both modes: keyed increments go through it too.
  void CommitLoop() EXCLUDES(write_mu_, mu_, commit_mu_);
  struct PendingAck;
  // Queues `ack` for the commit thread; once Close() began, resolves it
  // on the caller's thread instead.
  void Enqueue(PendingAck ack) EXCLUDES(write_mu_, mu_, commit_mu_);
  // Runs the work of each of `acks`, then one sync for all of their
  // tickets, then each one's callback with its result.
  void ResolveAcks(std::deque<PendingAck>* acks)
      EXCLUDES(write_mu_, mu_, commit_mu_);
  void RegisterMetrics();

  const StoreOptions options_;
  std::string challenge_id_;
  std::string node_id_;
  uint64_t instance_id_ = 0;
  uint64_t dir_dev_ = 0;  // identity of data_dir at Open, for DataDirLost()
  uint64_t dir_ino_ = 0;

  // Serializes backups (held across one); taken before write_mu_.
  Mutex backup_mu_;
  // Serializes RocksDB writes (held across them); taken before mu_.
  Mutex write_mu_ ACQUIRED_AFTER(backup_mu_);
  // Null only while reopening fails.
  std::unique_ptr<rocksdb::DB> db_ GUARDED_BY(write_mu_);
  bool db_closed_ GUARDED_BY(write_mu_) = false;  // Close() finished
  // Durable tickets synced or failed.
  uint64_t resolved_through_ GUARDED_BY(write_mu_) = 0;
  // One per failed sync.
  std::vector<FailedTickets> failed_tickets_ GUARDED_BY(write_mu_);

  // Guards the in-memory state; never held across I/O.
  mutable Mutex mu_ ACQUIRED_AFTER(write_mu_);
  // This node's identity for increments: changed (under write_mu_ and
  // mu_) only by Open() and ReincarnateLocked().
  uint64_t incarnation_ GUARDED_BY(mu_) = 0;
  std::string actor_id_ GUARDED_BY(mu_);
  // A move to a new incarnation whose synced write failed: recovery makes
  // it before increments are taken again.
  bool reincarnate_pending_ GUARDED_BY(mu_) = false;
  // The first incarnation this process started (see
  // FirstRefusedIncarnation()); set by Open().
  uint64_t fresh_from_ GUARDED_BY(mu_) = UINT64_MAX;
  // When the last move to a new incarnation was made (NowMs()), if any.
  bool moved_ GUARDED_BY(mu_) = false;
  int64_t last_move_ms_ GUARDED_BY(mu_) = 0;
  std::map<std::string, Entry> counters_ GUARDED_BY(mu_);
  // seq -> name, one per counter.
  std::map<uint64_t, std::string> by_seq_ GUARDED_BY(mu_);
  std::set<std::string> dirty_ GUARDED_BY(mu_);  // changed since last write
  // Durable mode: this actor's totals including changes not yet synced;
  // staged_ waits for the next write, inflight_ is being written.
  std::map<std::string, ActorCounts> staged_ GUARDED_BY(mu_);
  std::map<std::string, ActorCounts> inflight_ GUARDED_BY(mu_);
  uint64_t next_seq_ GUARDED_BY(mu_) = 0;  // last seq handed out
  uint64_t ticket_ GUARDED_BY(mu_) = 0;    // changes made, ever
  std::vector<std::string> peers_ GUARDED_BY(mu_);
  // Idempotency records: the bounded cache (insertion order in
  // idem_order_, which may repeat a key), those not yet on disk, and keys
  // whose record must be deleted (its durable sync failed).
  std::unordered_map<std::string, IdempotencyRecord> idem_cache_
      GUARDED_BY(mu_);
  std::deque<std::string> idem_order_ GUARDED_BY(mu_);
  std::map<std::string, UnwrittenRecord> idem_unwritten_ GUARDED_BY(mu_);
  std::set<std::string> idem_deletes_ GUARDED_BY(mu_);
  std::set<std::string> idem_deleting_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
  // Why writes are refused; empty if they are not.
  std::string unavailable_ GUARDED_BY(mu_);
  // The data dir is gone: only a restart helps.
  bool dir_lost_ GUARDED_BY(mu_) = false;
  Clock::time_point unavailable_since_ GUARDED_BY(mu_){};
  Clock::time_point last_error_log_ GUARDED_BY(mu_){};
  Clock::time_point last_quota_log_ GUARDED_BY(mu_){};
  // Start of the last successful flush (or Open): everything changed
  // before it is on disk.
  Clock::time_point last_flush_ok_ GUARDED_BY(mu_){};

  Mutex flush_mu_;  // a leaf; with flush_cv_
  CondVar flush_cv_;
  bool stop_flush_ GUARDED_BY(flush_mu_) = false;
  std::thread flush_thread_;

  // A change awaiting its sync, or work for the commit thread.
  struct PendingAck {
    uint64_t ticket = 0;      // the durable ticket to wait for; 0: none
    uint64_t increments = 0;  // counted in the metric once synced
    // If set, run on the commit thread before the sync: does the work,
    // setting `ticket` and `increments`, or returns why it failed (then
    // `done` gets that).
    std::function<Status(PendingAck*)> work;
    DoneCallback done;
  };
  Mutex commit_mu_;  // a leaf; with commit_cv_
  CondVar commit_cv_;
  // Async increments awaiting their sync.
  std::deque<PendingAck> pending_ GUARDED_BY(commit_mu_);
  bool stop_commit_ GUARDED_BY(commit_mu_) = false;
  std::thread commit_thread_;  // runs CommitLoop()

  // Metrics (null-safe through the helpers in util/metrics.h).
  std::atomic<uint64_t>* increments_metric_ = nullptr;
  std::atomic<uint64_t>* resets_metric_ = nullptr;
  std::atomic<uint64_t>* flushes_metric_ = nullptr;
  std::atomic<uint64_t>* flush_micros_metric_ = nullptr;
  std::atomic<uint64_t>* flushed_counters_metric_ = nullptr;
  std::atomic<int64_t>* last_batch_metric_ = nullptr;
  std::atomic<int64_t>* counters_metric_ = nullptr;
  std::atomic<uint64_t>* merges_applied_metric_ = nullptr;
  std::atomic<int64_t>* available_metric_ = nullptr;
  std::atomic<uint64_t>* storage_errors_metric_ = nullptr;
  std::atomic<uint64_t>* recoveries_metric_ = nullptr;
  std::atomic<uint64_t>* refused_storage_metric_ = nullptr;
  std::atomic<uint64_t>* refused_quota_metric_ = nullptr;
  std::atomic<uint64_t>* merges_refused_quota_metric_ = nullptr;
  std::atomic<uint64_t>* merges_refused_peer_quota_metric_ = nullptr;
  std::atomic<uint64_t>* incarnation_moves_metric_ = nullptr;
  std::atomic<uint64_t>* incarnation_moves_refused_metric_ = nullptr;
};

}  // namespace dist_counter

#endif  // DIST_COUNTER_STORE_COUNTER_STORE_H_
