// Bad input to every public function gets a precise error before any harm:
// TypeError for a wrong type, RangeError for a value out of range, misaligned,
// outside the mapping or outside every registration, an errno error (`code`,
// negative `errno`, `syscall`, and the range) for a closed handle or a kernel
// refusal. Never a crash, a hang, or a bare "native:" message from the
// binding. In-process: nothing here touches registered memory, so nothing
// here can fault.
import { existsSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURES, Mapping, MemoryFile, Userfaultfd, type Feature } from '../lib/index';
import { touchPages } from '../lib/testing/index';

const PAGE = 4096;
const { errno } = constants;

type ErrorClass = typeof TypeError | typeof RangeError | typeof Error;

interface Row {
  /** What is wrong, and with which call. */
  readonly name: string;
  readonly call: () => unknown;
  /** The exact class: TypeError, RangeError, or Error for errno errors. */
  readonly error: ErrorClass;
  readonly message: string;
  /** For errno errors: the code, the syscall, and the range when there is one. */
  readonly code?: string;
  readonly syscall?: string;
  readonly range?: () => { address?: number; length?: number };
}

// The fixtures, set up once: one open uffd with half of a mapping
// registered, a closed uffd, an unmapped mapping, open and closed memfds.
let uffd: Userfaultfd;
let mapping: Mapping; // 8 pages; the first 4 registered ('missing') with uffd
let closedUffd: Userfaultfd;
let closedUffdMapping: Mapping; // was registered with closedUffd
let spare: Mapping; // 4 pages, never registered
let gone: Mapping; // unmapped
let file: MemoryFile; // 4 pages of shmem
let closedFile: MemoryFile;
let A: number; // mapping.address

beforeAll(() => {
  uffd = Userfaultfd.open();
  mapping = Mapping.anonymous(8 * PAGE);
  A = mapping.address;
  uffd.register({ address: A, length: 4 * PAGE }, ['missing']);
  closedUffdMapping = Mapping.anonymous(4 * PAGE);
  closedUffd = Userfaultfd.open();
  closedUffd.register(closedUffdMapping, ['missing']);
  closedUffd.close();
  spare = Mapping.anonymous(4 * PAGE);
  gone = Mapping.anonymous(PAGE);
  gone.unmap();
  file = MemoryFile.memfd(4 * PAGE);
  closedFile = MemoryFile.memfd(PAGE);
  closedFile.close();
});

afterAll(() => {
  uffd.close();
  for (const m of [mapping, closedUffdMapping, spare]) m.unmap();
  file.close();
});

const bytes = () => Buffer.alloc(PAGE);
const detached = () => {
  const ab = new ArrayBuffer(PAGE);
  structuredClone(ab, { transfer: [ab] });
  return ab;
};

