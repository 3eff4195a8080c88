// The process-wide table of mappings and their views: region_table.h says
// why it is process-wide and how unmapping across environments works.
#include "region_table.h"

#include <errno.h>
#include <sys/mman.h>

#include <algorithm>

#include "../addon_state.h"
#include "../args.h"
#include "../errors.h"

namespace uffd {

RegionTable& RegionTable::Instance() {
  // Deliberately leaked: Worker threads may still use it while the process
  // runs static destructors at exit.
  static RegionTable* table = new RegionTable();
  return *table;
}

std::shared_ptr<Region> RegionTable::Add(AddonState* creator, uintptr_t address, size_t length, size_t pageSize) {
  auto region = std::make_shared<Region>();
  region->id = nextId_++;
  region->address = address;
  region->length = length;
  region->pageSize = pageSize;
  region->creator = creator;
  regions_.push_back(region);
  return region;
}

std::shared_ptr<Region> RegionTable::Find(uint64_t id) {
  for (auto& r : regions_) {
    if (r->id == id) return r;
  }
  return nullptr;
}

size_t RegionTable::PageSizeAt(uintptr_t address) {
  for (auto& r : regions_) {
    if (address >= r->address && address - r->address < r->length) return r->pageSize;
  }
  return 0;
}

void RegionTable::Erase(uint64_t id) {
  regions_.erase(std::remove_if(regions_.begin(), regions_.end(), [id](auto& r) { return r->id == id; }),
                 regions_.end());
}

std::vector<std::shared_ptr<Region>> RegionTable::All() { return regions_; }

namespace {

// Under the table mutex: munmap a region nobody can see any more.
void FinishUnmapIfUnseen(RegionTable& table, const std::shared_ptr<Region>& region) {
  if (!region->unmapping || !region->views.empty() || region->pins != 0) return;
  munmap(reinterpret_cast<void*>(region->address), region->length);
  table.Erase(region->id);
}

// Under the table mutex, on `state`'s JS thread.
void DetachViewsOf(napi_env env, AddonState* state, Region& region) {
  auto& views = region.views;
  for (auto it = views.begin(); it != views.end();) {
    if (it->owner != state) {
      ++it;
      continue;
    }
    napi_value value = nullptr;
    if (napi_get_reference_value(env, it->arrayBuffer, &value) == napi_ok && value != nullptr) {
      napi_detach_arraybuffer(env, value);
    }
    napi_delete_reference(env, it->arrayBuffer);
    it = views.erase(it);
  }
}

// Under the table mutex: ask every other environment with views of `region`
// to detach them.
void PostDetachRequests(RegionTable& table, AddonState* self, const Region& region) {
  for (AddonState* other : table.liveEnvironments) {
    if (other == self) continue;
    bool holdsViews = std::any_of(region.views.begin(), region.views.end(),
                                  [other](const ViewRecord& v) { return v.owner == other; });
    if (holdsViews) {
      other->mailbox.NonBlockingCall([other](Napi::Env env, Napi::Function) { DetachPendingViews(env, other); });
    }
  }
}

// The finalizer hint of an external ArrayBuffer view.
struct ViewHint {
  std::weak_ptr<Region> region;
  AddonState* owner;
};

void FinalizeView(napi_env env, void* /*data*/, void* hint) {
  auto* viewHint = static_cast<ViewHint*>(hint);
  RegionTable& table = RegionTable::Instance();
  {
    std::lock_guard<std::mutex> lock(table.mutex);
    if (auto region = viewHint->region.lock()) {
      // The ArrayBuffer is gone; drop the record whose weak reference now
      // points at nothing.
      auto& views = region->views;
      for (auto it = views.begin(); it != views.end();) {
        napi_value value = nullptr;
        if (it->owner == viewHint->owner &&
            (napi_get_reference_value(env, it->arrayBuffer, &value) != napi_ok || value == nullptr)) {
          napi_delete_reference(env, it->arrayBuffer);
          it = views.erase(it);
        } else {
          ++it;
        }
      }
      FinishUnmapIfUnseen(table, region);
    }
  }
  delete viewHint;
}

// mapRegion(addressHint, length, prot, flags, fd, offset, pageSize) -> [id, address]
Napi::Value MapRegion(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 7);
  void* hint = reinterpret_cast<void*>(UintArg(info, 0));
  size_t length = UintArg(info, 1);
  void* address = mmap(hint, length, static_cast<int>(IntArg(info, 2)), static_cast<int>(IntArg(info, 3)),
                       FdArg(info, 4), static_cast<off_t>(IntArg(info, 5)));
  if (address == MAP_FAILED) ThrowErrno(info.Env(), errno, "mmap");
  RegionTable& table = RegionTable::Instance();
  std::lock_guard<std::mutex> lock(table.mutex);
  auto region = table.Add(&StateOf(info.Env()), reinterpret_cast<uintptr_t>(address), length, UintArg(info, 6));
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(region->id)));
  out.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(region->address)));
  return out;
}

