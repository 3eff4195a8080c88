// A page-fault handler for Firecracker snapshots, compatible with the
// protocol of Firecracker's example handlers (src/firecracker/examples/uffd):
// listen on a Unix socket; Firecracker connects and sends ONE message, the
// JSON region list (regions.ts) with its userfaultfd as SCM_RIGHTS; serve
// every fault from the snapshot memory file at the region's offset. The
// faults are served by the Pager's native path (one UFFDIO_COPY from its
// mapping of the file per fault or read-ahead window, on the uffd's reader
// thread), not by JavaScript.
//
// Balloon: Firecracker enables UFFD_FEATURE_EVENT_REMOVE and
// madvise(MADV_DONTNEED)s the pages the guest gives back. As its example
// handler does, a REMOVE'd range is served with zero pages from then on
// (Pager afterRemove: 'zero'). A range DONTNEED'd without EVENT_REMOVE is
// never reported, so it is served from the file again.
//
// The end: Firecracker closes the socket right after the handshake (older
// versions) or keeps it (newer ones), so the end of the stream says nothing;
// the session ends when the Firecracker process exits (its pidfd, from
// SO_PEERPIDFD, becomes readable) or when close() is called.
import { EventEmitter } from 'node:events';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { checkInteger, checkObject, checkOneOf } from '../validate';
import { Pager, type FailurePolicy, type PagerFailure, type PagerOptions } from '../pager/pager';
import type { PagerStats } from '../pager/stats';
import { Userfaultfd } from '../uffd/userfaultfd';
import { UnixServer, type Rejection } from '../net/unix-server';
import type { PeerCredentials, UnixSocket } from '../net/unix-socket';
import type { ReceivedFd } from '../net/received-fd';
import { FirecrackerHandshakeError, parseRegions, type GuestRegion } from './regions';

export interface FirecrackerHandlerOptions {
  /** Where to listen (created mode 0600; a stale socket is replaced, anything else refused). */
  socket: string;
  /** The snapshot memory file (Firecracker's mem_file_path). */
  memory: string;
  /** Accept only Firecracker processes running as one of these uids. */
  allowedUids?: readonly number[];
  /** Read-ahead of the pager (default: adaptive 64 KiB to 4 MiB; false: one page per fault). */
  readAhead?: PagerOptions['readAhead'];
  /** What a page gets if the file cannot be read (default 'poison': SIGBUS in the VM process). */
  onFailure?: FailurePolicy;
  /** How long a connected peer has to send the handshake (default 10 s). */
  handshakeTimeoutMs?: number;
}

export type SessionEndReason = 'peer-exited' | 'closed';

export interface SessionEnd {
  readonly reason: SessionEndReason;
  readonly stats: PagerStats;
}

const MAX_HANDSHAKE = 1 << 20;

/** One VM being restored: its regions, its uffd and the pager serving it. */
export class FirecrackerSession extends EventEmitter<{ unexpected: [unknown]; failure: [PagerFailure]; end: [SessionEnd] }> {
  readonly peer: PeerCredentials;
  readonly regions: readonly GuestRegion[];
  readonly uffd: Userfaultfd;
  readonly pager: Pager;
  /** Resolves when the VM process exits or close() is called. */
  readonly ended: Promise<SessionEnd>;
  #end!: (end: SessionEnd) => void;
  #stop = new AbortController();
  #closed = false;
  #lastStats: PagerStats | null = null;
  #rewoken = 0;