const wrongTypes: Row[] = [
  { name: 'Userfaultfd.open(options not an object)', call: () => Userfaultfd.open(1 as never), error: TypeError, message: 'options must be an object (got number 1)' },
  { name: 'open: features not an array', call: () => Userfaultfd.open({ features: 'MOVE' as never }), error: TypeError, message: 'options.features must be an array' },
  { name: 'open: unknown feature name', call: () => Userfaultfd.open({ features: ['NOPE' as Feature] }), error: TypeError, message: 'unknown userfaultfd feature "NOPE"' },
  { name: 'open: via', call: () => Userfaultfd.open({ via: 'x' as never }), error: TypeError, message: "options.via must be one of 'auto', 'device', 'syscall'" },
  { name: 'open: userModeOnly', call: () => Userfaultfd.open({ userModeOnly: 1 as never }), error: TypeError, message: 'options.userModeOnly must be a boolean' },
  { name: 'open: jsThreadFaults', call: () => Userfaultfd.open({ jsThreadFaults: 'x' as never }), error: TypeError, message: "options.jsThreadFaults must be one of 'zero', 'poison'" },
  { name: 'jsThreadFaults setter', call: () => (uffd.jsThreadFaults = 'x' as never), error: TypeError, message: "jsThreadFaults must be one of 'zero', 'poison'" },
  { name: 'register: range null', call: () => uffd.register(null as never, ['missing']), error: TypeError, message: 'range must be a Mapping or {address, length}' },
  { name: 'register: address a string', call: () => uffd.register({ address: 'x' as never, length: PAGE }, ['missing']), error: TypeError, message: 'range.address must be an integer' },
  { name: 'register: length NaN', call: () => uffd.register({ address: A, length: NaN }, ['missing']), error: TypeError, message: 'range.length must be an integer' },
  { name: 'register: modes empty', call: () => uffd.register(spare, []), error: TypeError, message: 'modes must be a non-empty array' },
  { name: 'register: modes a string', call: () => uffd.register(spare, 'missing' as never), error: TypeError, message: 'modes must be a non-empty array' },
  { name: 'register: unknown mode', call: () => uffd.register(spare, ['bogus' as never]), error: TypeError, message: "mode must be one of 'missing', 'wp', 'minor' (got 'bogus')" },
  { name: 'register: options not an object', call: () => uffd.register(spare, ['missing'], 5 as never), error: TypeError, message: 'options must be an object' },
  { name: 'unregister: range a number', call: () => uffd.unregister(5 as never), error: TypeError, message: 'range must be a Mapping or {address, length}' },
  { name: 'copy: dst a string', call: () => uffd.copy('x' as never, bytes()), error: TypeError, message: 'dst must be an integer' },
  { name: 'copy: src a string', call: () => uffd.copy(A, 'abc' as never), error: TypeError, message: 'src must be a Buffer, TypedArray, DataView or ArrayBuffer' },
  { name: 'copy: src a SharedArrayBuffer itself', call: () => uffd.copy(A, new SharedArrayBuffer(PAGE) as never), error: TypeError, message: 'src must be a Buffer' },
  { name: 'copy: options a number', call: () => uffd.copy(A, bytes(), 7 as never), error: TypeError, message: 'options must be an object' },
  { name: 'copy: options.length a string', call: () => uffd.copy(A, bytes(), { length: '1' as never }), error: TypeError, message: 'options.length must be an integer' },
  { name: 'copyFromAddress: srcAddress a string', call: () => uffd.copyFromAddress(A, 'x' as never, PAGE), error: TypeError, message: 'srcAddress must be an integer' },
  { name: 'zeropage: length a string', call: () => uffd.zeropage(A, 'x' as never), error: TypeError, message: 'length must be an integer' },
  { name: 'continue: address an object', call: () => uffd.continue({} as never, PAGE), error: TypeError, message: 'address must be an integer' },
  { name: 'writeProtect: protect not a boolean', call: () => uffd.writeProtect(A, PAGE, 1 as never), error: TypeError, message: 'protect must be a boolean' },
  { name: 'wake: address null', call: () => uffd.wake(null as never, PAGE), error: TypeError, message: 'address must be an integer (got null)' },
  { name: 'poison: options a string', call: () => uffd.poison(A, PAGE, 'x' as never), error: TypeError, message: 'options must be an object' },
  { name: 'move: src a string', call: () => uffd.move(A, 'x' as never, PAGE), error: TypeError, message: 'src must be an integer' },
  { name: 'events: options a number', call: () => uffd.events(3 as never), error: TypeError, message: 'options must be an object' },
  { name: 'events: highWaterMark a string', call: () => uffd.events({ highWaterMark: 'x' as never }), error: TypeError, message: 'options.highWaterMark must be an integer' },
  { name: 'events: signal not an AbortSignal', call: () => uffd.events({ signal: {} as never }), error: TypeError, message: 'options.signal must be an AbortSignal' },
  { name: 'Mapping.anonymous: length a string', call: () => Mapping.anonymous('x' as never), error: TypeError, message: 'length must be an integer' },
  { name: 'Mapping.anonymous: options a number', call: () => Mapping.anonymous(PAGE, 1 as never), error: TypeError, message: 'options must be an object' },
  { name: 'Mapping.anonymous: protection', call: () => Mapping.anonymous(PAGE, { protection: 'rwx' as never }), error: TypeError, message: "options.protection must be one of 'none', 'read', 'read-write'" },
  { name: 'Mapping.attach: no handle', call: () => Mapping.attach(undefined as never), error: TypeError, message: 'handle must be an object' },
  { name: 'Mapping.attach: handle null', call: () => Mapping.attach(null as never), error: TypeError, message: 'handle must be an object (got null)' },
  { name: 'Mapping.attach: id a string', call: () => Mapping.attach({ id: 'x' } as never), error: TypeError, message: 'handle.id must be an integer' },
  { name: 'Mapping.attach: kind unknown', call: () => Mapping.attach({ id: mapping.id, kind: 5 } as never), error: TypeError, message: "handle.kind must be one of 'anonymous', 'shmem', 'hugetlb'" },
  { name: 'Mapping.attach: shared not a boolean', call: () => Mapping.attach({ id: mapping.id, kind: 'anonymous', shared: 'no' } as never), error: TypeError, message: 'handle.shared must be a boolean' },
  { name: 'arrayBuffer: offset a string', call: () => mapping.arrayBuffer('x' as never), error: TypeError, message: 'offset must be an integer' },
  { name: 'buffer: length a string', call: () => mapping.buffer(0, 'x' as never), error: TypeError, message: 'length must be an integer' },
  { name: 'madvise: unknown advice', call: () => spare.madvise('NOPE' as never), error: TypeError, message: "advice must be one of 'NORMAL'" },
  { name: 'protect: unknown protection', call: () => spare.protect('rwx' as never), error: TypeError, message: "protection must be one of 'none', 'read', 'read-write'" },
  { name: 'remap: options a number', call: () => spare.remap(PAGE, 3 as never), error: TypeError, message: 'options must be an object' },
  { name: 'remap: mayMove not a boolean', call: () => spare.remap(PAGE, { mayMove: 'no' as never }), error: TypeError, message: 'options.mayMove must be a boolean' },
  { name: 'MemoryFile.memfd: size a string', call: () => MemoryFile.memfd('x' as never), error: TypeError, message: 'size must be an integer' },
  { name: 'memfd: hugePageSize a string', call: () => MemoryFile.memfd(PAGE, { hugePageSize: 'x' as never }), error: TypeError, message: 'options.hugePageSize must be an integer' },
  { name: 'memfd: name a number', call: () => MemoryFile.memfd(PAGE, { name: 5 as never }), error: TypeError, message: 'options.name must be a string (got number 5)' },
  { name: 'memfd: name with a NUL', call: () => MemoryFile.memfd(PAGE, { name: 'a\0b' }), error: TypeError, message: 'options.name must not contain NUL' },
  { name: 'memfd: options a number', call: () => MemoryFile.memfd(PAGE, 1 as never), error: TypeError, message: 'options must be an object' },
  { name: 'openHugetlbfs: path a number', call: () => MemoryFile.openHugetlbfs(5 as never, PAGE), error: TypeError, message: 'path must be a string (got number 5)' },
  { name: 'map: options a number', call: () => file.map(4 as never), error: TypeError, message: 'options must be an object' },
  { name: 'map: shared a string', call: () => file.map({ shared: 'yes' as never }), error: TypeError, message: 'options.shared must be a boolean' },
  { name: 'map: protection', call: () => file.map({ protection: 'x' as never }), error: TypeError, message: "options.protection must be one of 'none', 'read', 'read-write'" },
  { name: 'punchHole: offset a string', call: () => file.punchHole('0' as never, PAGE), error: TypeError, message: 'offset must be an integer' },
  { name: 'touchPages: address a string', call: () => touchPages('x' as never, PAGE), error: TypeError, message: 'address must be an integer' },
  { name: 'touchPages: options a number', call: () => touchPages(A, PAGE, 5 as never), error: TypeError, message: 'options must be an object' },
  { name: 'touchPages: write a string', call: () => touchPages(spare.address, PAGE, { write: 'yes' as never }), error: TypeError, message: 'options.write must be a boolean' },
  { name: 'touchPages: ref a number', call: () => touchPages(spare.address, PAGE, { ref: 0 as never }), error: TypeError, message: 'options.ref must be a boolean' },
];

