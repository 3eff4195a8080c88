// The native boundary: the only place the addon is loaded, and every native
// function declared once with its exact argument types. Native functions
// take checked positional arguments; validation, defaults and messages live
// in the TypeScript that calls them.
import { createRequire } from 'node:module';

/** Addresses and lengths cross the boundary as Numbers: x86-64 user addresses are below 2^47. */
export type Address = number;

/** Result of a range ioctl: the progress field on success, [errno, field] on failure. */
export type IoctlReturn = number | [errno: number, field: number];

export interface NativeAddon {
  // uffd/uffd_handle.cc
  openViaDevice(flags: number): number;
  openViaSyscall(flags: number): number;
  api(fd: number, api: bigint, features: bigint): [features: bigint, ioctls: bigint];
  register(fd: number, start: Address, length: number, mode: number): bigint;
  unregister(fd: number, start: Address, length: number): void;
  closeFd(fd: number): void;

  // ioctls/range_ioctls.cc
  copy(fd: number, dst: Address, src: ArrayBufferView | ArrayBuffer | Address, srcOffset: number, length: number, mode: number, chunk?: number): IoctlReturn | [errno: number, field: number, doneBefore: number];
  zeropage(fd: number, start: Address, length: number, mode: number): IoctlReturn;
  continue(fd: number, start: Address, length: number, mode: number): IoctlReturn;
  writeprotect(fd: number, start: Address, length: number, mode: number): IoctlReturn;
  wake(fd: number, start: Address, length: number): IoctlReturn;
  poison(fd: number, start: Address, length: number, mode: number): IoctlReturn;
  move(fd: number, dst: Address, src: Address, length: number, mode: number): IoctlReturn;

  // memory/memory_syscalls.cc
  memfdCreate(name: string, flags: number): number;
  ownMemoryFd(fd: number): void;
  ftruncate(fd: number, length: number): void;
  madvise(address: Address, length: number, advice: number): void;
  mprotect(address: Address, length: number, prot: number): void;
  fallocate(fd: number, mode: number, offset: number, length: number): void;
  hugetlbPageSize(fd: number): number;

  // memory/region_table.cc
  mapRegion(addressHint: Address, length: number, prot: number, flags: number, fd: number, offset: number, pageSize: number): [id: number, address: Address];
  attachRegion(id: number): [address: Address, length: number, pageSize: number] | null;
  unmapRegion(id: number): boolean | undefined;
  regionView(id: number, offset: number, length: number): ArrayBuffer;
  remapRegion(id: number, newLength: number, flags: number, newAddress: Address): Address;

  // memory/guest_memfd.cc
  guestMemfdCreate(size: number, flags: number): number;

  // memory/pagemap_scan.cc: vec holds 24-byte page_region records
  pagemapScan(pagemapFd: number, start: Address, end: Address, flags: number, inverted: number, mask: number, anyof: number, returnMask: number, maxPages: number, vec: ArrayBuffer | Uint8Array): [regions: number, walkEnd: Address];

  // faults/fault_reader.cc
  readerStart(fd: number, onReadable: () => void, loop?: boolean, onPoll?: () => void): number;
  readerDrainInto(id: number, buffer: ArrayBuffer): number;
  readerPoll(id: number, active: boolean): void;
  readerDrain(id: number, max: number): ArrayBuffer;
  readerStop(id: number): void;
  readerRef(id: number, ref: boolean): void;
  readerSetPolicy(id: number, policy: number): void;
  readerStatus(id: number): [resolvedByReader: number, readErrno: number, paused: boolean];
  readerPause(id: number, paused: boolean): void;

  // pager/pager_binding.cc (lib/pager/)
  pagerCreate(readerId: number, uffd: number, onNotes: () => void, readAheadMin: number, readAheadMax: number, readAheadAsync: boolean, onFailure: number, afterRemove: number, statsIntervalMs: number): number;
  pagerServe(id: number, start: Address, length: number, pageSize: number, offset: number, kind: number, data: ArrayBufferView | ArrayBuffer | number | undefined, tag: number, mapFile: boolean): boolean;
  pagerUnserve(id: number, start: Address, length: number): number;
  /** [start, end, offset, kind] per served range. */
  pagerRanges(id: number): Float64Array;
  pagerStats(id: number): NativePagerStats;
  /** 8 doubles per note (lib/pager/notes.ts). */
  pagerDrain(id: number): Float64Array;
  pagerComplete(id: number, request: number, data: ArrayBufferView | ArrayBuffer | null): number;
  pagerPrefetch(id: number, start: Address, end: Address): number;
  pagerStopPrefetch(id: number, prefetchId: number): void;
  pagerRef(id: number, ref: boolean): void;
  pagerClose(id: number): void;

  // testing/touch_threads.cc, testing/thread_id.cc
  threadId(): number;
  touch(address: Address, length: number, stride: number, write: boolean, value: number, ref: boolean): Promise<{ tid: number; values: Uint32Array }>;
  touch(address: Address, length: number, stride: number, write: boolean, value: number, ref: boolean, cpu: number, timed: true): Promise<{ tid: number; values: Uint32Array; latencies: Float64Array; start: number; end: number }>;
  pinThread(cpu: number): void;

  // testing/madvise_thread.cc: the thread's id, and its errno (0) once madvise() returned
  madviseThread(address: Address, length: number, advice: number, ref: boolean): [tid: number, done: Promise<number>];

