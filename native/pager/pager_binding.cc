// The pager's native boundary (declared in lib/native.ts). A pager attaches
// its root Core to the uffd's reader thread as a FaultFilter and detaches it
// on close; an environment cleanup hook does the same for a Worker that ends
// without closing it.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "../addon_state.h"
#include "../args.h"
#include "../errors.h"
#include "pager_core.h"

namespace uffd::pager {

struct PagerSlot {
  napi_env env;
  uint32_t readerId;
  int uffd;
  std::shared_ptr<Shared> shared;
  std::shared_ptr<Core> root;
  std::vector<std::unique_ptr<Prefetch>> prefetches;
  uint32_t lastPrefetch = 0;
  bool closed = false;
};

namespace {

void ClosePager(PagerSlot* slot, bool teardown) {
  if (slot->closed) return;
  slot->closed = true;
  // Take the message stream back first: once SetFilter returns, the reader
  // thread no longer runs the core, and faults go to JavaScript again.
  FaultReader* reader = FindReader(Napi::Env(slot->env), slot->readerId);
  if (reader) reader->SetFilter(nullptr);
  slot->root->WakeDeferred(slot->uffd);
  for (auto& p : slot->prefetches) p->Stop();
  slot->prefetches.clear();
  slot->shared->Close(teardown);
}

void CleanupPager(void* arg) {
  auto* slot = static_cast<PagerSlot*>(arg);
  ClosePager(slot, true);
  auto& pagers = StateOf(Napi::Env(slot->env)).pagers;
  for (auto it = pagers.begin(); it != pagers.end(); ++it) {
    if (it->second == slot) {
      pagers.erase(it);
      break;
    }
  }
  delete slot;
}

// The open pager whose id is argument 0, or nullptr (none, or closed).
PagerSlot* OpenSlotOrNull(const Napi::CallbackInfo& info) {
  auto& pagers = StateOf(info.Env()).pagers;
  auto it = pagers.find(static_cast<uint32_t>(IntArg(info, 0)));
  return it == pagers.end() || it->second->closed ? nullptr : it->second;
}

// The same, for calls that need an open pager: EBADF otherwise.
PagerSlot* SlotArg(const Napi::CallbackInfo& info) {
  PagerSlot* slot = OpenSlotOrNull(info);
  if (!slot) ThrowErrno(info.Env(), EBADF, "pager");
  return slot;
}

// pagerCreate(readerId, uffd, onNotes, readAheadMin, readAheadMax, readAheadAsync, onFailure, afterRemove,
//             statsIntervalMs) -> id
Napi::Value PagerCreate(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 9);
  Napi::Env env = info.Env();
  uint32_t readerId = static_cast<uint32_t>(IntArg(info, 0));
  FaultReader* reader = FindReader(env, readerId);
  if (!reader) ThrowErrno(env, EBADF, "pager");
  Config config;
  config.readAheadMin = UintArg(info, 3);
  config.readAheadMax = UintArg(info, 4);
  config.readAheadAsync = info[5].ToBoolean();
  config.onFailure = static_cast<FailurePolicy>(IntArg(info, 6));
  config.afterRemove = static_cast<AfterRemove>(IntArg(info, 7));
  config.statsIntervalNs = UintArg(info, 8) * 1000000ull;
  auto* slot = new PagerSlot{env, readerId, FdArg(info, 1), nullptr, nullptr, {}, 0, false};
  slot->shared = std::make_shared<Shared>(env, info[2].As<Napi::Function>(), config);
  slot->root = std::make_shared<Core>(slot->shared, false, reader->JsThreadId());
  if (!reader->SetFilter(slot->root)) {
    slot->shared->Close(false);
    delete slot;
    ThrowErrno(env, EBUSY, "pager");
  }
  AddonState& state = StateOf(env);
  uint32_t id = ++state.lastPagerId;
  state.pagers[id] = slot;
  // Added after the TSFN, so it runs before the runtime finalizes it.
  napi_add_env_cleanup_hook(env, CleanupPager, slot);
  return Napi::Number::New(env, id);
}

// pagerServe(id, start, length, pageSize, offset, kind, data, tag, mapFile) -> false if it overlaps a served range.
// data: bytes for 'buffer'; an fd (dup()ed here) for 'file' and 'memoryFile'.
// mapFile: serve a 'file' from a mapping of it (else pread()).
Napi::Value PagerServe(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 9);
  Napi::Env env = info.Env();
  PagerSlot* slot = SlotArg(info);
  Range range;
  range.start = UintArg(info, 1);
  range.end = range.start + UintArg(info, 2);
  range.pageSize = UintArg(info, 3);
  range.offset = UintArg(info, 4);
  auto kind = static_cast<SourceKind>(IntArg(info, 5));
  auto source = std::make_shared<Source>();
  source->kind = kind;
  source->tag = static_cast<uint32_t>(IntArg(info, 7));
  if (kind == SourceKind::kBuffer) {
    uint8_t* data = nullptr;
    size_t length = 0;
    if (!BytesOf(info[6], &data, &length)) throw Napi::TypeError::New(env, "native: buffer source must be bytes");
    source->data = data;
    source->size = length;
  } else if (kind == SourceKind::kFile || kind == SourceKind::kMemoryFile) {
    int fd = fcntl(FdArg(info, 6), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) ThrowErrno(env, errno, "dup");
    source->fd = fd;
    if (kind == SourceKind::kFile) {
      // Served from a read-only mapping of the file, one copy per fault
      // (pread() into a buffer and COPY from it is two). What cannot be
      // mapped (empty, not a regular file, a file system without mmap, as
      // /proc) is read with pread() instead; so is what lies past the end
      // the file had now, if it grows.
      struct stat st;
      if (info[8].ToBoolean() && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
        if (map != MAP_FAILED) {
          source->mapping = map;
          source->mappingLength = static_cast<size_t>(st.st_size);
          source->data = static_cast<const uint8_t*>(map);
          source->size = source->mappingLength;
        }
      }
    } else {
      struct stat st;
      if (fstat(fd, &st) != 0) ThrowErrno(env, errno, "fstat");
      void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
      if (map == MAP_FAILED) ThrowErrno(env, errno, "mmap");
      source->mapping = map;
      source->mappingLength = static_cast<size_t>(st.st_size);
      source->data = static_cast<const uint8_t*>(map);
      source->size = source->mappingLength;
    }
  }
  range.source = std::move(source);
  uint64_t start = range.start, length = range.end - range.start;
  if (!slot->root->Serve(range)) return Napi::Boolean::New(env, false);
  // Threads already blocked in a fault there (read before the range was
  // served, and queued for JavaScript) fault again, and are served now.
  Wake(slot->uffd, start, length);
  return Napi::Boolean::New(env, true);
}

