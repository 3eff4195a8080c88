// The range ioctls: argument checks against the registration, the mode bits,
// and the decoded outcome. Userfaultfd's methods delegate here.
import { native } from '../native';
import type { IoctlReturn } from '../native';
import { checkAligned, checkBoolean, checkInteger, checkObject } from '../validate';
import type { Registration } from '../uffd/registrations';
import type { IoctlName } from '../uffd/features';
import { decodeOutcome, type IoctlResult } from './outcome';

/** What the ioctls need from a Userfaultfd. */
export interface IoctlTarget {
  /** The fd; throws EBADF when closed. */
  readonly fd: number;
  /** The registration covering the range; throws RangeError if none. */
  registrationFor(address: number, length: number, what: string): Registration;
}

export interface WakeOption {
  /** Do not wake the faulting threads (…_MODE_DONTWAKE); call wake() later. */
  dontWake?: boolean;
}
export interface CopyOptions extends WakeOption {
  /** Map the page write-protected (UFFDIO_COPY_MODE_WP). */
  writeProtect?: boolean;
  /** Bytes of `src` to copy, from srcOffset. Default: all of it. */
  length?: number;
  srcOffset?: number;
}
export interface ContinueOptions extends WakeOption {
  /** Map the page write-protected (UFFDIO_CONTINUE_MODE_WP). */
  writeProtect?: boolean;
}
export interface MoveOptions extends WakeOption {
  /** Skip holes in the source instead of failing with ENOENT. */
  allowSrcHoles?: boolean;
}

export type CopySource = ArrayBufferView | ArrayBuffer;

/**
 * The mode bits of the options one ioctl takes, by its own bit table: the
 * same bit means different things to different ioctls (1 << 1 is COPY_MODE_WP
 * but MOVE_MODE_ALLOW_SRC_HOLES), so an option an ioctl does not take is
 * ignored rather than mapped onto another one's bit. Options must be
 * booleans: `writeProtect: 'false'` is a TypeError, not a protected page.
 */
function modeBits(opts: object, bits: Readonly<Record<string, number>>): number {
  let mode = 0;
  for (const [name, bit] of Object.entries(bits)) {
    const value = (opts as Record<string, unknown>)[name];
    if (value !== undefined && checkBoolean(`options.${name}`, value)) mode |= bit;
  }
  return mode;
}

// include/uapi/linux/userfaultfd.h: UFFDIO_*_MODE_*.
const COPY_MODES = { dontWake: 1, writeProtect: 2 } as const;
const ZEROPAGE_MODES = { dontWake: 1 } as const;
const CONTINUE_MODES = { dontWake: 1, writeProtect: 2 } as const;
const WRITEPROTECT_MODES = { dontWake: 2 } as const; // 1 is MODE_WP, from `protect`
const POISON_MODES = { dontWake: 1 } as const;
const MOVE_MODES = { dontWake: 1, allowSrcHoles: 2 } as const;

function checkRange(t: IoctlTarget, address: number, length: number, ioctl: IoctlName): Registration {
  checkInteger('address', address);
  checkInteger('length', length, 1);
  const reg = t.registrationFor(address, length, `UFFDIO_${ioctl}`);
  checkAligned('address', address, reg.pageSize);
  checkAligned('length', length, reg.pageSize);
  return reg;
}

function run(ret: IoctlReturn, ioctl: string, address: number, length: number, fieldless = false): IoctlResult {
  return decodeOutcome(ret, `ioctl(UFFDIO_${ioctl})`, address, length, fieldless);
}

function sourceLength(src: unknown): number {
  if (ArrayBuffer.isView(src) || src instanceof ArrayBuffer) return src.byteLength;
  throw new TypeError('src must be a Buffer, TypedArray, DataView or ArrayBuffer');
}

export function copy(t: IoctlTarget, dst: number, src: CopySource, options?: CopyOptions): IoctlResult {
  const opts = checkObject<CopyOptions>('options', options);
  const available = sourceLength(src);
  const srcOffset = opts.srcOffset === undefined ? 0 : checkInteger('options.srcOffset', opts.srcOffset, 0, available);
  const length = opts.length === undefined ? available - srcOffset : checkInteger('options.length', opts.length, 1, available - srcOffset);
  checkRange(t, dst, length, 'COPY');
  return run(native.copy(t.fd, dst, src, srcOffset, length, modeBits(opts, COPY_MODES)), 'COPY', dst, length);
}

/** UFFDIO_COPY from memory of this process (e.g. a Mapping's address). */
export function copyFromAddress(t: IoctlTarget, dst: number, srcAddress: number, length: number, options?: CopyOptions): IoctlResult {
  const opts = checkObject<CopyOptions>('options', options);
  checkInteger('srcAddress', srcAddress, 1);
  checkRange(t, dst, length, 'COPY');
  return run(native.copy(t.fd, dst, srcAddress, 0, length, modeBits(opts, COPY_MODES)), 'COPY', dst, length);
}

export function zeropage(t: IoctlTarget, address: number, length: number, options?: WakeOption): IoctlResult {
  const opts = checkObject<WakeOption>('options', options);
  checkRange(t, address, length, 'ZEROPAGE');
  return run(native.zeropage(t.fd, address, length, modeBits(opts, ZEROPAGE_MODES)), 'ZEROPAGE', address, length);
}

export function continueRange(t: IoctlTarget, address: number, length: number, options?: ContinueOptions): IoctlResult {
  const opts = checkObject<ContinueOptions>('options', options);
  checkRange(t, address, length, 'CONTINUE');
  return run(native.continue(t.fd, address, length, modeBits(opts, CONTINUE_MODES)), 'CONTINUE', address, length);
}

/** Sets (protect = true) or clears write protection; clearing wakes WP-faulting threads unless dontWake. */
export function writeProtect(t: IoctlTarget, address: number, length: number, protect: boolean, options?: WakeOption): IoctlResult {
  const opts = checkObject<WakeOption>('options', options);
  if (typeof protect !== 'boolean') throw new TypeError('protect must be a boolean');
  checkRange(t, address, length, 'WRITEPROTECT');
  const mode = (protect ? 1 : 0) | modeBits(opts, WRITEPROTECT_MODES);
  return run(native.writeprotect(t.fd, address, length, mode), 'WRITEPROTECT', address, length, true);
}

export function wake(t: IoctlTarget, address: number, length: number): IoctlResult {
  checkRange(t, address, length, 'WAKE');
  return run(native.wake(t.fd, address, length), 'WAKE', address, length, true);
}

export function poison(t: IoctlTarget, address: number, length: number, options?: WakeOption): IoctlResult {
  const opts = checkObject<WakeOption>('options', options);
  checkRange(t, address, length, 'POISON');
  return run(native.poison(t.fd, address, length, modeBits(opts, POISON_MODES)), 'POISON', address, length);
}

/** UFFDIO_MOVE: moves pages from `src` (anonymous memory of this process) to the registered `dst`. */
export function move(t: IoctlTarget, dst: number, src: number, length: number, options?: MoveOptions): IoctlResult {
  const opts = checkObject<MoveOptions>('options', options);
  const reg = checkRange(t, dst, length, 'MOVE');
  checkInteger('src', src, 1);
  checkAligned('src', src, reg.pageSize);
  return run(native.move(t.fd, dst, src, length, modeBits(opts, MOVE_MODES)), 'MOVE', dst, length);
}

