// The typed events of a userfaultfd, decoded from the kernel's 32-byte
// struct uffd_msg as delivered by the native fault reader.

export const MSG_SIZE = 32;

const EVENT = { PAGEFAULT: 0x12, FORK: 0x13, REMAP: 0x14, REMOVE: 0x15, UNMAP: 0x16 } as const;
const FLAG = { WRITE: 1, WP: 2, MINOR: 4 } as const;
/** Set by the reader in uffd_msg.reserved1 (native/faults/fault_reader.h). */
const RESOLVED_BY_READER = 1;

export interface PageFaultEvent {
  readonly type: 'pagefault';
  /** The faulting address: page aligned (huge-page aligned on hugetlb) unless EXACT_ADDRESS is enabled. */
  readonly address: number;
  /** Raw UFFD_PAGEFAULT_FLAG_* bits. */
  readonly flags: number;
  readonly write: boolean;
  /** A write-protect fault (the page is present but protected). */
  readonly wp: boolean;
  /** A minor fault (the page is in the page cache but not mapped here). */
  readonly minor: boolean;
  /** The faulting thread's id (THREAD_ID feature), or 0. */
  readonly threadId: number;
  /**
   * The fault came from this environment's JavaScript thread, which cannot
   * run a handler while it is blocked, so the reader resolved it already by
   * the jsThreadFaults policy. Nothing needs doing.
   */
  readonly resolvedByReader: boolean;
}

export interface ForkEvent<U> {
  readonly type: 'fork';
  /** The child's userfaultfd, with the parent's registrations. Close it when done. */
  readonly uffd: U;
}

export interface RemapEvent {
  readonly type: 'remap';
  readonly from: number;
  readonly to: number;
  readonly length: number;
}

export interface RemoveEvent {
  /** MADV_DONTNEED / MADV_REMOVE dropped [start, end). */
  readonly type: 'remove';
  readonly start: number;
  readonly end: number;
}

export interface UnmapEvent {
  readonly type: 'unmap';
  readonly start: number;
  readonly end: number;
}

export type UffdEventOf<U> = PageFaultEvent | ForkEvent<U> | RemapEvent | RemoveEvent | UnmapEvent;

/** Decodes one message; `adoptFork` wraps the fd of a fork event. Unknown events are skipped. */
export function decodeMessage<U>(view: DataView, offset: number, adoptFork: (fd: number) => U): UffdEventOf<U> | undefined {
  const u64 = (at: number) => Number(view.getBigUint64(offset + at, true));
  switch (view.getUint8(offset)) {
    case EVENT.PAGEFAULT: {
      const flags = u64(8);
      return {
        type: 'pagefault',
        address: u64(16),
        flags,
        write: (flags & FLAG.WRITE) !== 0,
        wp: (flags & FLAG.WP) !== 0,
        minor: (flags & FLAG.MINOR) !== 0,
        threadId: view.getUint32(offset + 24, true),
        resolvedByReader: view.getUint8(offset + 1) === RESOLVED_BY_READER,
      };
    }
    case EVENT.FORK:
      return { type: 'fork', uffd: adoptFork(view.getUint32(offset + 8, true)) };
    case EVENT.REMAP:
      return { type: 'remap', from: u64(8), to: u64(16), length: u64(24) };
    case EVENT.REMOVE:
      return { type: 'remove', start: u64(8), end: u64(16) };
    case EVENT.UNMAP:
      return { type: 'unmap', start: u64(8), end: u64(16) };
    default:
      return undefined;
  }
}
