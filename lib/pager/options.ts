// The Pager's options, and what it reports (served ranges, failures,
// prefetch results): the types of its public API, apart from the class.
import type { SourceKind } from './sources';

export type FailurePolicy = 'poison' | 'zero';

export interface PagerOptions {
  /**
   * Resolve more than the faulting page when faults look sequential: the
   * window starts at `min` and doubles on each fault that follows the last
   * window, up to `max`, and falls back to `min` on a random access (as
   * CRIU's lazy-pages). Never past the served range, never over a page that
   * is already there. `true` (default): 64 KiB to 4 MiB, asynchronous;
   * `false`: one page.
   *
   * `async` (default true): once faults are sequential, the next window is
   * filled before the thread gets there, as the kernel's own read-ahead
   * does: on the uffd's reader thread, in 256 KiB pieces between batches of
   * faults (a fault waits for one piece at most). The first page of each
   * window is left missing: the thread's fault there is the only sign of
   * its progress, and schedules the window after. The thread then waits
   * for one page per window instead of the whole window, and the copy
   * overlaps its work. `stats().asyncReadAheadPages` counts what it filled.
   */
  readAhead?: boolean | { min?: number; max?: number; async?: boolean };
  /**
   * What a page gets when its source fails (a short file, an I/O error, a
   * function that throws or returns too few bytes): 'poison' (default: the
   * faulting thread gets SIGBUS, as a read error would give it) or 'zero'.
   * Either way the thread never stays blocked, and 'failure' is emitted.
   */
  onFailure?: FailurePolicy;
  /**
   * After MADV_DONTNEED/MADV_REMOVE of a served range (a REMOVE event):
   * 'zero' (default, like Firecracker's handler after a balloon inflation)
   * serves later faults there with zero pages; 'source' serves the source again.
   */
  afterRemove?: 'zero' | 'source';
  /** Emit 'stats' at most this often while faults are served (0, the default: never). */
  statsIntervalMs?: number;
}

export interface ServeOptions {
  /**
   * The page size of a range this process's Userfaultfd object does not
   * know as registered (it was registered by the process that sent the
   * uffd): 4096, 2 MiB or 1 GiB. Without it the range must lie inside one of
   * `uffd.registrations`.
   */
  pageSize?: number;
}

export interface ServedRange {
  readonly address: number;
  readonly length: number;
  /** The source offset of `address`. */
  readonly offset: number;
  readonly kind: SourceKind;
}

/** A source that failed; its page was resolved by the onFailure policy. */
export interface PagerFailure {
  readonly address: number;
  readonly length: number;
  /** Offset of the page in its source. */
  readonly offset: number;
  readonly resolvedAs: FailurePolicy;
  /** An errno error (code, errno, syscall), ERR_PAGER_SHORT_READ, or what a function source threw. */
  readonly cause: unknown;
}

export interface PrefetchOptions {
  signal?: AbortSignal;
}

export interface PrefetchResult {
  /** Bytes the prefetch mapped (pages already there are skipped). */
  readonly bytes: number;
  /** It was stopped (close()) before the end. */
  readonly stopped: boolean;
}
