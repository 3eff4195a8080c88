// The userfaultfd handle: registration, the range ioctls, events, and a
// FileHandle-like lifecycle (idempotent close, EBADF after close,
// Symbol.asyncDispose). Opening and feature negotiation are in open.ts,
// what is known of an adopted fd in adopt.ts.
import { native } from '../native';
import { closedError, withRange } from '../errors';
import { checkAligned, checkBoolean, checkInteger, checkObject, checkOneOf, describe } from '../validate';
import { Mapping } from '../memory/mapping';
import { PAGE_SIZE } from '../memory/constants';
import * as ioctl from '../ioctls/range-ioctls';
import type { IoctlResult } from '../ioctls/outcome';
import { FaultDispatcher, type JsThreadFaultPolicy, type ReaderMode } from '../faults/fault-dispatcher';
import type { EventIterator } from '../faults/event-iterator';
import type { PageFaultEvent, UffdEventOf } from '../faults/events';
import {
  REGISTER_MODE_BITS,
  featureNames,
  ioctlNames,
  type Feature,
  type IoctlName,
  type RegisterMode,
  type UnknownBit,
} from './features';
import { RegistrationSet, type Registration } from './registrations';
import { inspectUffdFd, rangeIoctlsFor } from './adopt';
import { ReceivedFd } from '../net/received-fd';
import { closeAtExit, openNegotiated, probeSupported, type Negotiated, type OpenVia } from './open';

export type UffdEvent = UffdEventOf<Userfaultfd>;

export interface OpenOptions {
  /** Features to enable. Each must be supported, or open() throws naming it. */
  features?: readonly Feature[];
  /** Handle only user-mode faults (UFFD_USER_MODE_ONLY); needed when unprivileged without vm.unprivileged_userfaultfd. */
  userModeOnly?: boolean;
  /** 'auto' (default) tries /dev/userfaultfd, then the syscall. */
  via?: OpenVia;
  /**
   * What a fault raised by this environment's own JavaScript thread gets
   * (it cannot run a handler while blocked): 'zero' (default) maps a zero
   * page, continues a minor fault or clears write protection; 'poison'
   * poisons the page (the thread gets SIGBUS). The fault is still delivered
   * as an event with resolvedByReader = true, and a warning is emitted once.
   */
  jsThreadFaults?: JsThreadFaultPolicy;
  /**
   * Who reads the fd: 'thread' (default) has a native thread read every
   * batch and hand it over; 'loop' (opt-in, experimental) polls it on this
   * thread's event loop and resolves faults in the same tick, with a native
   * watchdog thread for when this thread cannot read (it faulted itself, or
   * is busy for more than a few ms): one thread hop less per fault, about
   * 1.6-1.9x the JS-resolved fault rate, but an idle uffd wakes its watchdog
   * every 4 ms and a JS-thread fault waits 4-8 ms. See docs/architecture.md.
   */
  reader?: ReaderMode;
}

export interface EventsOptions {
  signal?: AbortSignal;
  /** Events buffered before reading stops (default 1024). */
  highWaterMark?: number;
}

export interface FromFdOptions {
  /** As for open(). */
  jsThreadFaults?: JsThreadFaultPolicy;
  /** Ranges the fd's owner registered, in its address space (see assumeRegistered()). */
  registrations?: readonly { address: number; length: number; modes: readonly RegisterMode[]; pageSize?: number }[];
}

export interface RangeLike {
  readonly address: number;
  readonly length: number;
}

export interface RegisterOptions {
  /** Page size of memory the library did not map (e.g. another process's). Default: the mapping's, or 4096. */
  pageSize?: number;
}

export class Userfaultfd implements ioctl.IoctlTarget {
  /** 'device' (/dev/userfaultfd), 'syscall', or 'fd' (adopted with fromFd()). */
  readonly openedVia: 'device' | 'syscall' | 'fd';
  readonly userModeOnly: boolean;
  /** Everything the kernel supports (the probe's answer to UFFDIO_API). */
  readonly supportedFeatures: ReadonlySet<Feature | UnknownBit>;
  /** What this fd has enabled. */
  readonly enabledFeatures: ReadonlySet<Feature>;
  /** The ioctls UFFDIO_API allows on the fd. */
  readonly ioctls: ReadonlySet<IoctlName | UnknownBit>;
  #fd: number;
  #registrations: RegistrationSet;
  #dispatcher: FaultDispatcher<Userfaultfd>;
  #policy: JsThreadFaultPolicy;
  /** The fd came from another process: its ranges are in that process's address space. */
  #foreign = false;
  #beforeClose = new Set<() => void>();

