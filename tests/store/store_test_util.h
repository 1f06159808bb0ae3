// Helpers shared by the store's tests: open a store or fail the test, and
// read one counter's value as text.

#ifndef DIST_COUNTER_STORE_STORE_TEST_UTIL_H_
#define DIST_COUNTER_STORE_STORE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "crdt/pn_counter.h"
#include "store/counter_store.h"

namespace dist_counter {
namespace test {

// Opens a store, failing the test (and returning null) on error.
inline std::unique_ptr<CounterStore> MustOpen(const StoreOptions& options) {
  std::unique_ptr<CounterStore> store;
  Status s = CounterStore::Open(options, &store);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return store;
}

// The value of counter `name`, or "absent".
inline std::string ValueOf(const CounterStore& store, const std::string& name) {
  PnCounter state;
  Status s = store.Get(name, &state);
  if (s.IsNotFound()) return "absent";
  EXPECT_TRUE(s.ok()) << s.ToString();
  return state.ValueString();
}

}  // namespace test
}  // namespace dist_counter

#endif  // DIST_COUNTER_STORE_STORE_TEST_UTIL_H_