  /** @internal */
  constructor(peer: PeerCredentials, regions: GuestRegion[], uffd: Userfaultfd, pager: Pager, exited: Promise<void>) {
    super();
    this.peer = peer;
    this.regions = regions;
    this.uffd = uffd;
    this.pager = pager;
    this.ended = new Promise((resolve) => (this.#end = resolve));
    pager.on('failure', (f: PagerFailure) => this.emit('failure', f));
    exited.then(
      () => this.#finish('peer-exited'),
      () => undefined, // aborted by close()
    );
    void this.#drainEvents();
  }

  stats(): PagerStats {
    return this.#closed ? (this.#lastStats as PagerStats) : this.pager.stats();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stops serving and closes the uffd. Faults of the VM after this block until it exits. Idempotent. */
  close(): void {
    this.#finish('closed');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /** Faults read before the pager took over the uffd, woken to fault again (see #drainEvents). */
  get rewoken(): number {
    return this.#rewoken;
  }

  // Everything the pager does not handle reaches uffd.events(): REMOVE and
  // UNMAP notes (already acted upon), faults the uffd's reader read before
  // the pager was attached (the VM faults as soon as the handshake is sent),
  // and faults outside the handshake's regions. The early ones are woken
  // (serve() already woke their threads; waking again is harmless): the
  // thread touches the page again and the pager serves that fault.
  // Nothing can serve the others: reported as 'unexpected'.
  async #drainEvents(): Promise<void> {
    try {
      for await (const event of this.uffd.events({ signal: this.#stop.signal })) {
        if (event.type !== 'pagefault') continue;
        const r = this.regions.find((g) => event.address >= g.address && event.address < g.address + g.size);
        if (r === undefined) {
          this.emit('unexpected', event);
          continue;
        }
        this.#rewoken++;
        this.uffd.wake(event.address - ((event.address - r.address) % r.pageSize), r.pageSize);
      }
    } catch {
      // Aborted, or the uffd was closed.
    }
  }

  #finish(reason: SessionEndReason): void {
    if (this.#closed) return;
    this.#lastStats = this.pager.stats();
    this.#closed = true;
    this.#stop.abort();
    this.pager.close();
    this.uffd.close();
    const end = { reason, stats: this.#lastStats };
    this.#end(end);
    this.emit('end', end);
  }
}

/** Listens for Firecracker and serves the snapshot memory file to each VM that connects. */
export class FirecrackerHandler extends EventEmitter<{ reject: [Rejection] }> {
  readonly socketPath: string;
  readonly memoryPath: string;
  readonly memorySize: number;
  readonly server: UnixServer;
  #memoryFd: number;
  #options: FirecrackerHandlerOptions;
  #timeout: number;

  private constructor(options: FirecrackerHandlerOptions, memoryFd: number, memorySize: number, server: UnixServer, timeout: number) {
    super();
    this.socketPath = options.socket;
    this.memoryPath = options.memory;
    this.#options = options;
    this.#memoryFd = memoryFd;
    this.memorySize = memorySize;
    this.server = server;
    this.#timeout = timeout;
    server.on('reject', (r) => this.emit('reject', r));
  }

  /** Opens the memory file and starts listening. */
  static listen(options: FirecrackerHandlerOptions): FirecrackerHandler {
    const opts = checkObject<FirecrackerHandlerOptions>('options', options);
    if (typeof opts.memory !== 'string' || opts.memory === '') throw new TypeError('options.memory must be the path of the snapshot memory file');
    if (typeof opts.socket !== 'string') throw new TypeError('options.socket must be the path of the socket to listen on');
    const timeout = opts.handshakeTimeoutMs === undefined ? 10_000 : checkInteger('options.handshakeTimeoutMs', opts.handshakeTimeoutMs, 1);
    if (opts.readAhead !== undefined && typeof opts.readAhead !== 'boolean' && (opts.readAhead === null || typeof opts.readAhead !== 'object')) {
      throw new TypeError('options.readAhead must be a boolean or {min?, max?, async?}');
    }
    if (opts.onFailure !== undefined) checkOneOf('options.onFailure', opts.onFailure, ['poison', 'zero']);
    const fd = openSync(opts.memory, 'r');
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new TypeError(`options.memory ${opts.memory} is not a regular file`);
      if (st.size === 0) throw new RangeError(`the memory file ${opts.memory} is empty`);
      const server = UnixServer.listen(opts.socket, opts.allowedUids === undefined ? {} : { allowedUids: opts.allowedUids });
      return new FirecrackerHandler(opts as FirecrackerHandlerOptions, fd, st.size, server, timeout);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * Waits for a VM to connect, takes its handshake and starts serving it.
   * A broken handshake rejects with FirecrackerHandshakeError (the
   * connection and any fds it carried are closed).
   */
  async accept(options?: { signal?: AbortSignal }): Promise<FirecrackerSession> {
    const conn = await this.server.accept(options);
    try {
      return await this.#handshake(conn);
    } finally {
      conn.close();
    }
  }

  /** Stops listening (removes the socket) and closes the memory file; sessions go on. Idempotent. */
  close(): void {
    this.server.close();
    if (this.#memoryFd >= 0) {
      closeSync(this.#memoryFd);
      this.#memoryFd = -1;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  async #handshake(conn: UnixSocket): Promise<FirecrackerSession> {
    // Asked now, while the peer is surely alive: a pidfd of that process.
    const exitWatch = new AbortController();
    const exited = conn.peerExited({ signal: exitWatch.signal });
    exited.catch(() => undefined);
    const timer = AbortSignal.timeout(this.#timeout);
    let fds: ReceivedFd[] = [];
    let uffd: Userfaultfd | undefined;
    try {
      const chunks: Buffer[] = [];
      let text = '';
      for (;;) {
        // Up to 8 fds: Firecracker sends 1 (3 with guest_memfd); more is an error, not a truncation.
        const msg = await conn.receive({ maxFds: 8, signal: timer }).catch((err: Error) => {
          if (err.name === 'AbortError') throw new FirecrackerHandshakeError(`no handshake from pid ${conn.peer.pid} within ${this.#timeout} ms`);
          throw err;
        });
        if (msg === null) break;
        fds.push(...msg.fds);
        chunks.push(msg.data);
        text = Buffer.concat(chunks).toString('utf8');
        if (text.length > MAX_HANDSHAKE) throw new FirecrackerHandshakeError(`the handshake is over ${MAX_HANDSHAKE} bytes`);
        if (complete(text)) break;
      }
      if (text === '') throw new FirecrackerHandshakeError(`pid ${conn.peer.pid} closed the connection without sending the handshake`);
      if (fds.length === 0) throw new FirecrackerHandshakeError('the handshake carried no file descriptor: the userfaultfd must come with it (SCM_RIGHTS)');
      if (fds.length !== 1) {
        throw new FirecrackerHandshakeError(
          `the handshake carried ${fds.length} file descriptors; only the uffd alone is supported${fds.length === 3 ? ' (3 is the guest_memfd mode, which this handler does not serve)' : ''}`,
        );
      }
      const regions = parseRegions(text, this.memorySize);
      if (fds[0].describe() !== 'anon_inode:[userfaultfd]') {
        throw new FirecrackerHandshakeError(`the fd sent with the handshake is not a userfaultfd (it is ${fds[0].describe()})`);
      }
      uffd = Userfaultfd.fromFd(fds[0], {
        registrations: regions.map((r) => ({ address: r.address, length: r.size, modes: ['missing'] as const, pageSize: r.pageSize })),
      });
      fds = [];
      const pager = Pager.create(uffd, {
        afterRemove: 'zero',
        ...(this.#options.readAhead === undefined ? {} : { readAhead: this.#options.readAhead }),
        ...(this.#options.onFailure === undefined ? {} : { onFailure: this.#options.onFailure }),
      });
      for (const r of regions) pager.serve({ address: r.address, length: r.size }, { kind: 'file', fd: this.#memoryFd, offset: r.offset });
      const session = new FirecrackerSession(conn.peer, regions, uffd, pager, exited);
      session.once('end', () => exitWatch.abort());
      return session;
    } catch (err) {
      exitWatch.abort();
      for (const f of fds) f.close();
      uffd?.close();
      // Who sent it: the caller may kill it (its first fault would hang).
      if (err instanceof Error) (err as Error & { peerPid?: number }).peerPid = conn.peer.pid;
      throw err;
    }
  }
}

/** Whether the text so far is a whole JSON value (a stream may split the handshake). */
function complete(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch (err) {
    return !/Unexpected end of JSON input|Unterminated/.test((err as Error).message);
  }
}
