// Linux x86-64 values of the memory-management constants the library uses.

export const PROT = { NONE: 0, READ: 1, WRITE: 2, EXEC: 4 } as const;

export const MAP = {
  SHARED: 0x01,
  PRIVATE: 0x02,
  FIXED: 0x10,
  ANONYMOUS: 0x20,
  NORESERVE: 0x4000,
  POPULATE: 0x8000,
  HUGETLB: 0x40000,
  FIXED_NOREPLACE: 0x100000,
} as const;

export const MREMAP = { MAYMOVE: 1, FIXED: 2, DONTUNMAP: 4 } as const;

export const MFD = { CLOEXEC: 1, ALLOW_SEALING: 2, HUGETLB: 4 } as const;
export const HUGE_SHIFT = 26;

export const FALLOC = { KEEP_SIZE: 1, PUNCH_HOLE: 2 } as const;

/** madvise() advice values. */
export const MADV = {
  NORMAL: 0,
  RANDOM: 1,
  SEQUENTIAL: 2,
  WILLNEED: 3,
  DONTNEED: 4,
  FREE: 8,
  REMOVE: 9,
  DONTFORK: 10,
  DOFORK: 11,
  HUGEPAGE: 14,
  NOHUGEPAGE: 15,
  COLD: 20,
  PAGEOUT: 21,
  POPULATE_READ: 22,
  POPULATE_WRITE: 23,
  COLLAPSE: 25,
} as const;

export type Advice = keyof typeof MADV;

export const PAGE_SIZE = 4096;
export const HUGE_2M = 2 * 1024 * 1024;
export const HUGE_1G = 1024 * 1024 * 1024;

/** Page sizes of this architecture: base pages and the two hugetlb sizes. */
export type PageSize = typeof PAGE_SIZE | typeof HUGE_2M | typeof HUGE_1G;

export type Protection = 'none' | 'read' | 'read-write';

export function protBits(p: Protection): number {
  return p === 'none' ? PROT.NONE : p === 'read' ? PROT.READ : PROT.READ | PROT.WRITE;
}
