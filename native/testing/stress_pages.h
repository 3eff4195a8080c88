// The page layout of the uffd-stress equivalent (see stress_threads.cc):
// every page starts with a PageHeader (a pthread mutex, a counter, the
// page's own index, a magic) and the rest holds a pattern that depends only
// on the page index, so a page copied to the wrong place, copied twice over
// a live page, or left as a zero page shows up as a wrong field.
#pragma once

#include <napi.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace uffd {
namespace stress {

constexpr uint64_t kMagic = 0x5546464453545253ull;  // "UFFDSTRS"
constexpr uint64_t kPatternMultiplier = 0x9E3779B97F4A7C15ull;

struct PageHeader {
  pthread_mutex_t mutex;
  uint64_t count;
  uint64_t index;
  uint64_t magic;
};

enum Flags : uint32_t { kRandom = 1, kRacing = 2, kWriteProtect = 4 };

// What the fields of a page are called in reports (lib/testing/stress.ts).
inline const char* const kFieldNames[] = {"magic", "index", "count", "mutex", "pattern"};
enum Field { kFieldMagic, kFieldIndex, kFieldCount, kFieldMutex, kFieldPattern };

inline uint64_t PatternWord(uint64_t page, uint64_t word) { return page * kPatternMultiplier ^ word; }

// Words of a page after the header.
inline size_t FirstPatternWord() { return (sizeof(PageHeader) + 7) / 8; }

// Lives as long as the JS object and every bounce that uses it.
struct Session {
  size_t pageSize;
  size_t nrPages;
  std::vector<uint64_t> countVerify;
  std::atomic<bool> running{false};
};

using SessionRef = std::shared_ptr<Session>;

inline PageHeader* HeaderOf(uintptr_t area, const Session& s, uint64_t page) {
  return reinterpret_cast<PageHeader*>(area + page * s.pageSize);
}

struct Mismatch {
  bool found = false;
  uint64_t page = 0;
  Field field = kFieldMagic;
  uint64_t expected = 0;
  uint64_t actual = 0;
};

Napi::Object MismatchObject(Napi::Env env, const Mismatch& m);
SessionRef& SessionArg(const Napi::CallbackInfo& info, size_t i);

}  // namespace stress

void InitStressPages(Napi::Env env, Napi::Object exports);

}  // namespace uffd
