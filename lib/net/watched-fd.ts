// A socket fd this environment owns, with the FdWatch that waits on it: the
// part UnixServer and UnixSocket share. close() stops the watch first (its
// pending waits reject with EBADF), then closes the fd; both only once.
import { native } from '../native';
import { closedError } from '../errors';
import { FdWatch } from './fd-watch';

export class WatchedFd {
  #fd: number;
  readonly #what: string;
  readonly watch: FdWatch;

  /** `what` names the handle in EBADF errors ('socket', 'server'). */
  constructor(fd: number, what: string) {
    this.#fd = fd;
    this.#what = what;
    this.watch = new FdWatch(fd);
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** The fd, or EBADF for `syscall` once closed. */
  fdFor(syscall: string): number {
    if (this.#fd < 0) throw closedError(this.#what, syscall);
    return this.#fd;
  }

  /** Whether a pending wait keeps the event loop alive; nothing once closed. */
  ref(ref: boolean): void {
    if (this.#fd >= 0) this.watch.ref(ref);
  }

  /** Closes the watch and the fd; false if they were closed already. */
  close(): boolean {
    if (this.#fd < 0) return false;
    const fd = this.#fd;
    this.#fd = -1;
    this.watch.close(this.#what);
    native.netClose(fd);
    return true;
  }
}