const outOfRange: Row[] = [
  { name: 'register: address misaligned', call: () => uffd.register({ address: A + 1, length: PAGE }, ['missing']), error: RangeError, message: 'range.address 0x' },
  { name: 'register: length 0', call: () => uffd.register({ address: A, length: 0 }, ['missing']), error: RangeError, message: 'range.length must be between 1 and' },
  { name: 'register: length misaligned', call: () => uffd.register({ address: spare.address, length: 100 }, ['missing']), error: RangeError, message: 'range.length 0x64 is not aligned to the page size 4096' },
  { name: 'register: pageSize below 4096', call: () => uffd.register(spare, ['missing'], { pageSize: 100 }), error: RangeError, message: 'options.pageSize must be between 4096' },
  { name: 'register: range beyond the mapping', call: () => uffd.register({ address: spare.address, length: 16 * PAGE }, ['missing']), error: RangeError, message: 'extends beyond the mapping' },
  { name: 'copy: dst misaligned', call: () => uffd.copy(A + 8, bytes()), error: RangeError, message: 'dst 0x' },
  { name: 'copy: source shorter than a page', call: () => uffd.copy(A, Buffer.alloc(100)), error: RangeError, message: 'length 0x64 is not aligned to the page size 4096' },
  { name: 'copy: options.length beyond the source', call: () => uffd.copy(A, bytes(), { length: 2 * PAGE }), error: RangeError, message: 'options.length must be between 1 and 4096 (got 8192)' },
  { name: 'copy: options.srcOffset negative', call: () => uffd.copy(A, bytes(), { srcOffset: -1 }), error: RangeError, message: 'options.srcOffset must be between 0 and 4096' },
  { name: 'copy: source detached (empty)', call: () => uffd.copy(A, detached()), error: RangeError, message: 'length must be between 1' },
  { name: 'poison: address misaligned', call: () => uffd.poison(A + 1, PAGE), error: RangeError, message: 'address 0x' },
  { name: 'zeropage: length misaligned', call: () => uffd.zeropage(A, 100), error: RangeError, message: 'length 0x64 is not aligned' },
  { name: 'move: src misaligned', call: () => uffd.move(A, spare.address + 1, PAGE), error: RangeError, message: 'src 0x' },
  { name: 'wake: address beyond safe integers', call: () => uffd.wake(2 ** 60, PAGE), error: RangeError, message: 'address must be between 0 and' },
  { name: 'events: highWaterMark 0', call: () => uffd.events({ highWaterMark: 0 }), error: RangeError, message: 'options.highWaterMark must be between 1 and 1048576 (got 0)' },
  { name: 'Mapping.anonymous: length 0', call: () => Mapping.anonymous(0), error: RangeError, message: 'length must be between 1 and' },
  { name: 'Mapping.anonymous: length misaligned', call: () => Mapping.anonymous(100), error: RangeError, message: 'length 0x64 is not aligned to the page size 4096' },
  { name: 'Mapping.anonymous: address hint misaligned', call: () => Mapping.anonymous(PAGE, { address: 5 }), error: RangeError, message: 'options.address 0x5 is not aligned' },
  { name: 'Mapping.attach: id 0', call: () => Mapping.attach({ id: 0 } as never), error: RangeError, message: 'handle.id must be between 1 and' },
  { name: 'arrayBuffer: offset negative', call: () => mapping.arrayBuffer(-1), error: RangeError, message: 'offset must be between 0 and 32768 (got -1)' },
  { name: 'arrayBuffer: beyond the mapping', call: () => mapping.arrayBuffer(0, 9 * PAGE), error: RangeError, message: 'length must be between 0 and 32768 (got 36864)' },
  { name: 'buffer: offset beyond the mapping', call: () => mapping.buffer(8 * PAGE + 1), error: RangeError, message: 'offset must be between 0 and 32768 (got 32769)' },
  { name: 'madvise: offset misaligned', call: () => spare.madvise('DONTNEED', 1), error: RangeError, message: 'offset 0x1 is not aligned' },
  { name: 'madvise: beyond the mapping', call: () => spare.madvise('DONTNEED', 0, 8 * PAGE), error: RangeError, message: 'length must be between 0 and 16384 (got 32768)' },
  { name: 'protect: beyond the mapping', call: () => spare.protect('read', PAGE, 4 * PAGE), error: RangeError, message: 'length must be between 0 and 12288 (got 16384)' },
  { name: 'remap: newLength 0', call: () => spare.remap(0), error: RangeError, message: 'newLength must be between 1 and' },
  { name: 'remap: newLength misaligned', call: () => spare.remap(100), error: RangeError, message: 'newLength 0x64 is not aligned' },
  { name: 'remap: address misaligned', call: () => spare.remap(PAGE, { address: 3 }), error: RangeError, message: 'options.address 0x3 is not aligned' },
  { name: 'memfd: size 0', call: () => MemoryFile.memfd(0), error: RangeError, message: 'size must be between 1 and' },
  { name: 'memfd: size misaligned', call: () => MemoryFile.memfd(100), error: RangeError, message: 'size 0x64 is not aligned to the page size 4096' },
  { name: 'memfd: hugePageSize not a huge page size', call: () => MemoryFile.memfd(PAGE, { hugePageSize: 12345 as never }), error: RangeError, message: 'options.hugePageSize must be 2097152 or 1073741824 (got 12345)' },
  { name: 'map: offset misaligned', call: () => file.map({ offset: 1 }), error: RangeError, message: 'options.offset 0x1 is not aligned' },
  { name: 'map: beyond the file', call: () => file.map({ length: 8 * PAGE }), error: RangeError, message: 'options.length must be between 1 and 16384 (got 32768)' },
  { name: 'map: offset beyond the file', call: () => file.map({ offset: 8 * PAGE }), error: RangeError, message: 'options.offset must be between 0 and 16384' },
  { name: 'punchHole: beyond the file', call: () => file.punchHole(0, 8 * PAGE), error: RangeError, message: 'length must be between 1 and 16384 (got 32768)' },
  { name: 'punchHole: offset misaligned', call: () => file.punchHole(1, PAGE), error: RangeError, message: 'offset 0x1 is not aligned' },
  { name: 'touchPages: length 0', call: () => touchPages(A, 0), error: RangeError, message: 'length must be between 1 and' },
  { name: 'touchPages: stride below 4', call: () => touchPages(A, PAGE, { stride: 2 }), error: RangeError, message: 'options.stride must be between 4 and' },
  { name: 'touchPages: value above 32 bits', call: () => touchPages(A, PAGE, { value: 2 ** 32 }), error: RangeError, message: 'options.value must be between 0 and 4294967295' },
];

