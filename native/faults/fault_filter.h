// A native consumer of a reader's messages: the reader thread hands it every
// batch before queueing the rest for JavaScript. The pager (native/pager/)
// is one: it resolves the faults of the ranges it serves right there on the
// reader thread, so no JavaScript runs per fault, and passes everything else
// (faults of other ranges, remap/remove/unmap events) on to JavaScript.
#pragma once

#include <linux/userfaultfd.h>

#include <cstddef>

namespace uffd {

class FaultFilter {
 public:
  virtual ~FaultFilter() = default;
  // Handles what it serves. Returns how many messages are left for
  // JavaScript, compacted at the front of `msgs`.
  virtual size_t Filter(int uffd, uffd_msg* msgs, size_t n) = 0;
  // Retries faults deferred by EAGAIN. Returns true while some remain: the
  // reader then polls with a short timeout instead of sleeping.
  virtual bool RetryDeferred(int uffd) = 0;
  // Bracket a read() and the handling of what it read (and each retry).
  // Reading completes a remap/remove/unmap event, which lets the thread
  // that raised it go on; a resolving ioctl wakes the faulting thread. So
  // JavaScript may look at the filter's state before it caught up; it can
  // wait for the end of the batch (the pager's stats() and ranges() do).
  virtual void BeginBatch() {}
  virtual void EndBatch() {}
  // Work the filter does on the reader thread between batches (the pager's
  // asynchronous read-ahead): the reader calls Background() while no
  // message waits, bracketed like a batch, one bounded piece per call, so
  // that a fault waits for one piece at most and the work is ordered with
  // the events exactly as the filter's own ioctls are (a separate thread
  // could fill pages after a REMOVE or UNMAP was read, before the filter
  // heard of it). HasBackground() is checked after every batch.
  enum class Work { kIdle, kMore, kBlocked };  // kBlocked: retry in a while (EAGAIN)
  virtual bool HasBackground() { return false; }
  virtual Work Background(int /*uffd*/) { return Work::kIdle; }
};

}  // namespace uffd
