// The Firecracker page-fault handler against a separate faulting process
// written for the test (test/fixtures/fc-guest.c), which does what
// Firecracker does: its own memory and uffd, the handshake over the socket,
// then faults from several threads, every byte compared with the snapshot
// file, also after madvise(MADV_DONTNEED) (see the program's header for what
// each mode must read). The guest runs as a child killed on timeout: if the
// handler failed to serve a fault, it would block forever.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FirecrackerHandler, MemoryFile, UnixSocket, type FirecrackerHandlerOptions } from '../lib';
import { describeChild } from './helpers/child';
import { hugetlbSkipReason } from './helpers/hugepages';
import { buildFixtureProgram, startProgram } from './helpers/program';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'uffd-fc-'));
const guest = buildFixtureProgram('fc-guest');
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A snapshot file whose every 4-byte word is a function of its offset. */
function snapshot(bytes: number): string {
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) data.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 12)) >>> 0, i);
  const path = join(dir, `mem${n++}`);
  writeFileSync(path, data);
  return path;
}

interface GuestReport {
  ok: boolean;
  pid: number;
  pages: number;
  threads: number;
  pageSize: number;
  regions: number;
  mismatches: number;
  firstBad: number;
  dontneedPages: number;
  zeroPagesRead: number;
  secondPassMismatches: number;
}

function report(stdout: string): GuestReport {
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`the guest printed no report:\n${stdout}`);
  return JSON.parse(line) as GuestReport;
}

/** Serves one guest run with the library handler in this process. */
async function serveGuest(memBytes: number, guestArgs: string[], options: Partial<FirecrackerHandlerOptions> = {}) {
  const memory = snapshot(memBytes);
  const socket = join(dir, `fc${n++}.sock`);
  const handler = FirecrackerHandler.listen({ socket, memory, ...options });
  // Under the test's own timeout, so that a hang reports the guest's output.
  const vm = startProgram(guest.path!, [socket, memory, ...guestArgs], 25_000);
  const early = vm.done.then((r) => {
    throw new Error(`the guest ended before its handshake was taken: ${describeChild(r)}`);
  });
  early.catch(() => undefined);
  const session = await Promise.race([handler.accept(), early]);
  handler.close();
  const unexpected: unknown[] = [];
  session.on('unexpected', (e) => unexpected.push(e));
  const [result, end] = await Promise.all([vm.done, session.ended]);
  return { result, end, session, unexpected, socket, vm };
}

describe.skipIf(guest.skipReason !== undefined)(`Firecracker handler with a faulting process${guest.skipReason ? ` (skipped: ${guest.skipReason})` : ''}`, () => {
  it('serves every page of two regions to four threads, and zero pages where the balloon removed memory', async () => {
    const { result, end, session, unexpected, socket, vm } = await serveGuest(8 * MiB, ['--threads', '4', '--dontneed']);
    expect(result.timedOut, describeChild(result)).toBe(false);
    const r = report(result.stdout);
    expect(r, describeChild(result)).toMatchObject({ ok: true, mismatches: 0, secondPassMismatches: 0, regions: 2, threads: 4, pageSize: 4096 });
    expect(result.code).toBe(0);
    // Each thread read all 2048 pages twice; the removed ones read as zeros.
    expect(r.pages).toBe(2 * 4 * 2048);
    expect(r.dontneedPages).toBeGreaterThan(0);
    expect(r.zeroPagesRead).toBe(4 * r.dontneedPages);
    expect(session.peer.pid).toBe(vm.pid);
    expect(session.regions.map((g) => [g.size, g.offset, g.pageSize])).toEqual([[4 * MiB, 0, 4096], [4 * MiB, 4 * MiB, 4096]]);
    expect(end.reason).toBe('peer-exited');
    expect(end.stats.faults).toBeGreaterThan(0);
    expect(end.stats.bytes).toBeGreaterThanOrEqual(8 * MiB);
    expect(end.stats.failures).toBe(0);
    expect(unexpected).toEqual([]);
    expect(session.uffd.closed).toBe(true);
    expect(existsSync(socket)).toBe(false);
  });

  it('without EVENT_REMOVE the handler is never told: DONTNEED ranges read as the file again', async () => {
    const { result, end } = await serveGuest(4 * MiB, ['--threads', '3', '--dontneed', '--no-remove-event']);
    const r = report(result.stdout);
    expect(r, describeChild(result)).toMatchObject({ ok: true, mismatches: 0, secondPassMismatches: 0, zeroPagesRead: 0 });
    expect(r.dontneedPages).toBeGreaterThan(0);
    expect(end.reason).toBe('peer-exited');
  });

  it('one page per fault (no read-ahead), three regions, eight threads, old page_size_kib handshake', async () => {
    const { result, end } = await serveGuest(6 * MiB, ['--threads', '8', '--regions', '3', '--dontneed', '--page-size-kib-only'], { readAhead: false });
    const r = report(result.stdout);
    expect(r, describeChild(result)).toMatchObject({ ok: true, mismatches: 0, secondPassMismatches: 0, regions: 3, threads: 8 });
    expect(end.stats.readAheadPages).toBe(0);
    // Without read-ahead every page is one fault (some raced: EEXIST).
    expect(end.stats.faults).toBeGreaterThanOrEqual(6 * 256);
  });

  const hugeSkip = hugetlbSkipReason(12);
  it.skipIf(hugeSkip !== undefined)(`2M hugetlb regions${hugeSkip ? ` (skipped: ${hugeSkip})` : ''}`, async () => {
    const { result, end } = await serveGuest(8 * MiB, ['--threads', '4', '--hugetlb', '--dontneed']);
    const r = report(result.stdout);
    expect(r, describeChild(result)).toMatchObject({ ok: true, mismatches: 0, secondPassMismatches: 0, pageSize: 2 * MiB });
    expect(r.zeroPagesRead).toBe(4 * r.dontneedPages);
    expect(end.reason).toBe('peer-exited');
  });
});