const unregistered: Row[] = [
  { name: 'unregister: a range with nothing registered', call: () => uffd.unregister(spare), error: RangeError, message: 'UFFDIO_UNREGISTER: 0x' },
  { name: 'copy: outside every registration', call: () => uffd.copy(A + 5 * PAGE, bytes()), error: RangeError, message: 'UFFDIO_COPY: 0x' },
  { name: 'copy: across the end of the registration', call: () => uffd.copy(A + 3 * PAGE, Buffer.alloc(2 * PAGE)), error: RangeError, message: 'is not inside a range registered with this userfaultfd' },
  { name: 'copyFromAddress: outside every registration', call: () => uffd.copyFromAddress(spare.address, A, PAGE), error: RangeError, message: 'UFFDIO_COPY: 0x' },
  { name: 'zeropage: outside every registration', call: () => uffd.zeropage(A + 4 * PAGE, PAGE), error: RangeError, message: 'UFFDIO_ZEROPAGE: 0x' },
  { name: 'continue: outside every registration', call: () => uffd.continue(spare.address, PAGE), error: RangeError, message: 'UFFDIO_CONTINUE: 0x' },
  { name: 'writeProtect: outside every registration', call: () => uffd.writeProtect(spare.address, PAGE, true), error: RangeError, message: 'UFFDIO_WRITEPROTECT: 0x' },
  { name: 'wake: outside every registration', call: () => uffd.wake(A + 7 * PAGE, PAGE), error: RangeError, message: 'UFFDIO_WAKE: 0x' },
  { name: 'poison: outside every registration', call: () => uffd.poison(spare.address, PAGE), error: RangeError, message: 'UFFDIO_POISON: 0x' },
  { name: 'move: dst outside every registration', call: () => uffd.move(spare.address, A, PAGE), error: RangeError, message: 'UFFDIO_MOVE: 0x' },
];

