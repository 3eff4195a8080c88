// What a served range is filled from, checked before anything reaches
// native code. Each source becomes a (kind, data) pair for pagerServe.
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { closedError, conditionError } from '../errors';
import { MemoryFile } from '../memory/memory-file';
import { checkBoolean, checkInteger, describe } from '../validate';

/** Page contents for a 'function' source: at least `length` bytes (more are ignored). */
export type PageBytes = ArrayBufferView | ArrayBuffer;

export interface PageRequest {
  /** The page's offset in the source (the served range's `offset` plus the page's offset in the range). */
  readonly offset: number;
  /** The faulting thread's id, or 0. */
  readonly threadId: number;
  readonly write: boolean;
}

export type PageReader = (address: number, length: number, request: PageRequest) => PageBytes | Promise<PageBytes>;

export type PagerSource =
  /** Zero pages (ZEROPAGE; a COPY of zeros on hugetlb). */
  | { readonly kind: 'zero' }
  /** Bytes of this process, from `offset` (default 0); kept referenced until the pager closes. */
  | { readonly kind: 'buffer'; readonly buffer: PageBytes; readonly offset?: number }
  /**
   * A file (a memory snapshot) by path or fd, from `offset` (default 0).
   * Copied from the pager's own read-only mapping of the file (made by
   * serve()), or read with pread() where the file cannot be mapped (an empty
   * file, /proc) or has grown since. Pages the file does not hold whole are
   * source failures (ERR_PAGER_SHORT_READ), also after a truncation.
   *
   * `mmap: false` reads every window with pread() into a buffer and copies
   * from there (two copies instead of one). Faster where touching each 4K
   * page of a mapping costs much, and the page cache holds the file in 4K
   * pages (docs/benchmarks.md: a VM with shadow paging, a file just
   * written: 3× faster there); the mapping is as fast or faster elsewhere.
   */
  | { readonly kind: 'file'; readonly path?: string; readonly fd?: number; readonly offset?: number; readonly mmap?: boolean }
  /** A memfd or hugetlbfs file, copied from the pager's own read-only mapping of it, from `offset`. */
  | { readonly kind: 'memoryFile'; readonly file: MemoryFile; readonly offset?: number }
  /**
   * Anything else: a function (may be async) called once per faulting page
   * on the JavaScript thread; `offset` (default 0) is the source offset of
   * the range's first page, passed on in each request.
   */
  | { readonly kind: 'function'; readonly read: PageReader; readonly offset?: number };

export type SourceKind = PagerSource['kind'];
export const SOURCE_KINDS: readonly SourceKind[] = ['zero', 'buffer', 'file', 'memoryFile', 'function'];
/** native/pager/pager_core.h SourceKind. */
export const SOURCE_CODES: Record<SourceKind, number> = { zero: 0, buffer: 1, file: 2, function: 3, memoryFile: 4 };

export interface PreparedSource {
  kind: SourceKind;
  code: number;
  offset: number;
  data: ArrayBufferView | ArrayBuffer | number | undefined;
  /** What lib/ must keep alive while native code may read it. */
  keep?: unknown;
  /** 'file': serve from a mapping of the file (else pread()). */
  mapFile?: boolean;
  read?: PageReader;
  /** Runs after pagerServe (which dup()s an fd it needs). */
  done(): void;
}

/** A file source is read at offsets: a pipe or a socket cannot be (each fault would fail with ESPIPE). */
function checkSeekable(fd: number, what: string): void {
  const st = fstatSync(fd);
  if (st.isFIFO() || st.isSocket()) {
    throw conditionError('ESPIPE', 'serve', `${what} is a ${st.isFIFO() ? 'pipe' : 'socket'}: a file source is read at offsets; use a 'function' source for a stream`);
  }
}

function offsetOf(source: { offset?: number }): number {
  return source.offset === undefined ? 0 : checkInteger('source.offset', source.offset, 0);
}

/** Checks `source` for a range of `length` bytes. */
export function prepareSource(source: unknown, length: number): PreparedSource {
  if (source === null || typeof source !== 'object') throw new TypeError(`source must be an object with a kind (got ${describe(source)})`);
  const s = source as PagerSource;
  const kind = s.kind;
  if (typeof kind !== 'string' || !(SOURCE_KINDS as readonly string[]).includes(kind)) {
    throw new TypeError(`source.kind must be one of ${SOURCE_KINDS.map((k) => `'${k}'`).join(', ')} (got ${describe(kind)})`);
  }
  const nothing = (): void => {};
  switch (s.kind) {
    case 'zero':
      return { kind, code: SOURCE_CODES.zero, offset: 0, data: undefined, done: nothing };
    case 'buffer': {
      const b: unknown = s.buffer;
      if (!(ArrayBuffer.isView(b) || b instanceof ArrayBuffer || b instanceof SharedArrayBuffer)) {
        throw new TypeError(`source.buffer must be a Buffer, TypedArray, DataView or ArrayBuffer (got ${describe(b)})`);
      }
      const offset = offsetOf(s);
      const view = ArrayBuffer.isView(b) ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : new Uint8Array(b as ArrayBuffer);
      if (offset > view.byteLength || view.byteLength - offset < length) {
        throw new RangeError(`source.buffer holds ${view.byteLength} bytes: too short for ${length} bytes from offset ${offset}`);
      }
      const data = view.subarray(offset, offset + length);
      return { kind, code: SOURCE_CODES.buffer, offset: 0, data, keep: data, done: nothing };
    }
    case 'file': {
      const offset = offsetOf(s);
      if ((s.path === undefined) === (s.fd === undefined)) throw new TypeError('a file source needs exactly one of source.path and source.fd');
      const mapFile = s.mmap === undefined ? true : checkBoolean('source.mmap', s.mmap);
      if (s.fd !== undefined) {
        const fd = checkInteger('source.fd', s.fd, 0, 0x7fffffff);
        checkSeekable(fd, 'source.fd');
        return { kind, code: SOURCE_CODES.file, offset, data: fd, mapFile, done: nothing };
      }
      if (typeof s.path !== 'string') throw new TypeError(`source.path must be a string (got ${describe(s.path)})`);
      // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
      const fd = openSync(s.path, constants.O_RDONLY | constants.O_NONBLOCK);
      try {
        checkSeekable(fd, 'source.path');
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      return { kind, code: SOURCE_CODES.file, offset, data: fd, mapFile, done: () => closeSync(fd) };
    }
    case 'memoryFile': {
      if (!(s.file instanceof MemoryFile)) throw new TypeError(`source.file must be a MemoryFile (got ${describe(s.file)})`);
      if (s.file.closed) throw closedError('memory file', 'serve');
      const offset = offsetOf(s);
      if (offset > s.file.size || s.file.size - offset < length) {
        throw new RangeError(`source.file holds ${s.file.size} bytes: too short for ${length} bytes from offset ${offset}`);
      }
      return { kind, code: SOURCE_CODES.memoryFile, offset, data: s.file.fd, done: nothing };
    }
    case 'function': {
      if (typeof s.read !== 'function') throw new TypeError(`source.read must be a function (got ${describe(s.read)})`);
      return { kind, code: SOURCE_CODES.function, offset: offsetOf(s), data: undefined, read: s.read, done: nothing };
    }
  }
}