describe('Firecracker handler: bad handshakes', () => {
  async function handshake(send: (s: UnixSocket) => Promise<void>, memBytes = 4 * MiB): Promise<unknown> {
    const memory = snapshot(memBytes);
    const socket = join(dir, `bad${n++}.sock`);
    const handler = FirecrackerHandler.listen({ socket, memory, handshakeTimeoutMs: 2000 });
    try {
      const accepted = handler.accept().then(
        () => new Error('the handshake was accepted'),
        (err: unknown) => err,
      );
      const client = await UnixSocket.connect(socket);
      await send(client);
      const err = await accepted;
      client.close();
      return err;
    } finally {
      handler.close();
    }
  }
  const regionsJson = (over: Record<string, unknown> = {}): string =>
    JSON.stringify([{ base_host_virt_addr: 0x7f0000000000, size: 2 * MiB, offset: 0, page_size: 4096, ...over }]);

  it('each broken handshake is refused with its reason, naming the sender', async () => {
    const file = MemoryFile.memfd(4096);
    const cases: [(s: UnixSocket) => Promise<void>, RegExp][] = [
      [(s) => s.send(regionsJson()), /carried no file descriptor/],
      [(s) => s.send('not json', [file.fd]), /not valid JSON/],
      [(s) => s.send(regionsJson({ offset: 3 * MiB }), [file.fd]), /beyond the end of the memory file \(4194304 bytes\)/],
      [(s) => s.send(regionsJson({ size: 5000 }), [file.fd]), /not a multiple of its page size 4096/],
      [(s) => s.send(regionsJson(), [file.fd]), /is not a userfaultfd \(it is \/memfd:/],
      [(s) => s.send(regionsJson(), [file.fd, file.fd, file.fd]), /carried 3 file descriptors.*guest_memfd/],
      [async (s) => s.close(), /closed the connection without sending the handshake/],
      [async () => undefined, /no handshake from pid \d+ within 2000 ms/],
    ];
    for (const [send, message] of cases) {
      const err = await handshake(send);
      expect(err, String(message)).toMatchObject({ message: expect.stringMatching(message), peerPid: process.pid });
    }
    file.close();
  });

  it('a uid that is not allowed is refused before any handshake', async () => {
    const socket = join(dir, `uid${n++}.sock`);
    const uid = process.getuid!();
    const handler = FirecrackerHandler.listen({ socket, memory: snapshot(4096 * 4), allowedUids: [uid + 1] });
    const rejected = new Promise((resolve) => handler.once('reject', resolve));
    const ac = new AbortController();
    const accepted = handler.accept({ signal: ac.signal });
    const client = await UnixSocket.connect(socket);
    expect(await rejected).toMatchObject({ peer: { uid, pid: process.pid }, reason: `uid ${uid} is not allowed (allowed: ${uid + 1})` });
    expect(await client.receive()).toBeNull();
    ac.abort();
    await expect(accepted).rejects.toMatchObject({ name: 'AbortError' });
    client.close();
    handler.close();
  });

  it('bad options', () => {
    const memory = snapshot(4096);
    expect(() => FirecrackerHandler.listen({ socket: join(dir, 'o.sock'), memory: '' })).toThrow(TypeError);
    expect(() => FirecrackerHandler.listen({ socket: join(dir, 'o.sock'), memory: join(dir, 'missing') })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => FirecrackerHandler.listen({ socket: join(dir, 'o.sock'), memory: dir })).toThrow(/not a regular file/);
    expect(() => FirecrackerHandler.listen({ socket: join(dir, 'o.sock'), memory, onFailure: 'ignore' as never })).toThrow(TypeError);
    expect(() => FirecrackerHandler.listen({ socket: join(dir, 'o.sock'), memory, readAhead: 5 as never })).toThrow(TypeError);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    expect(() => FirecrackerHandler.listen({ socket: join(dir, 'o.sock'), memory: empty })).toThrow(/is empty/);
    expect(existsSync(join(dir, 'o.sock'))).toBe(false);
  });
});

beforeAll(() => {
  if (guest.skipReason) console.warn(`firecracker-handler: ${guest.skipReason}`);
});