  // testing/fork_child.cc: steps are 6 doubles each (lib/testing/fork-child.ts)
  forkChild(steps: Float64Array, capacity: number, exitCode: number): [pid: number, exited: Promise<NativeForkResult>, kill: (signal: number) => boolean];

  // testing/longterm_pin.cc: io_uring fixed buffers; release() is false once released
  longtermPin(address: Address, length: number): [fd: number, release: () => boolean];

  // testing/stress_threads.cc
  stressSession(pageSize: number, nrPages: number): StressSession;
  stressInit(session: StressSession, address: Address): void;
  stressVerify(session: StressSession, address: Address): (StressMismatch & { badPages: number }) | null;
  stressBounce(session: StressSession, fd: number, dst: Address, src: Address, threads: number, flags: number, releaseAdvice: number, seed: number): Promise<StressBounceResult>;

  // testing/sigbus_touch.cc: flags 1 write back, 2 scan, 4 retry (lib/testing/sigbus-touch.ts)
  sigbusTouch(address: Address, length: number, stride: number, flags: number, maxSignals: number, onSignal: (index: number, faultAddress: Address, code: number, write: boolean) => void, ref: boolean): [result: Promise<NativeSigbusTouchResult>, resume: (abort: boolean) => void];

  // net/unix_socket.cc: non-blocking Unix stream sockets and SCM_RIGHTS
  unixListen(path: string, backlog: number, mode: number): number;
  unixConnect(path: string): number;
  /** -1 when no connection is pending. */
  unixAccept(fd: number): number;
  peerCredentials(fd: number): [pid: number, uid: number, gid: number];
  peerPidfd(fd: number): number;
  /** Bytes sent, or -1 when the socket buffer is full. */
  sendFds(fd: number, bytes: Uint8Array, offset: number, length: number, fds: number[]): number;
  /** null when nothing is pending; bytes 0 is end of stream; on truncation the fds were closed and none are returned. */
  recvFds(fd: number, buffer: Uint8Array, maxFds: number): [bytes: number, fds: number[], truncated: boolean, fdsSent: number] | null;
  pidfdOpen(pid: number): number;
  setNonBlocking(fd: number, on: boolean): boolean;
  netOwn(fd: number): void;
  netDisown(fd: number): void;
  netClose(fd: number): void;

  // net/fd_poll.cc: uv_poll on the environment's loop. events: 1 readable, 2 writable, 4 disconnect
  pollStart(fd: number, events: number, callback: (events: number, errno: number) => void): number;
  pollUpdate(id: number, events: number): void;
  pollStop(id: number): void;
  pollRef(id: number, ref: boolean): void;
}

/** What a SIGBUS-catching touch thread reported (testing/sigbus_touch.cc), per page. */
export interface NativeSigbusTouchResult {
  tid: number;
  values: Uint32Array;
  readSignals: Uint32Array;
  writeSignals: Uint32Array;
  codes: Uint32Array;
  nonzeroWords: Uint32Array;
  faultAddresses: Float64Array;
  completed: Uint8Array;
  aborted: boolean;
}

/** Counters of a pager (pager/pager_binding.cc). */
export interface NativePagerStats {
  faults: number;
  bytes: number;
  readAheadPages: number;
  asyncReadAheadPages: number;
  prefetchedBytes: number;
  eexist: number;
  eagain: number;
  failures: number;
  functionFaults: number;
  minorFaults: number;
  forks: number;
  /** Faults per 2^i ns bucket, i = 0..39. */
  latency: Float64Array;
  /** [tid, faults] pairs. */
  threads: Float64Array;
}

/** What a forked test child reported (testing/fork_child.cc). */
export interface NativeForkResult {
  exitCode: number | null;
  signal: number | null;
  values: Uint32Array;
  /** Values the child produced, including any beyond the report's capacity. */
  valueCount: number;
  /** -1, or the index of the step whose system call failed; `error` is its errno. */
  failedStep: number;
  error: number;
  /** The whole report area (capacity words): the result words of steps 20+ and 40+ live there (lib/testing/fork-result-area.ts). */
  slots: Uint32Array;
}

/** A native stress session (page geometry and the expected counters); opaque. */
export type StressSession = { readonly __brand: 'StressSession' };

/** A page field that does not hold what it should (testing/stress_threads.cc). */
export interface StressMismatch {
  page: number;
  field: 'magic' | 'index' | 'count' | 'mutex' | 'pattern';
  expected: bigint;
  actual: bigint;
}

/** What the native side of one stress bounce reports. */
export interface StressBounceResult {
  /** Locks taken (counters incremented) per locking thread. */
  locks: number[];
  /** Kernel thread ids of the locking threads. */
  tids: number[];
  /** Pages the background copiers mapped, found mapped (EEXIST), retried (EAGAIN). */
  copies: number;
  copyEexist: number;
  copyEagain: number;
  /** UFFDIO_WRITEPROTECT calls of the copiers (one per share in WP mode). */
  writeProtects: number;
  corruption: (StressMismatch & { thread: number }) | null;
  error: { errno: number; syscall: string; page: number } | null;
}

function load(): NativeAddon {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`userfaultfd: only Linux x86-64 is supported (this is ${process.platform} ${process.arch})`);
  }
  const require = createRequire(__filename);
  try {
    return require('bindings')('userfaultfd') as NativeAddon;
  } catch (cause) {
    throw new Error(
      'userfaultfd: the native addon is not built or failed to load. Run `npm rebuild userfaultfd` ' +
        '(needs python3, make and g++; see docs/troubleshooting.md).',
      { cause },
    );
  }
}

export const native: NativeAddon = load();