// pagerUnserve(id, start, length) -> bytes no longer served
Napi::Value PagerUnserve(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  PagerSlot* slot = SlotArg(info);
  uint64_t start = UintArg(info, 1);
  return Napi::Number::New(info.Env(), static_cast<double>(slot->root->Unserve(start, start + UintArg(info, 2))));
}

// pagerRanges(id) -> Float64Array of [start, end, offset, kind] per served range
Napi::Value PagerRanges(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  PagerSlot* slot = SlotArg(info);
  slot->root->Quiesce();
  std::vector<Range> ranges = slot->root->Snapshot();
  auto out = Napi::Float64Array::New(info.Env(), ranges.size() * 4);
  for (size_t i = 0; i < ranges.size(); i++) {
    out[i * 4] = static_cast<double>(ranges[i].start);
    out[i * 4 + 1] = static_cast<double>(ranges[i].end);
    out[i * 4 + 2] = static_cast<double>(ranges[i].offset);
    out[i * 4 + 3] = static_cast<double>(ranges[i].source->kind);
  }
  return out;
}

Napi::Value PagerStats(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  Napi::Env env = info.Env();
  PagerSlot* slot = SlotArg(info);
  slot->root->Quiesce();
  Stats& s = slot->shared->stats;
  Napi::Object out = Napi::Object::New(env);
  auto set = [&](const char* name, const std::atomic<uint64_t>& v) {
    out.Set(name, Napi::Number::New(env, static_cast<double>(v.load())));
  };
  set("faults", s.faults);
  set("bytes", s.bytes);
  set("readAheadPages", s.readAheadPages);
  set("asyncReadAheadPages", s.asyncReadAheadPages);
  set("prefetchedBytes", s.prefetchedBytes);
  set("eexist", s.eexist);
  set("eagain", s.eagain);
  set("failures", s.failures);
  set("functionFaults", s.functionFaults);
  set("minorFaults", s.minorFaults);
  set("forks", s.forks);
  auto latency = Napi::Float64Array::New(env, kLatencyBuckets);
  for (int i = 0; i < kLatencyBuckets; i++) latency[i] = static_cast<double>(s.latency[i].load());
  out.Set("latency", latency);
  std::lock_guard<std::mutex> lock(s.threadsMutex);
  auto threads = Napi::Float64Array::New(env, s.threads.size() * 2);
  size_t i = 0;
  for (auto& [tid, count] : s.threads) {
    threads[i++] = tid;
    threads[i++] = static_cast<double>(count);
  }
  out.Set("threads", threads);
  return out;
}