const closedHandles: Row[] = [
  { name: 'fd of a closed uffd', call: () => closedUffd.fd, error: Error, message: 'fd EBADF: userfaultfd is closed', code: 'EBADF', syscall: 'fd' },
  { name: 'register on a closed uffd', call: () => closedUffd.register(closedUffdMapping, ['missing']), error: Error, message: 'userfaultfd is closed', code: 'EBADF', syscall: 'ioctl(UFFDIO_REGISTER)' },
  { name: 'unregister on a closed uffd', call: () => closedUffd.unregister(closedUffdMapping), error: Error, message: 'userfaultfd is closed', code: 'EBADF', syscall: 'ioctl(UFFDIO_UNREGISTER)' },
  { name: 'copy on a closed uffd', call: () => closedUffd.copy(closedUffdMapping.address, bytes()), error: Error, message: 'userfaultfd is closed', code: 'EBADF', syscall: 'ioctl(UFFDIO_COPY)' },
  { name: 'copyFromAddress on a closed uffd', call: () => closedUffd.copyFromAddress(closedUffdMapping.address, spare.address, PAGE), error: Error, message: 'userfaultfd is closed', code: 'EBADF', syscall: 'ioctl(UFFDIO_COPY)' },
  { name: 'zeropage on a closed uffd', call: () => closedUffd.zeropage(closedUffdMapping.address, PAGE), error: Error, message: 'userfaultfd is closed', code: 'EBADF', syscall: 'ioctl(UFFDIO_ZEROPAGE)' },
  { name: 'continue on a closed uffd', call: () => closedUffd.continue(closedUffdMapping.address, PAGE), error: Error, message: 'userfaultfd is closed', code: 'EBADF', syscall: 'ioctl(UFFDIO_CONTINUE)' },
  { name: 'writeProtect on a closed uffd', call: () => closedUffd.writeProtect(closedUffdMapping.address, PAGE, true), error: Error, message: 'userfaultfd is closed', code: 'EBADF', syscall: 'ioctl(UFFDIO_WRITEPROTECT)' },
  { name: 'wake on a closed uffd', call: () => closedUffd.wake(closedUffdMapping.address, PAGE), error: Error, message: 'userfaultfd is closed', code: 'EBADF', syscall: 'ioctl(UFFDIO_WAKE)' },
  { name: 'poison on a closed uffd', call: () => closedUffd.poison(closedUffdMapping.address, PAGE), error: Error, message: 'userfaultfd is closed', code: 'EBADF', syscall: 'ioctl(UFFDIO_POISON)' },
  { name: 'move on a closed uffd', call: () => closedUffd.move(closedUffdMapping.address, spare.address, PAGE), error: Error, message: 'userfaultfd is closed', code: 'EBADF', syscall: 'ioctl(UFFDIO_MOVE)' },
  { name: 'events on a closed uffd', call: () => closedUffd.events(), error: Error, message: 'read EBADF: userfaultfd is closed', code: 'EBADF', syscall: 'read' },
  { name: 'register an unmapped Mapping', call: () => uffd.register(gone, ['missing']), error: Error, message: 'is closed', code: 'EBADF', syscall: 'ioctl(UFFDIO_REGISTER)' },
  { name: 'address of an unmapped Mapping', call: () => gone.address, error: Error, message: 'is closed', code: 'EBADF', syscall: 'address' },
  { name: 'arrayBuffer of an unmapped Mapping', call: () => gone.arrayBuffer(), error: Error, message: 'is closed', code: 'EBADF', syscall: 'view' },
  { name: 'buffer of an unmapped Mapping', call: () => gone.buffer(), error: Error, message: 'is closed', code: 'EBADF', syscall: 'view' },
  { name: 'madvise on an unmapped Mapping', call: () => gone.madvise('DONTNEED'), error: Error, message: 'is closed', code: 'EBADF', syscall: 'madvise' },
  { name: 'protect on an unmapped Mapping', call: () => gone.protect('read'), error: Error, message: 'is closed', code: 'EBADF', syscall: 'mprotect' },
  { name: 'remap of an unmapped Mapping', call: () => gone.remap(PAGE), error: Error, message: 'is closed', code: 'EBADF', syscall: 'mremap' },
  { name: 'attach to an unmapped Mapping', call: () => Mapping.attach(gone.handle), error: Error, message: 'is closed', code: 'EBADF', syscall: 'attach' },
  { name: 'attach to an id never mapped', call: () => Mapping.attach({ id: 2 ** 31, kind: 'anonymous', shared: false }), error: Error, message: 'is closed', code: 'EBADF', syscall: 'attach' },
  { name: 'fd of a closed MemoryFile', call: () => closedFile.fd, error: Error, message: 'memory file is closed', code: 'EBADF', syscall: 'fd' },
  { name: 'map a closed MemoryFile', call: () => closedFile.map(), error: Error, message: 'memory file is closed', code: 'EBADF', syscall: 'mmap' },
  { name: 'punchHole in a closed MemoryFile', call: () => closedFile.punchHole(0, PAGE), error: Error, message: 'memory file is closed', code: 'EBADF', syscall: 'fallocate' },
];

