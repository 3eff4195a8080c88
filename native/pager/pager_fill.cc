// How the pager fills a window from a source: one ioctl (COPY from a buffer,
// a memfd's or a file's mapping, ZEROPAGE), or pread() into a scratch buffer
// and COPY where a file cannot be copied from its mapping; and the buffers
// and Wake() those need. The per-fault decisions are in pager_core.cc.
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "../uapi/userfaultfd_compat.h"
#include "pager_core.h"

namespace uffd::pager {

Source::~Source() {
  if (fd >= 0) close(fd);
  if (mapping) munmap(mapping, mappingLength);
}

Buffers::~Buffers() {
  if (zeros_) munmap(zeros_, zerosLength_);
  if (scratch_) munmap(scratch_, scratchLength_);
}

const uint8_t* Buffers::Zeros(size_t length) {
  if (length > zerosLength_) {
    if (zeros_) munmap(zeros_, zerosLength_);
    // Never written, so every read maps the shared zero page: COPY from it
    // reads zeros without populating anything.
    zeros_ = mmap(nullptr, length, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (zeros_ == MAP_FAILED) {
      zeros_ = nullptr;
      zerosLength_ = 0;
      return nullptr;
    }
    zerosLength_ = length;
  }
  return static_cast<const uint8_t*>(zeros_);
}

uint8_t* Buffers::Scratch(size_t length) {
  if (length > scratchLength_) {
    if (scratch_) munmap(scratch_, scratchLength_);
    scratch_ = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (scratch_ == MAP_FAILED) {
      scratch_ = nullptr;
      scratchLength_ = 0;
      return nullptr;
    }
    scratchLength_ = length;
  }
  return static_cast<uint8_t*>(scratch_);
}

int Wake(int fd, uint64_t start, uint64_t length) {
  uffdio_range range{start, length};
  return ioctl(fd, UFFDIO_WAKE, &range) == 0 ? 0 : errno;
}

// The kernel's progress field: bytes done, or -errno when nothing was done.
FillResult FromIoctl(int rc, int64_t field) {
  FillResult r;
  if (rc == 0) {
    r.done = static_cast<uint64_t>(field);
    return r;
  }
  r.err = errno;
  r.done = field > 0 ? static_cast<uint64_t>(field) : 0;
  return r;
}

namespace {

FillResult CopyFrom(int fd, uint64_t dst, const uint8_t* src, uint64_t length) {
  uffdio_copy copy{dst, reinterpret_cast<uint64_t>(src), length, 0, 0};
  int rc = ioctl(fd, UFFDIO_COPY, &copy);
  return FromIoctl(rc, copy.copy);
}

FillResult ZeroFill(int fd, uint64_t dst, uint64_t length, uint64_t pageSize, Buffers* buffers) {
  if (pageSize == 4096) {
    uffdio_zeropage zp{{dst, length}, 0, 0};
    int rc = ioctl(fd, UFFDIO_ZEROPAGE, &zp);
    return FromIoctl(rc, zp.zeropage);
  }
  // hugetlb has no ZEROPAGE.
  const uint8_t* zeros = buffers->Zeros(length);
  if (!zeros) return FillResult{ENOMEM, 0, false};
  return CopyFrom(fd, dst, zeros, length);
}

// The old way, and the fallback: pread() into a scratch buffer, then COPY
// (two copies). The window ends at the last whole page read.
FillResult PreadFill(int fd, const Source& source, uint64_t offset, uint64_t dst, uint64_t length, uint64_t pageSize,
                     Buffers* buffers) {
  uint8_t* scratch = buffers->Scratch(length);
  if (!scratch) return FillResult{ENOMEM, 0, false};
  uint64_t got = 0;
  while (got < length) {
    ssize_t n = pread(source.fd, scratch + got, length - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (got >= pageSize) break;  // serve what was read
      return FillResult{errno, 0, false};
    }
    if (n == 0) break;
    got += static_cast<uint64_t>(n);
  }
  if (got < pageSize) return FillResult{ENODATA, 0, true};  // the file ends inside the faulting page
  return CopyFrom(fd, dst, scratch, got - got % pageSize);
}

// One copy, from the source's mapping of the file (as Firecracker's handler
// does), with pread()'s semantics. The file may have shrunk since it was
// mapped: the mapping then reads zeros to the end of the file's last page
// and cannot be read at all beyond (the kernel's copy gets EFAULT: no
// signal, the copy is done by the kernel). fstat() clips the window to the
// whole pages the file has now; a page the file ends inside, a page past
// the mapping (the file grew), and a truncation racing with this copy
// (EFAULT before any page was copied) are left to pread(), which tells a
// short read from an error. Returns false to fall back.
bool MappedFill(int fd, const Source& source, uint64_t offset, uint64_t dst, uint64_t length, uint64_t pageSize,
                FillResult* out) {
  struct stat st;
  if (fstat(source.fd, &st) != 0) return false;
  uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(st.st_size), source.size);
  if (end < offset || end - offset < pageSize) return false;
  uint64_t usable = std::min(length, end - offset);
  usable -= usable % pageSize;
  FillResult r = CopyFrom(fd, dst, source.data + offset, usable);
  if (r.err == EFAULT && r.done == 0) return false;
  *out = r;
  return true;
}

}  // namespace

FillResult Fill(int fd, const Source& source, uint64_t offset, uint64_t dst, uint64_t length, uint64_t pageSize,
                Buffers* buffers) {
  switch (source.kind) {
    case SourceKind::kZero:
      return ZeroFill(fd, dst, length, pageSize, buffers);
    case SourceKind::kBuffer:
    case SourceKind::kMemoryFile:
      return CopyFrom(fd, dst, source.data + offset, length);
    case SourceKind::kFile: {
      FillResult r;
      if (source.data && MappedFill(fd, source, offset, dst, length, pageSize, &r)) return r;
      return PreadFill(fd, source, offset, dst, length, pageSize, buffers);
    }
    case SourceKind::kFunction:
      break;
  }
  return FillResult{EINVAL, 0, false};
}

}  // namespace uffd::pager