// pagerDrain(id) -> Float64Array of 8 doubles per note
Napi::Value PagerDrain(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  PagerSlot* slot = OpenSlotOrNull(info);
  if (!slot) return Napi::Float64Array::New(info.Env(), 0);
  std::vector<Note> notes = slot->shared->DrainNotes();
  auto out = Napi::Float64Array::New(info.Env(), notes.size() * 8);
  for (size_t i = 0; i < notes.size(); i++) {
    for (int j = 0; j < 8; j++) out[i * 8 + j] = notes[i].v[j];
  }
  // Join prefetch threads that have finished (they posted their last note).
  auto& p = slot->prefetches;
  p.erase(std::remove_if(p.begin(), p.end(), [](const std::unique_ptr<Prefetch>& x) { return x->Finished(); }), p.end());
  return out;
}

// pagerComplete(id, requestId, data | null) -> 0, EAGAIN, ESTALE, or the COPY errno
Napi::Value PagerComplete(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  PagerSlot* slot = OpenSlotOrNull(info);
  if (!slot) return Napi::Number::New(info.Env(), ESTALE);
  uint64_t request = UintArg(info, 1);
  uint8_t* data = nullptr;
  size_t length = 0;
  bool fail = info[2].IsNull() || info[2].IsUndefined();
  if (!fail && !BytesOf(info[2], &data, &length)) throw Napi::TypeError::New(info.Env(), "native: page data must be bytes");
  return Napi::Number::New(info.Env(), slot->shared->Complete(request, data, length, fail));
}

// pagerPrefetch(id, start, end) -> prefetch id
Napi::Value PagerPrefetch(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  PagerSlot* slot = SlotArg(info);
  uint32_t id = ++slot->lastPrefetch;
  slot->prefetches.push_back(
      std::make_unique<Prefetch>(slot->shared, slot->root, slot->uffd, id, UintArg(info, 1), UintArg(info, 2)));
  return Napi::Number::New(info.Env(), id);
}

// pagerStopPrefetch(id, prefetchId): joins it (its done note still comes)
Napi::Value PagerStopPrefetch(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  PagerSlot* slot = SlotArg(info);
  uint32_t id = static_cast<uint32_t>(IntArg(info, 1));
  for (auto& p : slot->prefetches) {
    if (p->Id() == id) p->Stop();
  }
  return info.Env().Undefined();
}

// pagerRef(id, ref): whether pending notes keep the loop alive
Napi::Value PagerRef(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  SlotArg(info)->shared->Ref(info.Env(), info[1].ToBoolean());
  return info.Env().Undefined();
}

// pagerClose(id): detaches from the reader, stops threads. Idempotent.
Napi::Value PagerClose(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  auto& pagers = StateOf(info.Env()).pagers;
  auto it = pagers.find(static_cast<uint32_t>(IntArg(info, 0)));
  if (it == pagers.end()) return info.Env().Undefined();
  PagerSlot* slot = it->second;
  pagers.erase(it);
  napi_remove_env_cleanup_hook(info.Env(), CleanupPager, slot);
  ClosePager(slot, false);
  delete slot;
  return info.Env().Undefined();
}

}  // namespace

void InitPager(Napi::Env env, Napi::Object exports) {
  exports.Set("pagerCreate", Napi::Function::New(env, PagerCreate, "pagerCreate"));
  exports.Set("pagerServe", Napi::Function::New(env, PagerServe, "pagerServe"));
  exports.Set("pagerUnserve", Napi::Function::New(env, PagerUnserve, "pagerUnserve"));
  exports.Set("pagerRanges", Napi::Function::New(env, PagerRanges, "pagerRanges"));
  exports.Set("pagerStats", Napi::Function::New(env, PagerStats, "pagerStats"));
  exports.Set("pagerDrain", Napi::Function::New(env, PagerDrain, "pagerDrain"));
  exports.Set("pagerComplete", Napi::Function::New(env, PagerComplete, "pagerComplete"));
  exports.Set("pagerPrefetch", Napi::Function::New(env, PagerPrefetch, "pagerPrefetch"));
  exports.Set("pagerStopPrefetch", Napi::Function::New(env, PagerStopPrefetch, "pagerStopPrefetch"));
  exports.Set("pagerRef", Napi::Function::New(env, PagerRef, "pagerRef"));
  exports.Set("pagerClose", Napi::Function::New(env, PagerClose, "pagerClose"));
}

}  // namespace uffd::pager