const kernelErrors: Row[] = [
  { name: "register 'minor' on anonymous memory: EINVAL", call: () => uffd.register(spare, ['minor']), error: Error, message: 'ioctl(UFFDIO_REGISTER) EINVAL', code: 'EINVAL', syscall: 'ioctl(UFFDIO_REGISTER)', range: () => ({ address: spare.address, length: spare.length }) },
  { name: "writeProtect on a range registered without 'wp': ENOENT", call: () => uffd.writeProtect(A, PAGE, true), error: Error, message: 'ioctl(UFFDIO_WRITEPROTECT) ENOENT', code: 'ENOENT', syscall: 'ioctl(UFFDIO_WRITEPROTECT)', range: () => ({ address: A, length: PAGE }) },
  { name: 'continue on anonymous memory: EINVAL', call: () => uffd.continue(A, PAGE), error: Error, message: 'ioctl(UFFDIO_CONTINUE) EINVAL', code: 'EINVAL', syscall: 'ioctl(UFFDIO_CONTINUE)', range: () => ({ address: A, length: PAGE }) },
  { name: 'copyFromAddress from unmapped memory: EFAULT', call: () => uffd.copyFromAddress(A, PAGE, PAGE), error: Error, message: 'ioctl(UFFDIO_COPY) EFAULT', code: 'EFAULT', syscall: 'ioctl(UFFDIO_COPY)', range: () => ({ address: A, length: PAGE }) },
  { name: 'move from unmapped memory: ENOENT', call: () => uffd.move(A, PAGE, PAGE), error: Error, message: 'ioctl(UFFDIO_MOVE) ENOENT', code: 'ENOENT', syscall: 'ioctl(UFFDIO_MOVE)', range: () => ({ address: A, length: PAGE }) },
  { name: 'Mapping.anonymous beyond the address space: ENOMEM', call: () => Mapping.anonymous(2 ** 50), error: Error, message: 'mmap ENOMEM', code: 'ENOMEM', syscall: 'mmap', range: () => ({ length: 2 ** 50 }) },
  { name: 'memfd name longer than the kernel takes: EINVAL', call: () => MemoryFile.memfd(PAGE, { name: 'x'.repeat(300) }), error: Error, message: 'memfd_create EINVAL', code: 'EINVAL', syscall: 'memfd_create' },
];