  private constructor(fd: number, openedVia: 'device' | 'syscall' | 'fd', userModeOnly: boolean, n: Negotiated, policy: JsThreadFaultPolicy, registrations: RegistrationSet, mode: ReaderMode) {
    this.#fd = fd;
    this.openedVia = openedVia;
    this.userModeOnly = userModeOnly;
    this.supportedFeatures = featureNames(n.supported);
    this.enabledFeatures = featureNames(n.enabled) as Set<Feature>;
    this.ioctls = ioctlNames(n.ioctls);
    this.#registrations = registrations;
    this.#policy = policy;
    this.#dispatcher = new FaultDispatcher<Userfaultfd>(fd, {
      adoptFork: (childFd) => {
        const child = new Userfaultfd(childFd, openedVia, userModeOnly, n, policy, this.#registrations.clone(), mode);
        child.#foreign = this.#foreign;
        return child;
      },
      closeForked: (child) => child.close(),
      observe: (event) => this.#follow(event),
    }, policy, mode);
    closeAtExit(this);
  }

  /**
   * Opens a userfaultfd (non-blocking, close-on-exec) and enables `features`.
   * The kernel's supported set is read first on a throwaway fd, so an
   * unsupported feature is a clear error naming it, and both sets are
   * reported. THREAD_ID is always enabled when supported: the reader needs
   * it to recognise faults of the JS thread.
   */
  static open(options?: OpenOptions): Userfaultfd {
    const opts = checkObject<OpenOptions>('options', options);
    const via = opts.via === undefined ? 'auto' : checkOneOf('options.via', opts.via, ['auto', 'device', 'syscall']);
    const userModeOnly = opts.userModeOnly === undefined ? false : checkBoolean('options.userModeOnly', opts.userModeOnly);
    const policy = opts.jsThreadFaults === undefined ? 'zero' : checkOneOf('options.jsThreadFaults', opts.jsThreadFaults, ['zero', 'poison']);
    const mode = opts.reader === undefined ? 'thread' : checkOneOf('options.reader', opts.reader, ['loop', 'thread']);
    const requested: readonly unknown[] = opts.features ?? [];
    if (!Array.isArray(requested)) throw new TypeError('options.features must be an array of feature names');
    const { fd, openedVia, negotiated } = openNegotiated(via, userModeOnly, requested);
    return new Userfaultfd(fd, openedVia, userModeOnly, negotiated, policy, new RegistrationSet(), mode);
  }

  /**
   * Adopts a userfaultfd that another process opened (and did UFFDIO_API
   * on), typically received over a Unix socket. This object owns the fd from
   * now on (a ReceivedFd is taken). Known: the enabled features (the kernel
   * shows them in /proc/self/fdinfo), and the kernel's supported set (probed
   * on a throwaway fd of our own; if this process cannot open one, the
   * enabled set). Not known: `userModeOnly` (reported false) and what the
   * owner registered: declare it with `options.registrations` or
   * assumeRegistered(). register() and unregister() work too: they act on
   * the owner's address space. The fd is switched to O_NONBLOCK, a flag of
   * the open file description that the owner shares.
   */
  static fromFd(fd: number | ReceivedFd, options?: FromFdOptions): Userfaultfd {
    const opts = checkObject<FromFdOptions>('options', options);
    const policy = opts.jsThreadFaults === undefined ? 'zero' : checkOneOf('options.jsThreadFaults', opts.jsThreadFaults, ['zero', 'poison']);
    if (opts.registrations !== undefined && !Array.isArray(opts.registrations)) {
      throw new TypeError('options.registrations must be an array of {address, length, modes, pageSize?}');
    }
    const number = fd instanceof ReceivedFd ? fd.fd : checkInteger('fd', fd, 0, 0x7fffffff);
    // Kernels before the "initialized" feature bit (6.x) do not show whether
    // UFFDIO_API was done, and a probe would do it: the owner is trusted to
    // have done it, as the kernel requires before any other ioctl.
    const info = inspectUffdFd(number);
    let supported = info.features;
    try {
      supported = probeSupported('auto');
    } catch {
      // This process may not open userfaultfds itself (the owner could).
    }
    native.setNonBlocking(number, true);
    // The Userfaultfd owns it now: whatever held it must not close it too
    // (a ReceivedFd, or the environment's teardown if the number came from one).
    if (fd instanceof ReceivedFd) fd.take();
    else native.netDisown(number);
    const u = new Userfaultfd(number, 'fd', false, { supported, enabled: info.features, ioctls: info.ioctls }, policy, new RegistrationSet(), 'thread');
    u.#foreign = true;
    for (const [i, r] of (opts.registrations ?? []).entries()) {
      if (r === null || typeof r !== 'object') throw new TypeError(`options.registrations[${i}] must be {address, length, modes, pageSize?}`);
      u.assumeRegistered(r, r.modes, r.pageSize === undefined ? undefined : { pageSize: r.pageSize });
    }
    return u;
  }

  /**
   * Records a range as registered with `modes` without a system call: for
   * an adopted fd (fromFd), whose owner registered its ranges itself, so
   * that the ioctls accept them. Returns the ioctls such a range allows.
   */
  assumeRegistered(range: RangeLike, modes: readonly RegisterMode[], options?: RegisterOptions): ReadonlySet<IoctlName | UnknownBit> {
    this.fdFor('assumeRegistered');
    const { address, length, pageSize } = this.#rangeOf(range, options, 'assumeRegistered');
    if (!Array.isArray(modes) || modes.length === 0) {
      throw new TypeError("modes must be a non-empty array of 'missing', 'wp', 'minor'");
    }
    for (const m of modes) checkOneOf('mode', m, ['missing', 'wp', 'minor']);
    const allowed = new Set<IoctlName | UnknownBit>(rangeIoctlsFor(modes, pageSize));
    this.#registrations.add({ start: address, end: address + length, modes: new Set(modes), ioctls: allowed, pageSize });
    return allowed;
  }

  /** Whether the fd was adopted from another process (fromFd): its ranges are that process's addresses. */
  get foreign(): boolean {
    return this.#foreign;
  }

  /** The file descriptor. Throws EBADF once closed. */
  get fd(): number {
    if (this.#fd < 0) throw closedError('userfaultfd', 'fd');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  get registrations(): readonly Registration[] {
    return this.#registrations.all;
  }

  /** Faults of the JS thread the reader has resolved by the jsThreadFaults policy. */
  get jsThreadFaultsResolved(): number {
    return this.#fd < 0 ? 0 : this.#dispatcher.resolvedByReader;
  }

  get jsThreadFaults(): JsThreadFaultPolicy {
    return this.#policy;
  }

  set jsThreadFaults(policy: JsThreadFaultPolicy) {
    this.#policy = checkOneOf('jsThreadFaults', policy, ['zero', 'poison']);
    if (this.#fd >= 0) this.#dispatcher.setPolicy(policy);
  }

  /**
   * UFFDIO_REGISTER: `range` is a Mapping or any {address, length} inside
   * one. Returns the ioctls the kernel allows on the range.
   */
  register(range: RangeLike, modes: readonly RegisterMode[], options?: RegisterOptions): ReadonlySet<IoctlName | UnknownBit> {
    const fd = this.fdFor('ioctl(UFFDIO_REGISTER)');
    const { address, length, pageSize } = this.#rangeOf(range, options, 'ioctl(UFFDIO_REGISTER)');
    if (!Array.isArray(modes) || modes.length === 0) {
      throw new TypeError("modes must be a non-empty array of 'missing', 'wp', 'minor'");
    }
    let mode = 0;
    for (const m of modes) mode |= REGISTER_MODE_BITS[checkOneOf('mode', m, ['missing', 'wp', 'minor'])];
    let mask: bigint;
    try {
      mask = native.register(fd, address, length, mode);
    } catch (err) {
      withRange(err, address, length);
    }
    const allowed = ioctlNames(mask);
    this.#registrations.add({ start: address, end: address + length, modes: new Set(modes), ioctls: allowed, pageSize });
    return allowed;
  }

  /** UFFDIO_UNREGISTER of a range (or part of one). */
  unregister(range: RangeLike, options?: RegisterOptions): void {
    const fd = this.fdFor('ioctl(UFFDIO_UNREGISTER)');
    const { address, length } = this.#rangeOf(range, options, 'ioctl(UFFDIO_UNREGISTER)');
    // The kernel accepts a range with nothing registered and does nothing:
    // say so instead, as the range ioctls do.
    if (!this.#registrations.overlaps(address, address + length)) {
      throw new RangeError(
        `UFFDIO_UNREGISTER: 0x${address.toString(16)}+0x${length.toString(16)} overlaps no range registered with this userfaultfd`,
      );
    }
    try {
      native.unregister(fd, address, length);
    } catch (err) {
      withRange(err, address, length);
    }
    this.#registrations.remove(address, address + length);
  }

  /** UFFDIO_COPY of `src` (all of it, or options.length bytes from options.srcOffset) to `dst`. */
  copy(dst: number, src: ioctl.CopySource, options?: ioctl.CopyOptions): IoctlResult {
    return ioctl.copy(this, dst, src, options);
  }
  /** UFFDIO_COPY from memory of this process, such as another Mapping. */
  copyFromAddress(dst: number, srcAddress: number, length: number, options?: ioctl.CopyOptions): IoctlResult {
    return ioctl.copyFromAddress(this, dst, srcAddress, length, options);
  }
  zeropage(address: number, length: number, options?: ioctl.WakeOption): IoctlResult {
    return ioctl.zeropage(this, address, length, options);
  }
  /** UFFDIO_CONTINUE: map the page-cache pages of a MINOR-registered range. */
  continue(address: number, length: number, options?: ioctl.ContinueOptions): IoctlResult {
    return ioctl.continueRange(this, address, length, options);
  }
  writeProtect(address: number, length: number, protect: boolean, options?: ioctl.WakeOption): IoctlResult {
    return ioctl.writeProtect(this, address, length, protect, options);
  }
  wake(address: number, length: number): IoctlResult {
    return ioctl.wake(this, address, length);
  }
  poison(address: number, length: number, options?: ioctl.WakeOption): IoctlResult {
    return ioctl.poison(this, address, length, options);
  }
  move(dst: number, src: number, length: number, options?: ioctl.MoveOptions): IoctlResult {
    return ioctl.move(this, dst, src, length, options);
  }

  /**
   * The events of this fd, as an async iterator. Several iterators may be
   * open; each sees every event. Ends when the fd is closed.
   */
  events(options?: EventsOptions): EventIterator<UffdEvent> {
    const opts = checkObject<EventsOptions>('options', options);
    const hwm = opts.highWaterMark === undefined ? 1024 : checkInteger('options.highWaterMark', opts.highWaterMark, 1, 1 << 20);
    if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
    this.fdFor('read');
    return this.#dispatcher.subscribe(hwm, opts.signal);
  }

  /**
   * A synchronous fault handler: `handler(event)` runs for every pagefault
   * event in the tick it is read (with `reader: 'loop'`, on this
   * thread straight from the fd), so it can resolve the fault at once
   * (`copy()`, `zeropage()`...), with no iterator, promise or thread hop in
   * between: the fastest way to serve faults from JavaScript. Faults the
   * reader already resolved for the JS thread are not passed to it.
   * Iterators still see every event. `null` removes it; while set it keeps
   * the event loop alive (unless `unref()`). A throwing handler leaves its
   * fault unresolved; the error is rethrown (uncaught) after the batch.
   */
  onFault(handler: ((event: PageFaultEvent) => void) | null): this {
    if (handler !== null && typeof handler !== 'function') throw new TypeError(`handler must be a function or null (got ${describe(handler)})`);
    this.fdFor('read');
    this.#dispatcher.setFaultHandler(handler === null ? undefined : (handler as (event: UffdEvent) => void));
    return this;
  }

  /** Who reads the fd (the `reader` option of open()). */
  get readerMode(): ReaderMode {
    return this.#dispatcher.mode;
  }

  /**
   * Stops reading the fd: new messages stay in the kernel, so whatever waits
   * for them to be read stays blocked — a faulting thread, or a thread in
   * madvise()/mremap()/munmap()/fork() waiting for its REMOVE/REMAP/UNMAP/FORK
   * event (the window in which range ioctls answer 'EAGAIN'). Events read
   * before the call are still delivered. When it returns, no read is under
   * way. A fault of the JavaScript thread cannot wait for resumeReading()
   * (that thread would be the one to call it): if the JS thread stays blocked
   * in a userfault while paused, the reader resumes by itself and resolves it
   * by the jsThreadFaults policy, and readingPaused reads false again.
   */
  pauseReading(): this {
    this.fdFor('read');
    this.#dispatcher.pause(true);
    return this;
  }

  /** Reads the fd again after pauseReading(); the waiting messages are delivered. */
  resumeReading(): this {
    this.fdFor('read');
    this.#dispatcher.pause(false);
    return this;
  }

  /** Whether reading is paused (pauseReading()); false once closed. */
  get readingPaused(): boolean {
    return this.#fd >= 0 && this.#dispatcher.paused;
  }

  /** Keep the event loop alive while an iterator waits for events (the default). */
  ref(): this {
    if (this.#fd >= 0) this.#dispatcher.ref(true);
    return this;
  }
  /** Let the process exit even while an iterator waits for events. */
  unref(): this {
    if (this.#fd >= 0) this.#dispatcher.ref(false);
    return this;
  }

  /**
   * Stops the reader and closes the fd. Idempotent. Threads blocked in a
   * fault on this fd are woken; their access then proceeds as if the range
   * were not registered (an anonymous page reads zeros).
   */
  close(): void {
    if (this.#fd < 0) return;
    // A pager attached to the reader detaches first (lib/pager/).
    for (const hook of [...this.#beforeClose]) {
      try {
        hook();
      } catch {
        // Closing must go on: the fd and its blocked threads matter more.
      }
    }
    const fd = this.#fd;
    this.#fd = -1;
    closeAtExit(this, false);
    // The reader is stopped (joined) before the fd goes: a reader polling a
    // closed fd number could read from whatever reuses it.
    try {
      this.#dispatcher.stop();
    } finally {
      native.closeFd(fd);
    }
    // The kernel unregistered every range when the fd went away.
    this.#registrations = new RegistrationSet();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /**
   * @internal For lib/pager/: the id of the native reader thread, to which a
   * Pager attaches as a fault filter (it resolves the faults of its ranges
   * there and passes everything else on to events()). EBADF once closed.
   */
  readerIdFor(syscall: string): number {
    this.fdFor(syscall);
    return this.#dispatcher.readerId;
  }

  /** @internal Runs `hook` when close() starts, before the reader stops; returns a remover. */
  beforeClose(hook: () => void): () => void {
    this.#beforeClose.add(hook);
    return () => this.#beforeClose.delete(hook);
  }

  /** @internal IoctlTarget: the fd, or EBADF naming `syscall` once closed. */
  fdFor(syscall: string): number {
    if (this.#fd < 0) throw closedError('userfaultfd', syscall);
    return this.#fd;
  }

  /** @internal IoctlTarget */
  registrationFor(address: number, length: number, what: string): Registration {
    const reg = this.#registrations.covering(address, length);
    if (!reg) {
      throw new RangeError(`${what}: 0x${address.toString(16)}+0x${length.toString(16)} is not inside a range registered with this userfaultfd`);
    }
    return reg;
  }

  #rangeOf(range: RangeLike, options: RegisterOptions | undefined, syscall: string): { address: number; length: number; pageSize: number } {
    if (range === null || typeof range !== 'object') throw new TypeError('range must be a Mapping or {address, length}');
    const opts = checkObject<RegisterOptions>('options', options);
    if (range instanceof Mapping && range.unmapped) throw closedError(`mapping ${range.id}`, syscall);
    const address = checkInteger('range.address', range.address, 1);
    const length = checkInteger('range.length', range.length, 1);
    // A range that starts in a mapping of ours must end in it too: past its
    // end lies other memory (or none, and the kernel would say only EINVAL).
    // An adopted fd's addresses are another process's: our mappings say nothing.
    const mapping = this.#foreign ? undefined : range instanceof Mapping ? range : Mapping.containing(address);
    if (mapping && !mapping.contains(address, length)) {
      throw new RangeError(
        `range 0x${address.toString(16)}+0x${length.toString(16)} extends beyond the mapping at 0x${mapping.address.toString(16)}+0x${mapping.length.toString(16)}`,
      );
    }
    let pageSize: number;
    if (opts.pageSize !== undefined) {
      pageSize = checkInteger('options.pageSize', opts.pageSize, PAGE_SIZE);
    } else if (mapping) {
      pageSize = mapping.pageSize;
    } else {
      pageSize = PAGE_SIZE;
    }
    checkAligned('range.address', address, pageSize);
    checkAligned('range.length', length, pageSize);
    return { address, length, pageSize };
  }

  #follow(event: UffdEvent): void {
    if (event.type === 'remap') this.#registrations.move(event.from, event.to, event.length);
    else if (event.type === 'unmap') this.#registrations.remove(event.start, event.end);
  }
}

