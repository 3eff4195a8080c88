// A connected Unix stream socket that sends and receives bytes with file
// descriptors (SCM_RIGHTS), and knows its peer (SO_PEERCRED). Non-blocking
// system calls; on EAGAIN it waits on the event loop (FdWatch), never on a
// thread of the threadpool.
import { native } from '../native';
import { closedError } from '../errors';
import { checkInteger, checkObject } from '../validate';
import { FdWatch } from './fd-watch';
import { ReceivedFd } from './received-fd';
import { checkSocketPath } from './socket-path';

/** The peer process as the kernel recorded it when the connection was made (SO_PEERCRED). */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export interface ReceivedMessage {
  /** The bytes one recvmsg() returned (a stream has no message boundaries; fds arrive with the first byte sent with them). */
  readonly data: Buffer;
  /** The fds that came with these bytes, owned by the caller (close() each, or take() it). */
  readonly fds: ReceivedFd[];
  readonly peer: PeerCredentials;
}

export interface ReceiveOptions {
  /** Most bytes to read (default 65536). */
  maxBytes?: number;
  /** Most fds to accept (default 16). A message carrying more is an error (its fds are closed). */
  maxFds?: number;
  signal?: AbortSignal;
}

export interface SendOptions {
  signal?: AbortSignal;
}

export interface ConnectOptions {
  signal?: AbortSignal;
}

const MAX_FDS = 253; // SCM_MAX_FD

function truncatedError(sent: number, maxFds: number): Error {
  const err = new Error(
    `recvmsg: the control data was truncated (MSG_CTRUNC): the message carried ${sent > maxFds ? `more than ${maxFds}` : 'more'} fds than maxFds ${maxFds} allows; the fds that arrived were closed`,
  ) as Error & { code: string; syscall: string };
  err.code = 'ERR_UFFD_CMSG_TRUNCATED';
  err.syscall = 'recvmsg';
  return err;
}

export class UnixSocket {
  readonly peer: PeerCredentials;
  #fd: number;
  #watch: FdWatch;

  /** @internal Takes ownership of a connected, non-blocking socket fd. */
  constructor(fd: number) {
    this.#fd = fd;
    const [pid, uid, gid] = native.peerCredentials(fd);
    this.peer = Object.freeze({ pid, uid, gid });
    this.#watch = new FdWatch(fd);
  }

  /** Connects to a listening Unix socket at `path`. */
  static async connect(path: string, options?: ConnectOptions): Promise<UnixSocket> {
    checkSocketPath(path);
    const opts = checkObject<ConnectOptions>('options', options);
    // A full backlog is EAGAIN for a Unix socket: retry a few times.
    for (let attempt = 0; ; attempt++) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      try {
        return new UnixSocket(native.unixConnect(path));
      } catch (err) {
        if ((err as { code?: string }).code !== 'EAGAIN' || attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  get fd(): number {
    if (this.#fd < 0) throw closedError('socket', 'fd');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Sends all of `data`, with `fds` attached to its first byte (SCM_RIGHTS).
   * The fds stay open here: the peer gets its own copies.
   */
  async send(data: string | Uint8Array, fds: readonly (number | ReceivedFd)[] = [], options?: SendOptions): Promise<void> {
    const opts = checkObject<SendOptions>('options', options);
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (!(bytes instanceof Uint8Array)) throw new TypeError('data must be a string, Buffer or Uint8Array');
    if (!Array.isArray(fds)) throw new TypeError('fds must be an array of fds');
    if (fds.length > MAX_FDS) throw new RangeError(`at most ${MAX_FDS} fds can be sent in one message (got ${fds.length})`);
    const numbers = fds.map((f, i) => (f instanceof ReceivedFd ? f.fd : checkInteger(`fds[${i}]`, f, 0, 0x7fffffff)));
    if (bytes.length === 0 && numbers.length > 0) throw new RangeError('fds must be sent with at least one byte of data');
    let offset = 0;
    let pending = numbers;
    while (offset < bytes.length) {
      const n = native.sendFds(this.fdFor('sendmsg'), bytes, offset, bytes.length - offset, pending);
      if (n < 0) {
        await this.#watch.writable(opts.signal);
        continue;
      }
      offset += n;
      pending = [];
    }
  }

  /**
   * Receives what is there (waiting for something if nothing is): up to
   * maxBytes bytes with the fds sent with them, close-on-exec. Resolves to
   * null at the end of the stream (the peer closed its end).
   */
  async receive(options?: ReceiveOptions): Promise<ReceivedMessage | null> {
    const opts = checkObject<ReceiveOptions>('options', options);
    const maxBytes = opts.maxBytes === undefined ? 65536 : checkInteger('options.maxBytes', opts.maxBytes, 1, 1 << 26);
    const maxFds = opts.maxFds === undefined ? 16 : checkInteger('options.maxFds', opts.maxFds, 0, MAX_FDS);
    const buffer = Buffer.allocUnsafe(maxBytes);
    for (;;) {
      const got = native.recvFds(this.fdFor('recvmsg'), buffer, maxFds);
      if (got === null) {
        await this.#watch.readable(opts.signal);
        continue;
      }
      const [n, fds, truncated, sent] = got;
      if (truncated) throw truncatedError(sent, maxFds);
      if (n === 0 && fds.length === 0) return null;
      return { data: Buffer.from(buffer.subarray(0, n)), fds: fds.map((fd) => new ReceivedFd(fd)), peer: this.peer };
    }
  }

  /**
   * Resolves when the peer process has exited (its pidfd becomes readable):
   * the end of the stream only says the peer closed the socket, which a
   * process may do long before it exits.
   */
  async peerExited(options?: { signal?: AbortSignal }): Promise<void> {
    const pidfd = native.peerPidfd(this.fdFor('getsockopt'));
    const watch = new FdWatch(pidfd);
    try {
      await watch.readable(options?.signal);
    } finally {
      watch.close('pidfd');
      native.netClose(pidfd);
    }
  }

  /** Whether waiting for data keeps the event loop alive (default: it does). */
  ref(): this {
    if (this.#fd >= 0) this.#watch.ref(true);
    return this;
  }
  unref(): this {
    if (this.#fd >= 0) this.#watch.ref(false);
    return this;
  }

  /** Idempotent; pending sends and receives reject with EBADF. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    this.#watch.close('socket');
    native.netClose(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  private fdFor(syscall: string): number {
    if (this.#fd < 0) throw closedError('socket', syscall);
    return this.#fd;
  }
}
