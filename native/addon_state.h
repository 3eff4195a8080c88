// Per-environment state. One instance per Node environment (main thread and
// every Worker), attached with SetInstanceData, so nothing here is shared
// between environments by accident.
#pragma once

#include <napi.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>

namespace uffd {

struct ReaderSlot;
struct PollWatcher;
namespace pager {
struct PagerSlot;
}

struct AddonState {
  // The thread that runs this environment's JavaScript. A fault raised by it
  // on a userfaultfd owned by this environment can never be resolved from
  // JavaScript, so the fault reader resolves it natively (see
  // faults/fault_reader.cc).
  pid_t jsThreadId = 0;
  // Runs DetachPendingViews on this environment's JS thread when another
  // environment unmaps a region this one has views of. Unreferenced, so it
  // never keeps the loop alive.
  Napi::ThreadSafeFunction mailbox;
  // Fault readers started by this environment (faults/fault_reader.cc).
  std::map<uint32_t, ReaderSlot*> readers;
  uint32_t lastReaderId = 0;
  // Memory fds (memfd, guest_memfd, hugetlbfs files) this environment opened
  // and has not closed: a terminated Worker never runs the JavaScript that
  // would close them, so its cleanup hook does. closeFd() takes an fd out.
  std::set<int> memoryFds;
  // Sockets, received fds and pidfds of net/ (closed at teardown unless
  // JavaScript closed or handed them on), and fd watchers on this
  // environment's loop (net/fd_poll.cc).
  std::set<int> netFds;
  std::map<uint32_t, PollWatcher*> pollWatchers;
  uint32_t lastPollWatcherId = 0;
  // Pagers of this environment (pager/pager_binding.cc), by id.
  std::map<uint32_t, pager::PagerSlot*> pagers;
  uint32_t lastPagerId = 0;
};

AddonState& StateOf(Napi::Env env);

}  // namespace uffd
