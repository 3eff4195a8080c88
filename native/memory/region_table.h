// Every mapping the library creates, and every ArrayBuffer view of one, in
// every environment of the process.
//
// This is the one process-wide table in the addon, on purpose: an address
// space is per process, not per environment, and a Worker may hold views of a
// mapping created by the main thread. Unmapping must detach the views in all
// environments before munmap(), and a view may only be detached on its own
// environment's JS thread. So unmapping is a small protocol:
//   1. the caller's environment marks the region as unmapping and detaches
//      its own views at once;
//   2. every other environment holding views is posted a request, and
//      detaches its views on its own thread (or at its teardown);
//   3. whoever removes the last view calls munmap().
// Until step 3 the memory stays mapped, so no view can ever reach an
// unmapped page: a late access through a detached view throws a TypeError
// in JavaScript instead of raising SIGSEGV.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace uffd {

struct AddonState;

struct ViewRecord {
  AddonState* owner;
  napi_ref arrayBuffer;  // weak: the view's lifetime is the user's business
};

struct Region {
  uint64_t id = 0;
  uintptr_t address = 0;
  size_t length = 0;
  size_t pageSize = 0;
  bool unmapping = false;
  AddonState* creator = nullptr;  // unmapped when this environment ends
  std::vector<ViewRecord> views;
  // Native threads that may be accessing the region right now (see
  // PinRegions). Like views, they keep it mapped while it is unmapping.
  size_t pins = 0;
};

class RegionTable {
 public:
  static RegionTable& Instance();

  std::mutex mutex;

  // All under `mutex`.
  std::shared_ptr<Region> Add(AddonState* creator, uintptr_t address, size_t length, size_t pageSize);
  std::shared_ptr<Region> Find(uint64_t id);
  // The page size of the region that contains `address`, or 0 if the
  // address is in no region the library mapped.
  size_t PageSizeAt(uintptr_t address);
  void Erase(uint64_t id);
  std::vector<std::shared_ptr<Region>> All();
  // Environments that can take a detach request (see AddonState::mailbox).
  std::vector<AddonState*> liveEnvironments;

 private:
  uint64_t nextId_ = 1;
  std::vector<std::shared_ptr<Region>> regions_;
};

// Called on `state`'s JS thread: detaches every view `state` holds of a
// region that is being unmapped, and unmaps regions left without views.
void DetachPendingViews(Napi::Env env, AddonState* state);

// Called from `state`'s cleanup hook: forgets every view it held and finishes
// pending unmaps; unmaps the regions this environment created.
void ReleaseEnvironmentViews(AddonState* state);

// Keeps the regions overlapping [address, address + length) mapped while a
// native thread (testing/touch_threads.cc) accesses them from outside any
// environment: an unmap() or the end of the creating environment then waits
// for UnpinRegions() instead of pulling the pages from under the thread
// (which would be SIGSEGV). Memory the library did not map is not pinned.
using RegionPins = std::vector<std::shared_ptr<Region>>;
RegionPins PinRegions(uintptr_t address, size_t length);
// Drops the pins; munmaps a region that was waiting only for them. Any thread.
void UnpinRegions(RegionPins& pins);

void InitRegionTable(Napi::Env env, Napi::Object exports);

}  // namespace uffd
