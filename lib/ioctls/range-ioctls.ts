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
  /** The fd, for `syscall`; throws EBADF naming that syscall when closed. */
  fdFor(syscall: string): number;
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
  /**
   * Bulk population: copy in chunks of this many bytes (a multiple of the
   * page size), one UFFDIO_COPY each, in a native loop. Stops at the first
   * chunk that is not complete: `bytes` counts everything done before, and
   * `status` is that chunk's. Default: one ioctl for the whole length.
   */
  chunkSize?: number;
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

interface CheckedRange {
  fd: number;
  address: number;
  length: number;
  reg: Registration;
}

/**
 * The fd (EBADF first: after close() every operation fails the same way, as
 * FileHandle's do), then the range: integers (BigInt accepted), inside one
 * registration, aligned to its page size.
 */
function checkRange(t: IoctlTarget, address: unknown, length: unknown, ioctl: IoctlName, addressName = 'address'): CheckedRange {
  const fd = t.fdFor(`ioctl(UFFDIO_${ioctl})`);
  const a = checkInteger(addressName, address);
  const n = checkInteger('length', length, 1);
  const reg = t.registrationFor(a, n, `UFFDIO_${ioctl}`);
  checkAligned(addressName, a, reg.pageSize);
  checkAligned('length', n, reg.pageSize);
  return { fd, address: a, length: n, reg };
}

function run(ret: IoctlReturn, ioctl: string, address: number, length: number, fieldless = false): IoctlResult {
  return decodeOutcome(ret, `ioctl(UFFDIO_${ioctl})`, address, length, fieldless);
}

function chunkOf(opts: CopyOptions, pageSize: number): number {
  if (opts.chunkSize === undefined) return 0;
  const chunk = checkInteger('options.chunkSize', opts.chunkSize, pageSize);
  checkAligned('options.chunkSize', chunk, pageSize);
  return chunk;
}

/** A chunked copy's outcome: the failing chunk decoded as usual, plus the chunks before it. */
function runChunked(ret: ReturnType<typeof native.copy>, address: number, length: number): IoctlResult {
  if (typeof ret === 'number' || ret.length === 2) return run(ret as IoctlReturn, 'COPY', address, length);
  const [errno, field, before] = ret as [number, number, number];
  const r = decodeOutcome([errno, field], 'ioctl(UFFDIO_COPY)', address + before, length - before);
  return { bytes: before + r.bytes, status: r.status };
}

function sourceLength(src: unknown): number {
  if (ArrayBuffer.isView(src) || src instanceof ArrayBuffer) return src.byteLength;
  throw new TypeError('src must be a Buffer, TypedArray, DataView or ArrayBuffer');
}

export function copy(t: IoctlTarget, dst: number, src: CopySource, options?: CopyOptions): IoctlResult {
  const opts = checkObject<CopyOptions>('options', options);
  t.fdFor('ioctl(UFFDIO_COPY)');
  const available = sourceLength(src);
  const srcOffset = opts.srcOffset === undefined ? 0 : checkInteger('options.srcOffset', opts.srcOffset, 0, available);
  const length = opts.length === undefined ? available - srcOffset : checkInteger('options.length', opts.length, 1, available - srcOffset);
  const r = checkRange(t, dst, length, 'COPY', 'dst');
  const chunk = chunkOf(opts, r.reg.pageSize);
  return runChunked(native.copy(r.fd, r.address, src, srcOffset, r.length, modeBits(opts, COPY_MODES), chunk), r.address, r.length);
}

/** UFFDIO_COPY from memory of this process (e.g. a Mapping's address). */
export function copyFromAddress(t: IoctlTarget, dst: number, srcAddress: number, length: number, options?: CopyOptions): IoctlResult {
  const opts = checkObject<CopyOptions>('options', options);
  t.fdFor('ioctl(UFFDIO_COPY)');
  const from = checkInteger('srcAddress', srcAddress, 1);
  const r = checkRange(t, dst, length, 'COPY', 'dst');
  const chunk = chunkOf(opts, r.reg.pageSize);
  return runChunked(native.copy(r.fd, r.address, from, 0, r.length, modeBits(opts, COPY_MODES), chunk), r.address, r.length);
}

export function zeropage(t: IoctlTarget, address: number, length: number, options?: WakeOption): IoctlResult {
  const opts = checkObject<WakeOption>('options', options);
  const r = checkRange(t, address, length, 'ZEROPAGE');
  return run(native.zeropage(r.fd, r.address, r.length, modeBits(opts, ZEROPAGE_MODES)), 'ZEROPAGE', r.address, r.length);
}

export function continueRange(t: IoctlTarget, address: number, length: number, options?: ContinueOptions): IoctlResult {
  const opts = checkObject<ContinueOptions>('options', options);
  const r = checkRange(t, address, length, 'CONTINUE');
  return run(native.continue(r.fd, r.address, r.length, modeBits(opts, CONTINUE_MODES)), 'CONTINUE', r.address, r.length);
}

/** Sets (protect = true) or clears write protection; clearing wakes WP-faulting threads unless dontWake. */
export function writeProtect(t: IoctlTarget, address: number, length: number, protect: boolean, options?: WakeOption): IoctlResult {
  const opts = checkObject<WakeOption>('options', options);
  if (typeof protect !== 'boolean') throw new TypeError('protect must be a boolean');
  const r = checkRange(t, address, length, 'WRITEPROTECT');
  const mode = (protect ? 1 : 0) | modeBits(opts, WRITEPROTECT_MODES);
  return run(native.writeprotect(r.fd, r.address, r.length, mode), 'WRITEPROTECT', r.address, r.length, true);
}

export function wake(t: IoctlTarget, address: number, length: number): IoctlResult {
  const r = checkRange(t, address, length, 'WAKE');
  return run(native.wake(r.fd, r.address, r.length), 'WAKE', r.address, r.length, true);
}

export function poison(t: IoctlTarget, address: number, length: number, options?: WakeOption): IoctlResult {
  const opts = checkObject<WakeOption>('options', options);
  const r = checkRange(t, address, length, 'POISON');
  return run(native.poison(r.fd, r.address, r.length, modeBits(opts, POISON_MODES)), 'POISON', r.address, r.length);
}

/** UFFDIO_MOVE: moves pages from `src` (anonymous memory of this process) to the registered `dst`. */
export function move(t: IoctlTarget, dst: number, src: number, length: number, options?: MoveOptions): IoctlResult {
  const opts = checkObject<MoveOptions>('options', options);
  const r = checkRange(t, dst, length, 'MOVE', 'dst');
  const from = checkInteger('src', src, 1);
  checkAligned('src', from, r.reg.pageSize);
  return run(native.move(r.fd, r.address, from, r.length, modeBits(opts, MOVE_MODES)), 'MOVE', r.address, r.length);
}
