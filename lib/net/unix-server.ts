// A listening Unix stream socket: created mode 0600 (the mode is set on the
// socket before bind(), so the file is never more open than that), never
// replacing anything but a stale socket, optionally accepting only peers of
// given uids (SO_PEERCRED), and removed on close.
import { EventEmitter } from 'node:events';
import { lstatSync, unlinkSync, type Stats } from 'node:fs';
import { native } from '../native';
import { closedError, conditionError } from '../errors';
import { checkInteger, checkObject } from '../validate';
import { FdWatch } from './fd-watch';
import { checkSocketPath } from './socket-path';
import { UnixSocket, type PeerCredentials } from './unix-socket';

export interface ListenOptions {
  /** Accept only peers whose uid is one of these; others are closed at once and reported ('reject'). */
  allowedUids?: readonly number[];
  /** File mode of the socket (default 0o600; less the umask, which can only remove bits). */
  mode?: number;
  /** listen() backlog (default 16). */
  backlog?: number;
}

export interface AcceptOptions {
  signal?: AbortSignal;
}

/** A connection the server closed without handing it out. */
export interface Rejection {
  readonly peer: PeerCredentials;
  readonly reason: string;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * An existing socket file is replaced only if nothing listens on it (a
 * connect() is refused): the leftover of a handler that died. Anything else
 * at the path is an error.
 */
function clearStaleSocket(path: string): void {
  const st = lstatOrNull(path);
  if (st === null) return;
  if (!st.isSocket()) {
    const kind = st.isFile() ? 'a regular file' : st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symbolic link' : 'not a socket';
    throw conditionError('EEXIST', 'bind', `refusing to replace ${path}: it is ${kind}, not a socket`);
  }
  let fd = -1;
  try {
    fd = native.unixConnect(path);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ECONNREFUSED') throw err;
    unlinkSync(path);
    return;
  } finally {
    if (fd >= 0) native.netClose(fd);
  }
  throw conditionError('EADDRINUSE', 'bind', `a server is already listening on ${path}`);
}

export class UnixServer extends EventEmitter<{ reject: [Rejection] }> {
  readonly path: string;
  readonly allowedUids: ReadonlySet<number> | null;
  #fd: number;
  #watch: FdWatch;
  #ino: number;
  #rejected = 0;

  private constructor(path: string, fd: number, allowedUids: ReadonlySet<number> | null) {
    super();
    this.path = path;
    this.#fd = fd;
    this.allowedUids = allowedUids;
    this.#watch = new FdWatch(fd);
    this.#ino = lstatSync(path).ino;
  }

  /** Creates the socket file at `path` and listens on it. */
  static listen(path: string, options?: ListenOptions): UnixServer {
    checkSocketPath(path);
    const opts = checkObject<ListenOptions>('options', options);
    const mode = opts.mode === undefined ? 0o600 : checkInteger('options.mode', opts.mode, 0, 0o777);
    const backlog = opts.backlog === undefined ? 16 : checkInteger('options.backlog', opts.backlog, 1, 4096);
    let uids: Set<number> | null = null;
    if (opts.allowedUids !== undefined) {
      if (!Array.isArray(opts.allowedUids)) throw new TypeError('options.allowedUids must be an array of uids');
      uids = new Set(opts.allowedUids.map((u, i) => checkInteger(`options.allowedUids[${i}]`, u, 0, 0xffffffff)));
    }
    clearStaleSocket(path);
    return new UnixServer(path, native.unixListen(path, backlog, mode), uids);
  }

  /** Connections closed because their peer's uid is not allowed. */
  get rejected(): number {
    return this.#rejected;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * The next connection from an allowed peer. A peer whose uid is not
   * allowed is closed and reported as a 'reject' event, and the wait goes on.
   */
  async accept(options?: AcceptOptions): Promise<UnixSocket> {
    const opts = checkObject<AcceptOptions>('options', options);
    for (;;) {
      if (this.#fd < 0) throw closedError('server', 'accept4');
      const fd = native.unixAccept(this.#fd);
      if (fd < 0) {
        await this.#watch.readable(opts.signal);
        continue;
      }
      const [pid, uid, gid] = native.peerCredentials(fd);
      if (this.allowedUids !== null && !this.allowedUids.has(uid)) {
        native.netClose(fd);
        this.#rejected++;
        const reason = `uid ${uid} is not allowed (allowed: ${[...this.allowedUids].join(', ') || 'none'})`;
        this.emit('reject', { peer: { pid, uid, gid }, reason });
        continue;
      }
      return new UnixSocket(fd);
    }
  }

  /** Whether a pending accept() keeps the event loop alive (default: it does). */
  ref(): this {
    if (this.#fd >= 0) this.#watch.ref(true);
    return this;
  }
  unref(): this {
    if (this.#fd >= 0) this.#watch.ref(false);
    return this;
  }

  /** Stops listening and removes the socket file (if it is still this one). Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    this.#watch.close('server');
    native.netClose(fd);
    const st = lstatOrNull(this.path);
    if (st !== null && st.isSocket() && st.ino === this.#ino) unlinkSync(this.path);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
