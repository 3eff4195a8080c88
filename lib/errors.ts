// Errors shaped like Node's own: `code`, `errno` (negative, as in fs and os
// errors), `syscall`, and here also the address range involved.
import { constants } from 'node:os';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** The name of a positive errno value, such as 'EEXIST'. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

export interface UffdErrorFields {
  code: string;
  errno: number;
  syscall: string;
  address?: number;
  length?: number;
}

/** A failed system call or ioctl. */
export interface UffdError extends Error, UffdErrorFields {}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Builds an errno error from a positive errno value. */
export function errnoError(errno: number, syscall: string, address?: number, length?: number, hint?: string): UffdError {
  const code = errnoName(errno);
  const where = address === undefined ? '' : ` at ${hex(address)}${length === undefined ? '' : `+${hex(length)}`}`;
  const err = new Error(`${syscall} ${code}${where}${hint ? `: ${hint}` : ''}`) as UffdError;
  err.code = code;
  err.errno = -errno;
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (length !== undefined) err.length = length;
  Error.captureStackTrace(err, errnoError);
  return err;
}

/**
 * Adds the range to an errno error thrown by the native layer, and rethrows
 * it. `address` is undefined when there is none yet (an mmap without a hint).
 */
export function withRange(err: unknown, address: number | undefined, length?: number): never {
  if (err instanceof Error && typeof (err as Partial<UffdError>).syscall === 'string') {
    const e = err as UffdError;
    if (address !== undefined) {
      e.address = address;
      e.message += ` at ${hex(address)}${length === undefined ? '' : `+${hex(length)}`}`;
    } else if (length !== undefined) {
      e.message += ` (length ${hex(length)})`;
    }
    if (length !== undefined) e.length = length;
  }
  throw err;
}

/** An errno error for a condition found without a failing system call: `code` such as 'EBADF', and why. */
export function conditionError(code: keyof typeof constants.errno, syscall: string, hint: string): UffdError {
  return errnoError(constants.errno[code], syscall, undefined, undefined, hint);
}

/** EBADF for an operation on a closed handle, as FileHandle does. */
export function closedError(what: string, syscall: string): UffdError {
  return conditionError('EBADF', syscall, `${what} is closed`);
}

export function abortError(cause: unknown): Error {
  const err = new Error('The operation was aborted', { cause });
  err.name = 'AbortError';
  (err as Error & { code: string }).code = 'ABORT_ERR';
  return err;
}