function check(row: Row): void {
  let thrown: unknown;
  try {
    row.call();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `${row.name}: did not throw`).toBeInstanceOf(Error);
  const err = thrown as Error & { code?: string; errno?: number; syscall?: string; address?: number; length?: number };
  expect(err.constructor, `${row.name}: ${err.constructor.name}: ${err.message}`).toBe(row.error);
  expect(err.message).toContain(row.message);
  // Nothing from the binding's own argument checks reaches the user.
  expect(err.message).not.toMatch(/^native:|^Invalid argument$/);
  if (row.code !== undefined) {
    expect(err.code).toBe(row.code);
    expect(err.errno).toBe(-(errno as Record<string, number>)[row.code]);
    expect(err.syscall).toBe(row.syscall);
    if (row.range) expect({ address: err.address, length: err.length }).toEqual({ address: undefined, length: undefined, ...row.range() });
  } else {
    // Argument errors are thrown before any system call.
    expect(err.syscall).toBeUndefined();
  }
}

describe('bad input', () => {
  describe('wrong types: TypeError', () => {
    it.each(wrongTypes.map((r) => [r.name, r] as const))('%s', (_name, row) => check(row));
  });
  describe('out of range, misaligned, beyond the mapping: RangeError', () => {
    it.each(outOfRange.map((r) => [r.name, r] as const))('%s', (_name, row) => check(row));
  });
  describe('ranges no registration covers: RangeError', () => {
    it.each(unregistered.map((r) => [r.name, r] as const))('%s', (_name, row) => check(row));
  });
  describe('closed handles: EBADF naming the operation', () => {
    it.each(closedHandles.map((r) => [r.name, r] as const))('%s', (_name, row) => check(row));
  });
  describe('kernel refusals: errno errors with code, errno, syscall and range', () => {
    it.each(kernelErrors.map((r) => [r.name, r] as const))('%s', (_name, row) => check(row));
  });

  describe('features', () => {
    const probe = Userfaultfd.open();
    const unsupported = FEATURES.filter((f) => !probe.supportedFeatures.has(f));
    probe.close();

    it.skipIf(unsupported.length === 0)(
      'an unsupported feature: ERR_UFFD_FEATURE_UNSUPPORTED naming it (skipped: this kernel supports every feature, so only the unknown-name row above can run)',
      () => {
        let thrown: (Error & { code?: string; features?: string[] }) | undefined;
        try {
          Userfaultfd.open({ features: [unsupported[0] as Feature] });
        } catch (err) {
          thrown = err as Error & { code?: string; features?: string[] };
        }
        expect(thrown?.code).toBe('ERR_UFFD_FEATURE_UNSUPPORTED');
        expect(thrown?.message).toContain(`UFFD_FEATURE_${unsupported[0]}`);
        expect(thrown?.features).toEqual([unsupported[0]]);
      },
    );
  });

  describe('accepted inputs that used to fail imprecisely', () => {
    it('copy from a view over a SharedArrayBuffer (was a bare native "Invalid argument")', () => {
      const target = Mapping.anonymous(2 * PAGE);
      const u = Userfaultfd.open();
      try {
        u.register(target, ['missing']);
        const shared = new Uint8Array(new SharedArrayBuffer(PAGE)).fill(0x5a);
        expect(u.copy(target.address, shared)).toEqual({ bytes: PAGE, status: 'complete' });
        expect(u.copy(target.address + PAGE, new DataView(shared.buffer))).toEqual({ bytes: PAGE, status: 'complete' });
        u.close();
        // Populated (and unregistered by close): reading cannot fault.
        const view = target.buffer();
        expect([view[0], view[PAGE - 1], view[PAGE], view[2 * PAGE - 1]]).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
      } finally {
        u.close();
        target.unmap();
      }
    });

    it('BigInt addresses and lengths are integers like Numbers (were "Cannot mix BigInt")', () => {
      expect(uffd.wake(BigInt(A) as never, BigInt(PAGE) as never)).toEqual({ bytes: PAGE, status: 'complete' });
      expect(mapping.arrayBuffer(BigInt(PAGE) as never).byteLength).toBe(7 * PAGE);
    });
  });

  describe('openHugetlbfs never creates or truncates a file outside hugetlbfs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'uffd-bad-input-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('a new path on a regular file system: RangeError, and no file is created', () => {
      const path = join(dir, 'not-huge');
      expect(() => MemoryFile.openHugetlbfs(path, 2 * 1024 * 1024)).toThrow(new RangeError(`${path} is not on a hugetlbfs mount`));
      expect(existsSync(path)).toBe(false);
    });

    it('an existing regular file: RangeError, and its contents are intact', () => {
      const path = join(dir, 'precious');
      writeFileSync(path, 'do not truncate me');
      expect(() => MemoryFile.openHugetlbfs(path, 2 * 1024 * 1024)).toThrow(RangeError);
      expect(readFileSync(path, 'utf8')).toBe('do not truncate me');
    });

    const mount = '/dev/hugepages';
    const mounted = existsSync(mount) && (() => {
      try {
        return statfsSync(mount).type === 0x958458f6;
      } catch {
        return false;
      }
    })();
    it.skipIf(!mounted)(`a size misaligned to the mount's page size: RangeError, no file created (skipped: no hugetlbfs at ${mount}; run scripts/reserve-hugepages.mjs)`, () => {
      const path = join(mount, `uffd-bad-input-${process.pid}`);
      expect(() => MemoryFile.openHugetlbfs(path, PAGE)).toThrow(/size 0x1000 is not aligned to the page size/);
      expect(existsSync(path)).toBe(false);
    });
  });
});