// attachRegion(id) -> [address, length, pageSize] or null when it is gone or
// being unmapped. Lets a Worker use a mapping created elsewhere.
Napi::Value AttachRegion(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  RegionTable& table = RegionTable::Instance();
  std::lock_guard<std::mutex> lock(table.mutex);
  auto region = table.Find(UintArg(info, 0));
  if (!region || region->unmapping) return info.Env().Null();
  Napi::Array out = Napi::Array::New(info.Env(), 3);
  out.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(region->address)));
  out.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(region->length)));
  out.Set(2u, Napi::Number::New(info.Env(), static_cast<double>(region->pageSize)));
  return out;
}

// unmapRegion(id) -> true if munmap() ran now, false if it waits for other
// environments to detach their views, undefined if it was already unmapped.
Napi::Value UnmapRegion(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  AddonState* self = &StateOf(info.Env());
  RegionTable& table = RegionTable::Instance();
  std::lock_guard<std::mutex> lock(table.mutex);
  auto region = table.Find(UintArg(info, 0));
  if (!region || region->unmapping) return info.Env().Undefined();
  region->unmapping = true;
  DetachViewsOf(info.Env(), self, *region);
  PostDetachRequests(table, self, *region);
  FinishUnmapIfUnseen(table, region);
  return Napi::Boolean::New(info.Env(), table.Find(region->id) == nullptr);
}

// regionView(id, offset, length) -> external ArrayBuffer over the mapping.
Napi::Value RegionView(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  AddonState* self = &StateOf(info.Env());
  uint64_t offset = UintArg(info, 1);
  uint64_t length = UintArg(info, 2);
  RegionTable& table = RegionTable::Instance();
  std::lock_guard<std::mutex> lock(table.mutex);
  auto region = table.Find(UintArg(info, 0));
  if (!region || region->unmapping) ThrowErrno(info.Env(), EBADF, "view");
  if (offset > region->length || length > region->length - offset) {
    throw Napi::RangeError::New(info.Env(), "native: view outside the mapping");
  }
  auto* hint = new ViewHint{region, self};
  napi_value arrayBuffer = nullptr;
  napi_status status = napi_create_external_arraybuffer(
      info.Env(), reinterpret_cast<void*>(region->address + offset), length, FinalizeView, hint, &arrayBuffer);
  if (status != napi_ok) {
    delete hint;
    NAPI_THROW(Napi::Error::New(info.Env(), "napi_create_external_arraybuffer failed"), Napi::Value());
  }
  napi_ref ref = nullptr;
  napi_create_reference(info.Env(), arrayBuffer, 0, &ref);
  region->views.push_back({self, ref});
  return Napi::Value(info.Env(), arrayBuffer);
}

