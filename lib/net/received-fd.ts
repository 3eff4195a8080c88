// A file descriptor that arrived over a Unix socket (SCM_RIGHTS). It is
// owned by this object: closed once, by close() or by the environment's
// teardown, unless ownership is taken with take() (e.g. Userfaultfd.fromFd).
import { readlinkSync } from 'node:fs';
import { native } from '../native';
import { closedError } from '../errors';

export class ReceivedFd {
  #fd: number;
  #state: 'open' | 'closed' | 'taken' = 'open';

  /** @internal */
  constructor(fd: number) {
    this.#fd = fd;
  }

  /** The fd number, still owned by this object. Throws EBADF once closed or taken. */
  get fd(): number {
    if (this.#state !== 'open') throw closedError(`received fd ${this.#fd}`, 'fd');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#state !== 'open';
  }

  /** The fd's target as /proc shows it: 'anon_inode:[userfaultfd]', '/memfd:name (deleted)', 'socket:[…]'. */
  describe(): string {
    return readlinkSync(`/proc/self/fd/${this.fd}`);
  }

  /**
   * Hands the fd over: this object forgets it (close() no longer closes it,
   * teardown no longer closes it) and the caller must close it.
   */
  take(): number {
    const fd = this.fd;
    this.#state = 'taken';
    native.netDisown(fd);
    return fd;
  }

  /** Idempotent. */
  close(): void {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    native.netClose(this.#fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