describe('close() and dispose', () => {
  it('Symbol.dispose and Symbol.asyncDispose exist on this Node and close the uffd', async () => {
    expect(typeof Symbol.dispose).toBe('symbol');
    expect(typeof Symbol.asyncDispose).toBe('symbol');
    const a = Userfaultfd.open();
    a[Symbol.dispose]();
    expect(a.closed).toBe(true);
    const b = Userfaultfd.open();
    const disposed = b[Symbol.asyncDispose]();
    expect(disposed).toBeInstanceOf(Promise);
    await expect(disposed).resolves.toBeUndefined();
    expect(b.closed).toBe(true);
    // Disposing again (a `using` after an explicit close) is fine.
    a[Symbol.dispose]();
    await b[Symbol.asyncDispose]();
  });

  it('close() is idempotent; afterwards every operation fails with EBADF and the registrations are gone', () => {
    const m = Mapping.anonymous(PAGE);
    const u = Userfaultfd.open();
    u.register(m, ['missing']);
    expect(u.registrations).toHaveLength(1);
    u.close();
    u.close();
    expect(u.closed).toBe(true);
    expect(u.registrations).toEqual([]);
    expect(u.jsThreadFaultsResolved).toBe(0);
    for (const op of [() => u.fd, () => u.register(m, ['missing']), () => u.zeropage(m.address, PAGE), () => u.events()]) {
      expect(op).toThrow(expect.objectContaining({ code: 'EBADF', errno: -errno.EBADF }));
    }
    // ref()/unref() after close are harmless no-ops, as on a closed FileHandle's stream.
    expect(u.ref().unref()).toBe(u);
    m.unmap();
  });

  it('unmap() and MemoryFile#close() are idempotent', () => {
    const m = Mapping.anonymous(PAGE);
    expect(m.unmap()).toBe(true);
    expect(m.unmap()).toBe(false);
    const f = MemoryFile.memfd(PAGE);
    f.close();
    f.close();
    expect(f.closed).toBe(true);
  });
});
