// The C reference handler: what a plain C program gets out of userfaultfd on
// this machine, for bench/run.mjs to compare the library against. It is the
// design of /work/shared/c-limits.md: one handler thread that poll()s the
// uffd, read()s up to 64 messages at a time (non-blocking) and resolves each
// with one ioctl; faulting threads touch one word per page and time each
// touch. Every case prints one JSON line on stdout.
//
//   reference fault <mode> <memory> <threads> <pages> <pin>
//       mode: copy | zeropage | continue | wp | move
//       memory: anon | shmem | hugetlb
//   reference bulk <chunk bytes> <total bytes>
//   reference restore <file> <bytes> <readahead 0|1> [anon|hugetlb]
//   reference touch-floor <bytes> [anon|hugetlb]
//   reference warm <bytes>
//   reference cache <file>
//   reference pagemap-scan <bytes> <dirty pages>
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../../native/uapi/userfaultfd_compat.h"

#define BATCH 64
#define MAX_THREADS 4
// Rounds of the MINOR hugetlb case (bench/node-case.mjs has the same).
#define ROUNDS_MINOR_HUGE 16
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21 << 26)
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static void die(const char* what) {
  fprintf(stderr, "reference: %s: %s\n", what, strerror(errno));
  printf("{\"error\":\"%s: %s\"}\n", what, strerror(errno));
  exit(1);
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void pin(int cpu) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpu < 0 || cpus < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % cpus, &set);
  sched_setaffinity(0, sizeof set, &set);
}

static int open_uffd(uint64_t features) {
  int fd = -1;
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev >= 0) {
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    close(dev);
  }
  if (fd < 0) fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) die("userfaultfd");
  struct uffdio_api api = {.api = UFFD_API, .features = features};
  if (ioctl(fd, UFFDIO_API, &api)) die("UFFDIO_API");
  return fd;
}

static void register_range(int uffd, void* addr, size_t len, uint64_t mode) {
  struct uffdio_register reg = {.range = {(uint64_t)addr, len}, .mode = mode};
  if (ioctl(uffd, UFFDIO_REGISTER, &reg)) die("UFFDIO_REGISTER");
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

// ---- fault cases -----------------------------------------------------------

enum mode { M_COPY, M_ZEROPAGE, M_CONTINUE, M_WP, M_MOVE };

struct fault_case {
  enum mode mode;
  int uffd;
  char* area;
  char* src;  // COPY source page / MOVE source area
  size_t page;
  size_t pages;
  volatile int stop;
  int pin;
  size_t handled;
};

struct toucher {
  struct fault_case* fc;
  size_t first, count;
  int cpu;
  double start, end;
  double* lat;
};

static void* touch_thread(void* arg) {
  struct toucher* t = arg;
  struct fault_case* fc = t->fc;
  pin(t->cpu);
  int write = fc->mode == M_WP;
  t->start = now_us();
  for (size_t i = 0; i < t->count; i++) {
    volatile uint32_t* word = (volatile uint32_t*)(fc->area + (t->first + i) * fc->page);
    double before = now_us();
    if (write) {
      *word = (uint32_t)i;
    } else {
      (void)*word;
    }
    t->lat[i] = now_us() - before;
  }
  t->end = now_us();
  return NULL;
}

static void resolve(struct fault_case* fc, uint64_t address) {
  uint64_t start = address & ~((uint64_t)fc->page - 1);
  int rc = 0;
  switch (fc->mode) {
    case M_COPY: {
      // From the page's own place in a source area, as a pager serves
      // distinct contents (not one cache-hot page copied again and again).
      uint64_t src = (uint64_t)fc->src + (start - (uint64_t)fc->area);
      struct uffdio_copy c = {.dst = start, .src = src, .len = fc->page};
      rc = ioctl(fc->uffd, UFFDIO_COPY, &c);
      break;
    }
    case M_ZEROPAGE: {
      struct uffdio_zeropage z = {.range = {start, fc->page}};
      rc = ioctl(fc->uffd, UFFDIO_ZEROPAGE, &z);
      break;
    }
    case M_CONTINUE: {
      struct uffdio_continue c = {.range = {start, fc->page}};
      rc = ioctl(fc->uffd, UFFDIO_CONTINUE, &c);
      break;
    }
    case M_WP: {
      struct uffdio_writeprotect w = {.range = {start, fc->page}, .mode = 0};
      rc = ioctl(fc->uffd, UFFDIO_WRITEPROTECT, &w);
      break;
    }
    case M_MOVE: {
      uint64_t src = (uint64_t)fc->src + (start - (uint64_t)fc->area);
      struct uffdio_move m = {.dst = start, .src = src, .len = fc->page};
      rc = ioctl(fc->uffd, UFFDIO_MOVE, &m);
      break;
    }
  }
  if (rc && errno != EEXIST) die("resolve ioctl");
}

static void* handler_thread(void* arg) {
  struct fault_case* fc = arg;
  if (fc->pin) pin(1);
  struct uffd_msg msgs[BATCH];
  struct pollfd pfd = {.fd = fc->uffd, .events = POLLIN};
  while (!fc->stop) {
    int ready = poll(&pfd, 1, 10);
    if (ready <= 0) continue;
    ssize_t bytes = read(fc->uffd, msgs, sizeof msgs);
    if (bytes < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      die("read");
    }
    size_t n = (size_t)bytes / sizeof msgs[0];
    for (size_t i = 0; i < n; i++) {
      if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
      resolve(fc, msgs[i].arg.pagefault.address);
      fc->handled++;
    }
  }
  return NULL;
}

static char* map_memory(const char* memory, size_t len, int* fd_out) {
  int fd = -1;
  if (!strcmp(memory, "anon")) {
    char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap anon");
    madvise(p, len, MADV_NOHUGEPAGE);
    *fd_out = -1;
    return p;
  }
  if (!strcmp(memory, "shmem")) {
    fd = memfd_create("reference-shmem", MFD_CLOEXEC);
  } else if (!strcmp(memory, "hugetlb")) {
    fd = memfd_create("reference-hugetlb", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);
  } else {
    errno = EINVAL;
    die(memory);
  }
  if (fd < 0) die("memfd_create");
  if (ftruncate(fd, (off_t)len)) die("ftruncate");
  char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) die("mmap memfd");
  *fd_out = fd;
  return p;
}

