// Clang thread-safety analysis attributes (-Wthread-safety). They state
// which mutex guards a field (GUARDED_BY) and which a function needs held
// (REQUIRES, or REQUIRES_SHARED for a reader's hold of a SharedMutex) or
// must not hold (EXCLUDES); clang then checks every access at
// compile time (scripts/check_thread_safety.sh). Other compilers see
// nothing.

#ifndef DIST_COUNTER_UTIL_THREAD_ANNOTATIONS_H_
#define DIST_COUNTER_UTIL_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define DC_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define DC_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) DC_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY DC_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) DC_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) DC_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) DC_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) DC_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define REQUIRES(...) DC_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) \
  DC_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) DC_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) \
  DC_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) DC_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) \
  DC_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define EXCLUDES(...) DC_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) DC_THREAD_ANNOTATION(assert_capability(x))
#define ASSERT_SHARED_CAPABILITY(x) \
  DC_THREAD_ANNOTATION(assert_shared_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS \
  DC_THREAD_ANNOTATION(no_thread_safety_analysis)

#endif  // DIST_COUNTER_UTIL_THREAD_ANNOTATIONS_H_
