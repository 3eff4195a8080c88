// A pager's statistics, decoded from the native counters.
import type { NativePagerStats } from '../native';

export interface PagerStats {
  /** Faults served (each counted once, whatever its read-ahead window). */
  readonly faults: number;
  /** Bytes mapped: faulting pages, read-ahead and prefetch. */
  readonly bytes: number;
  /** Pages mapped beyond the faulting ones by read-ahead. */
  readonly readAheadPages: number;
  /**
   * Of those, pages mapped by the asynchronous read-ahead before any thread
   * reached them (`readAhead: { async: true }`): nobody waited for them.
   */
  readonly asyncReadAheadPages: number;
  readonly prefetchedBytes: number;
  /** Pages found already there (another thread or the prefetch was first): success. */
  readonly eexist: number;
  /** Ioctls retried because the mapping was changing. */
  readonly eagain: number;
  /** Pages resolved by the onFailure policy. */
  readonly failures: number;
  /** Faults of 'function' ranges (requests to JavaScript). */
  readonly functionFaults: number;
  /** Minor faults resolved with CONTINUE. */
  readonly minorFaults: number;
  /** Forked children whose uffd the pager serves. */
  readonly forks: number;
  /** Faults per faulting thread id (UFFD_FEATURE_THREAD_ID). */
  readonly threads: ReadonlyMap<number, number>;
  /**
   * Latency from reading the fault to resolving it, as a log2 histogram:
   * latency[i] faults took [2^i, 2^(i+1)) ns.
   */
  readonly latency: readonly number[];
  /** Upper bounds (ns) of the buckets holding the median and the 99th percentile; 0 without faults. */
  readonly latencyP50Ns: number;
  readonly latencyP99Ns: number;
}

function percentile(histogram: readonly number[], p: number): number {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i];
    if (seen >= total * p) return 2 ** (i + 1);
  }
  return 2 ** histogram.length;
}

export function decodeStats(raw: NativePagerStats): PagerStats {
  const threads = new Map<number, number>();
  for (let i = 0; i < raw.threads.length; i += 2) threads.set(raw.threads[i], raw.threads[i + 1]);
  const latency = Array.from(raw.latency);
  return {
    faults: raw.faults,
    bytes: raw.bytes,
    readAheadPages: raw.readAheadPages,
    asyncReadAheadPages: raw.asyncReadAheadPages,
    prefetchedBytes: raw.prefetchedBytes,
    eexist: raw.eexist,
    eagain: raw.eagain,
    failures: raw.failures,
    functionFaults: raw.functionFaults,
    minorFaults: raw.minorFaults,
    forks: raw.forks,
    threads,
    latency,
    latencyP50Ns: percentile(latency, 0.5),
    latencyP99Ns: percentile(latency, 0.99),
  };
}