static int run_fault(int argc, char** argv) {
  if (argc < 7) {
    errno = EINVAL;
    die("usage: fault <mode> <memory> <threads> <pages> <pin>");
  }
  struct fault_case fc = {0};
  const char* m = argv[2];
  const char* memory = argv[3];
  int threads = atoi(argv[4]);
  fc.pages = strtoull(argv[5], NULL, 0);
  fc.pin = atoi(argv[6]);
  if (threads < 1 || threads > MAX_THREADS) threads = 1;
  fc.mode = !strcmp(m, "copy")       ? M_COPY
            : !strcmp(m, "zeropage") ? M_ZEROPAGE
            : !strcmp(m, "continue") ? M_CONTINUE
            : !strcmp(m, "wp")       ? M_WP
                                     : M_MOVE;
  fc.page = !strcmp(memory, "hugetlb") ? (2u << 20) : 4096;
  size_t len = fc.pages * fc.page;
  uint64_t features = 0, regmode = UFFDIO_REGISTER_MODE_MISSING;
  int fd = -1;
  fc.area = map_memory(memory, len, &fd);
  if (fc.mode == M_CONTINUE) {
    // Fill the page cache through an alias; the registered mapping then
    // takes minor faults only.
    char* alias = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (alias == MAP_FAILED) die("mmap alias");
    for (size_t off = 0; off < len; off += fc.page) alias[off] = 1;
    features = !strcmp(memory, "hugetlb") ? UFFD_FEATURE_MINOR_HUGETLBFS : UFFD_FEATURE_MINOR_SHMEM;
    regmode = UFFDIO_REGISTER_MODE_MINOR;
  } else if (fc.mode == M_WP) {
    memset(fc.area, 1, len);
    regmode = UFFDIO_REGISTER_MODE_WP;
  } else if (fc.mode == M_MOVE || fc.mode == M_COPY) {
    if (fc.mode == M_MOVE) features = UFFD_FEATURE_MOVE;
    fc.src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fc.src == MAP_FAILED) die("mmap source");
    madvise(fc.src, len, MADV_NOHUGEPAGE);
    memset(fc.src, fc.mode == M_MOVE ? 2 : 3, len);
  }
  fc.uffd = open_uffd(features);
  register_range(fc.uffd, fc.area, len, regmode);
  if (fc.mode == M_WP) {
    struct uffdio_writeprotect w = {.range = {(uint64_t)fc.area, len}, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    if (ioctl(fc.uffd, UFFDIO_WRITEPROTECT, &w)) die("UFFDIO_WRITEPROTECT");
  }

  pthread_t handler;
  pthread_create(&handler, NULL, handler_thread, &fc);
  struct toucher t[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  // MINOR on hugetlb: 256 faults last a few ms, too short to measure, so
  // several rounds, the PTEs zapped (MADV_DONTNEED) between them: the page
  // cache keeps the pages, and each round takes minor faults again.
  int rounds = fc.mode == M_CONTINUE && fc.page > 4096 ? ROUNDS_MINOR_HUGE : 1;
  size_t total = fc.pages * rounds;
  double* lat = calloc(total, sizeof(double));
  size_t share = fc.pages / threads;
  double busy = 0;  // the rounds' touching time, without the madvise() between them
  for (int round = 0; round < rounds; round++) {
    double start = 1e300, end = 0;
    if (round > 0 && madvise(fc.area, len, MADV_DONTNEED)) die("madvise(DONTNEED)");
    for (int i = 0; i < threads; i++) {
      t[i].fc = &fc;
      t[i].first = i * share;
      t[i].count = i == threads - 1 ? fc.pages - i * share : share;
      t[i].cpu = fc.pin ? 0 : -1;
      t[i].lat = lat + round * fc.pages + t[i].first;
      pthread_create(&tids[i], NULL, touch_thread, &t[i]);
    }
    for (int i = 0; i < threads; i++) {
      pthread_join(tids[i], NULL);
      if (t[i].start < start) start = t[i].start;
      if (t[i].end > end) end = t[i].end;
    }
    busy += end - start;
  }
  fc.stop = 1;
  pthread_join(handler, NULL);
  qsort(lat, total, sizeof(double), cmp_double);
  double seconds = busy / 1e6;
  printf("{\"faults\":%zu,\"handled\":%zu,\"seconds\":%.6f,\"faultsPerSec\":%.1f,\"p50Us\":%.2f,\"p99Us\":%.2f,"
         "\"gbps\":%.3f}\n",
         total, fc.handled, seconds, total / seconds, lat[total / 2], lat[total * 99 / 100],
         (double)len * rounds / seconds / 1e9);
  return 0;
}

// ---- bulk population: UFFDIO_COPY of a whole registered range --------------

static int run_bulk(int argc, char** argv) {
  if (argc < 4) {
    errno = EINVAL;
    die("usage: bulk <chunk> <total>");
  }
  size_t chunk = strtoull(argv[2], NULL, 0);
  size_t total = strtoull(argv[3], NULL, 0);
  size_t srcLen = 2u << 20;
  if (chunk > srcLen) srcLen = chunk;
  char* src = mmap(NULL, srcLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(src, 5, srcLen);
  char* area = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (src == MAP_FAILED || area == MAP_FAILED) die("mmap");
  madvise(area, total, MADV_NOHUGEPAGE);
  int uffd = open_uffd(0);
  register_range(uffd, area, total, UFFDIO_REGISTER_MODE_MISSING);
  double start = now_us();
  for (size_t off = 0; off < total; off += chunk) {
    struct uffdio_copy c = {.dst = (uint64_t)area + off, .src = (uint64_t)src + off % srcLen, .len = chunk};
    if (ioctl(uffd, UFFDIO_COPY, &c)) die("UFFDIO_COPY");
  }
  double seconds = (now_us() - start) / 1e6;
  printf("{\"bytes\":%zu,\"seconds\":%.6f,\"gbps\":%.3f}\n", total, seconds, total / seconds / 1e9);
  return 0;
}

// ---- sequential lazy restore of a page-cached file -------------------------

struct restore {
  int uffd;
  char* area;
  char* file;
  size_t len;
  size_t page;  // 4K (anon) or 2M (hugetlb): windows are whole pages
  int readahead;
  volatile int stop;
  size_t faults;
};

static void* restore_handler(void* arg) {
  struct restore* r = arg;
  struct uffd_msg msgs[BATCH];
  struct pollfd pfd = {.fd = r->uffd, .events = POLLIN};
  // CRIU-like: 64K, doubling to 4M while sequential; whole pages (2M to 4M on hugetlb).
  size_t min = r->page > 65536 ? r->page : 65536, max = r->page > (4u << 20) ? r->page : (4u << 20);
  uint64_t next = 0;  // where a sequential access would fault next
  size_t window = min;
  while (!r->stop) {
    if (poll(&pfd, 1, 10) <= 0) continue;
    ssize_t bytes = read(r->uffd, msgs, sizeof msgs);
    if (bytes < 0) continue;
    for (size_t i = 0; i < (size_t)bytes / sizeof msgs[0]; i++) {
      uint64_t fault = (msgs[i].arg.pagefault.address & ~(uint64_t)(r->page - 1)) - (uint64_t)r->area;
      size_t len = r->page;
      if (r->readahead) {
        window = fault == next ? (window < max ? window * 2 : window) : min;
        len = window;
      }
      if (fault + len > r->len) len = r->len - fault;
      next = fault + len;
      r->faults++;
      uint64_t off = fault;
      while (len > 0) {
        struct uffdio_copy c = {.dst = (uint64_t)r->area + off, .src = (uint64_t)r->file + off, .len = len};
        if (ioctl(r->uffd, UFFDIO_COPY, &c) == 0) break;
        if (errno != EEXIST && errno != EAGAIN) die("UFFDIO_COPY");
        // Part of the window is already there: skip the page that is.
        size_t skip = (c.copy > 0 ? (size_t)c.copy : 0) + (errno == EEXIST ? r->page : 0);
        if (skip >= len) break;
        off += skip;
        len -= skip;
      }
    }
  }
  return NULL;
}

static int run_restore(int argc, char** argv) {
  if (argc < 5) {
    errno = EINVAL;
    die("usage: restore <file> <bytes> <readahead> [anon|hugetlb]");
  }
  struct restore r = {0};
  int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open file");
  r.len = strtoull(argv[3], NULL, 0);
  r.readahead = atoi(argv[4]);
  const char* memory = argc > 5 ? argv[5] : "anon";
  r.page = !strcmp(memory, "hugetlb") ? (2u << 20) : 4096;
  r.file = mmap(NULL, r.len, PROT_READ, MAP_SHARED, fd, 0);
  if (r.file == MAP_FAILED) die("mmap");
  // Anonymous 4K pages, or a hugetlb memfd (2M pages: the touch below then
  // costs next to nothing, and the copy is what is measured).
  int memfd;
  r.area = map_memory(memory, r.len, &memfd);
  r.uffd = open_uffd(0);
  register_range(r.uffd, r.area, r.len, UFFDIO_REGISTER_MODE_MISSING);
  pthread_t handler;
  pthread_create(&handler, NULL, restore_handler, &r);
  double start = now_us();
  uint64_t sum = 0;
  for (size_t off = 0; off < r.len; off += 4096) sum += *(volatile uint32_t*)(r.area + off);
  double seconds = (now_us() - start) / 1e6;
  r.stop = 1;
  pthread_join(handler, NULL);
  printf("{\"bytes\":%zu,\"faults\":%zu,\"seconds\":%.6f,\"gbps\":%.3f,\"checksum\":%llu}\n", r.len, r.faults,
         seconds, r.len / seconds / 1e9, (unsigned long long)sum);
  return 0;
}

// ---- the host's ceiling: first touch of populated pages, no uffd ------------
//
// A restored page is touched by the application after the handler mapped
// it. On a VM with shadow paging that first access to a freshly installed
// PTE costs microseconds per 4K page (the hypervisor builds its shadow
// entry), whatever the handler did: this reads one word per 4K page of
// memory populated beforehand (MADV_POPULATE_WRITE), exactly as the restore
// cases touch it, and reports it as GB/s: no 4K restore can beat it here.

static int run_touch_floor(int argc, char** argv) {
  if (argc < 3) {
    errno = EINVAL;
    die("usage: touch-floor <bytes> [anon|hugetlb]");
  }
  size_t len = strtoull(argv[2], NULL, 0);
  int fd;
  char* area = map_memory(argc > 3 ? argv[3] : "anon", len, &fd);
  if (madvise(area, len, MADV_POPULATE_WRITE)) die("MADV_POPULATE_WRITE");
  double start = now_us();
  uint64_t sum = 0;
  for (size_t off = 0; off < len; off += 4096) sum += *(volatile uint32_t*)(area + off);
  double seconds = (now_us() - start) / 1e6;
  printf("{\"bytes\":%zu,\"seconds\":%.6f,\"gbps\":%.3f,\"checksum\":%llu}\n", len, seconds, len / seconds / 1e9,
         (unsigned long long)sum);
  return 0;
}

// ---- warming the VM up ------------------------------------------------------
//
// A freshly booted VM gets its guest RAM backed by the host lazily: the
// first guest use of each page costs a host fault, on top of everything the
// cases measure. Touching a few GiB of anonymous memory once, then giving
// it back, makes the guest memory the cases get next already backed.

static int run_warm(int argc, char** argv) {
  size_t len = argc > 2 ? strtoull(argv[2], NULL, 0) : (4ull << 30);
  double start = now_us();
  char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  for (size_t off = 0; off < len; off += 4096) p[off] = 1;
  munmap(p, len);
  printf("{\"bytes\":%zu,\"seconds\":%.3f}\n", len, (now_us() - start) / 1e6);
  return 0;
}

// ---- the restore cases' page cache ------------------------------------------
//
// Evicts the file from the page cache and reads it back in 4 MiB reads: the
// page cache is then what a restore from disk finds (large folios where the
// file system has them), not what writing the file left (4K pages).

static int run_cache(int argc, char** argv) {
  if (argc < 3) {
    errno = EINVAL;
    die("usage: cache <file>");
  }
  int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open file");
  fdatasync(fd);  // dirty pages are not evicted
  int err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  if (err) {
    errno = err;
    die("posix_fadvise");
  }
  size_t chunk = 4u << 20, total = 0;
  char* buf = malloc(chunk);
  if (!buf) die("malloc");
  ssize_t n;
  while ((n = read(fd, buf, chunk)) > 0) total += (size_t)n;
  if (n < 0) die("read");
  free(buf);
  close(fd);
  printf("{\"bytes\":%zu}\n", total);
  return 0;
}

// ---- PAGEMAP_SCAN of WP_ASYNC dirty tracking -------------------------------

static double scan(char* area, size_t len, struct page_region* vec, size_t vecLen, size_t* pagesOut) {
  struct pm_scan_arg arg = {
      .size = sizeof arg,
      .flags = 0,
      .start = (uint64_t)area,
      .end = (uint64_t)area + len,
      .vec = (uint64_t)vec,
      .vec_len = vecLen,
      .category_mask = PAGE_IS_WRITTEN,
      .return_mask = PAGE_IS_WRITTEN,
  };
  int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pm < 0) die("open pagemap");
  double start = now_us();
  long n = ioctl(pm, PAGEMAP_SCAN, &arg);
  double us = now_us() - start;
  close(pm);
  if (n < 0) die("PAGEMAP_SCAN");
  size_t pages = 0;
  for (long i = 0; i < n; i++) pages += (vec[i].end - vec[i].start) / 4096;
  *pagesOut = pages;
  return us;
}

static int run_pagemap_scan(int argc, char** argv) {
  if (argc < 4) {
    errno = EINVAL;
    die("usage: pagemap-scan <bytes> <dirty pages>");
  }
  size_t len = strtoull(argv[2], NULL, 0);
  size_t dirty = strtoull(argv[3], NULL, 0);
  char* area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) die("mmap");
  madvise(area, len, MADV_NOHUGEPAGE);
  memset(area, 1, len);
  int uffd = open_uffd(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED);
  register_range(uffd, area, len, UFFDIO_REGISTER_MODE_WP);
  struct uffdio_writeprotect w = {.range = {(uint64_t)area, len}, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
  if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w)) die("UFFDIO_WRITEPROTECT");
  size_t vecLen = dirty + 16;
  struct page_region* vec = calloc(vecLen, sizeof *vec);
  size_t found = 0;
  double cleanUs = scan(area, len, vec, vecLen, &found);
  size_t pages = len / 4096;
  size_t step = dirty ? pages / dirty : pages;
  for (size_t i = 0; i < dirty; i++) area[i * step * 4096] = 2;
  // The median of three scans of the same dirty set (as the Node side, whose
  // first scan also warms up the JIT).
  double runs[3];
  for (int i = 0; i < 3; i++) runs[i] = scan(area, len, vec, vecLen, &found);
  qsort(runs, 3, sizeof(double), cmp_double);
  double dirtyUs = runs[1];
  printf("{\"bytes\":%zu,\"cleanMs\":%.3f,\"dirtyMs\":%.3f,\"dirtyPages\":%zu,\"found\":%zu}\n", len, cleanUs / 1e3,
         dirtyUs / 1e3, dirty, found);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    errno = EINVAL;
    die("usage: reference fault|bulk|restore|touch-floor|warm|cache|pagemap-scan ...");
  }
  if (!strcmp(argv[1], "fault")) return run_fault(argc, argv);
  if (!strcmp(argv[1], "bulk")) return run_bulk(argc, argv);
  if (!strcmp(argv[1], "restore")) return run_restore(argc, argv);
  if (!strcmp(argv[1], "touch-floor")) return run_touch_floor(argc, argv);
  if (!strcmp(argv[1], "warm")) return run_warm(argc, argv);
  if (!strcmp(argv[1], "cache")) return run_cache(argc, argv);
  if (!strcmp(argv[1], "pagemap-scan")) return run_pagemap_scan(argc, argv);
  errno = EINVAL;
  die(argv[1]);
  return 1;
}