// remapRegion(id, newLength, flags, newAddress) -> new address. Views of this
// environment are detached first; views held by other environments make it
// fail with EBUSY, since the old addresses would dangle there.
Napi::Value RemapRegion(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 4);
  AddonState* self = &StateOf(info.Env());
  RegionTable& table = RegionTable::Instance();
  std::lock_guard<std::mutex> lock(table.mutex);
  auto region = table.Find(UintArg(info, 0));
  if (!region || region->unmapping) ThrowErrno(info.Env(), EBADF, "mremap");
  bool foreign = std::any_of(region->views.begin(), region->views.end(),
                             [self](const ViewRecord& v) { return v.owner != self; });
  // A pinning native thread would fault on the old addresses just the same.
  if (foreign || region->pins != 0) ThrowErrno(info.Env(), EBUSY, "mremap");
  size_t newLength = UintArg(info, 1);
  int flags = static_cast<int>(IntArg(info, 2));
  void* newAddress = reinterpret_cast<void*>(UintArg(info, 3));
  void* moved = mremap(reinterpret_cast<void*>(region->address), region->length, newLength, flags, newAddress);
  if (moved == MAP_FAILED) ThrowErrno(info.Env(), errno, "mremap");
  DetachViewsOf(info.Env(), self, *region);
  region->address = reinterpret_cast<uintptr_t>(moved);
  region->length = newLength;
  return Napi::Number::New(info.Env(), static_cast<double>(region->address));
}

}  // namespace

void DetachPendingViews(Napi::Env env, AddonState* state) {
  RegionTable& table = RegionTable::Instance();
  std::lock_guard<std::mutex> lock(table.mutex);
  for (auto& region : table.All()) {
    if (!region->unmapping) continue;
    DetachViewsOf(env, state, *region);
    FinishUnmapIfUnseen(table, region);
  }
}

void ReleaseEnvironmentViews(AddonState* state) {
  RegionTable& table = RegionTable::Instance();
  std::lock_guard<std::mutex> lock(table.mutex);
  table.liveEnvironments.erase(
      std::remove(table.liveEnvironments.begin(), table.liveEnvironments.end(), state),
      table.liveEnvironments.end());
  for (auto& region : table.All()) {
    // The environment's ArrayBuffers die with it; its references are freed by
    // the runtime, so only the records are dropped here.
    auto& views = region->views;
    views.erase(std::remove_if(views.begin(), views.end(), [state](const ViewRecord& v) { return v.owner == state; }),
                views.end());
    if (region->creator == state && !region->unmapping) {
      region->unmapping = true;
      PostDetachRequests(table, state, *region);
    }
    FinishUnmapIfUnseen(table, region);
  }
}

RegionPins PinRegions(uintptr_t address, size_t length) {
  RegionTable& table = RegionTable::Instance();
  std::lock_guard<std::mutex> lock(table.mutex);
  RegionPins pins;
  for (auto& region : table.All()) {
    if (region->address < address + length && address < region->address + region->length) {
      region->pins++;
      pins.push_back(region);
    }
  }
  return pins;
}

void UnpinRegions(RegionPins& pins) {
  RegionTable& table = RegionTable::Instance();
  std::lock_guard<std::mutex> lock(table.mutex);
  for (auto& region : pins) {
    region->pins--;
    FinishUnmapIfUnseen(table, region);
  }
  pins.clear();
}

void InitRegionTable(Napi::Env env, Napi::Object exports) {
  exports.Set("mapRegion", Napi::Function::New(env, MapRegion, "mapRegion"));
  exports.Set("attachRegion", Napi::Function::New(env, AttachRegion, "attachRegion"));
  exports.Set("unmapRegion", Napi::Function::New(env, UnmapRegion, "unmapRegion"));
  exports.Set("regionView", Napi::Function::New(env, RegionView, "regionView"));
  exports.Set("remapRegion", Napi::Function::New(env, RemapRegion, "remapRegion"));
}

}  // namespace uffd
