// Test support: a native thread that touches a range page by page and
// survives SIGBUS, as the kernel's sigbus and poison tests do with
// sigsetjmp/siglongjmp. It reports, per page, the value read, the signals
// taken (on the read and on the write-back) and where.
//
// Without onSigbus a page that raises SIGBUS is counted and skipped. With
// it, the thread waits after each signal until onSigbus has settled (say,
// after uffd.copy() of the page under UFFD_FEATURE_SIGBUS), then accesses
// the page again from the start, so "exactly one signal per page" can be
// asserted. The handler is process-wide and installed on first use; a
// SIGBUS anywhere else still goes to the previous handler or ends the
// process (native/testing/sigbus_catch.cc).
import { native } from '../native';
import { checkBoolean, checkInteger, checkObject, describe } from '../validate';

/** si_code values of SIGBUS (include/uapi/asm-generic/siginfo.h). */
export const SIGBUS_CODES = {
  BUS_ADRALN: 1,
  /** A userfault with UFFD_FEATURE_SIGBUS, or an access beyond the end of a file. */
  BUS_ADRERR: 2,
  BUS_OBJERR: 3,
  /** A hardware-poisoned page, and a UFFDIO_POISON one when the kernel has CONFIG_MEMORY_FAILURE (else BUS_ADRERR). */
  BUS_MCEERR_AR: 4,
  BUS_MCEERR_AO: 5,
} as const;

export interface SigbusSignal {
  /** The page (stride) index. */
  readonly index: number;
  /** The first word of the page, as touched. */
  readonly address: number;
  /** si_addr: the address the kernel reported. */
  readonly faultAddress: number;
  /** si_code, e.g. SIGBUS_CODES.BUS_ADRERR. */
  readonly code: number;
  /** Raised by the write-back (a write-protect fault), not by the read. */
  readonly write: boolean;
  /** Signals taken on this page so far, this one included. */
  readonly count: number;
}

export interface SigbusTouchOptions {
  /** Bytes between touches (default 4096). */
  stride?: number;
  /** After reading the first word, write the same value back (default false): a WP fault on a write-protected page. */
  writeBack?: boolean;
  /** Also read every 32-bit word of each stride and count the nonzero ones (default false). */
  scan?: boolean;
  /**
   * Retry mode: called on the JS thread after each SIGBUS while the thread
   * waits; when it returns (or its promise resolves) the thread accesses the
   * page again. If it throws (or rejects), the thread stops and the touch
   * rejects with that error.
   */
  onSigbus?: (signal: SigbusSignal) => void | Promise<void>;
  /** Retry mode: signals after which a page is given up and the thread moves on (default 8). */
  maxSignalsPerPage?: number;
  /** Keep the event loop alive until the thread is done (default true), as touchPages(). */
  ref?: boolean;
}

export interface SigbusTouchResult {
  /** The kernel thread id of the touching thread. */
  readonly tid: number;
  /** Per page: the first word as last read (0 if no read went through). */
  readonly values: Uint32Array;
  /** Per page: SIGBUS signals raised by the read. */
  readonly readSignals: Uint32Array;
  /** Per page: SIGBUS signals raised by the write-back. */
  readonly writeSignals: Uint32Array;
  /** Per page: all signals (readSignals + writeSignals). */
  readonly signals: Uint32Array;
  /** Per page: si_addr of the last signal, 0 if none. */
  readonly faultAddresses: Float64Array;
  /** Per page: si_code of the last signal, 0 if none. */
  readonly codes: Uint32Array;
  /** Per page: 1 if the page was finally read (and written back) without a signal. */
  readonly completed: Uint8Array;
  /** Per page, with `scan`: the nonzero 32-bit words of the stride. */
  readonly nonzeroWords: Uint32Array;
}

const WRITE_BACK = 1;
const SCAN = 2;
const RETRY = 4;

/**
 * Starts a native thread that touches [address, address + length) every
 * `stride` bytes, catching SIGBUS. Settles when every page was touched (or
 * given up); it may never settle if a userfault (without
 * UFFD_FEATURE_SIGBUS) is never resolved.
 */
export function touchCatchingSigbus(address: number, length: number, options?: SigbusTouchOptions): Promise<SigbusTouchResult> {
  const opts = checkObject<SigbusTouchOptions>('options', options);
  const start = checkInteger('address', address, 1);
  const bytes = checkInteger('length', length, 1);
  const stride = checkInteger('options.stride', opts.stride ?? 4096, 4);
  const writeBack = opts.writeBack === undefined ? false : checkBoolean('options.writeBack', opts.writeBack);
  const scan = opts.scan === undefined ? false : checkBoolean('options.scan', opts.scan);
  const ref = opts.ref === undefined ? true : checkBoolean('options.ref', opts.ref);
  const onSigbus = opts.onSigbus;
  if (onSigbus !== undefined && typeof onSigbus !== 'function') {
    throw new TypeError(`options.onSigbus must be a function (got ${describe(onSigbus)})`);
  }
  const maxSignals = checkInteger('options.maxSignalsPerPage', opts.maxSignalsPerPage ?? 8, 1, 0xffffffff);
  const flags = (writeBack ? WRITE_BACK : 0) | (scan ? SCAN : 0) | (onSigbus ? RETRY : 0);

  let failure: { error: unknown } | undefined;
  const counts = new Map<number, number>();
  let resume: (abort: boolean) => void = () => {};
  const onSignal = (index: number, faultAddress: number, code: number, write: boolean): void => {
    const count = (counts.get(index) ?? 0) + 1;
    counts.set(index, count);
    const signal: SigbusSignal = { index, address: start + index * stride, faultAddress, code, write, count };
    let settled: void | Promise<void>;
    try {
      settled = onSigbus?.(signal);
    } catch (error) {
      failure ??= { error };
      resume(true);
      return;
    }
    Promise.resolve(settled).then(
      () => resume(false),
      (error: unknown) => {
        failure ??= { error };
        resume(true);
      },
    );
  };
  const [result, resumeNative] = native.sigbusTouch(start, bytes, stride, flags, maxSignals, onSignal, ref);
  resume = resumeNative;
  return result.then((r) => {
    if (failure) throw failure.error;
    const signals = new Uint32Array(r.readSignals.length);
    for (let i = 0; i < signals.length; i++) signals[i] = r.readSignals[i] + r.writeSignals[i];
    return {
      tid: r.tid,
      values: r.values,
      readSignals: r.readSignals,
      writeSignals: r.writeSignals,
      signals,
      faultAddresses: r.faultAddresses,
      codes: r.codes,
      completed: r.completed,
      nonzeroWords: r.nonzeroWords,
    };
  });
}
