// The Firecracker handler as commands, run as real child processes: the
// drop-in `userfaultfd-firecracker-handler <socket> <memory file>` (the
// argv of Firecracker's example handlers) and `userfaultfd firecracker
// --socket … --memory …`, each serving the C guest (test/fixtures/fc-guest.c)
// and exiting when it exits; SIGTERM; a broken handshake; usage errors.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeChild, DIST } from './helpers/child';
import { buildFixtureProgram, startProgram } from './helpers/program';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'uffd-fccli-'));
const guest = buildFixtureProgram('fc-guest');
const DROP_IN = join(DIST, 'firecracker-cli.js');
const CLI = join(DIST, 'cli.js');
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function snapshot(bytes: number): string {
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) data.writeUInt32LE(Math.imul(i + 17, 40503) >>> 0, i);
  const path = join(dir, `mem${n++}`);
  writeFileSync(path, data);
  return path;
}

const sock = (): string => join(dir, `s${n++}.sock`);

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(guest.skipReason !== undefined)(`Firecracker handler commands${guest.skipReason ? ` (skipped: ${guest.skipReason})` : ''}`, () => {
  it('userfaultfd-firecracker-handler <socket> <memory file> serves the VM and exits when it exits', async () => {
    const memory = snapshot(4 * MiB);
    const socket = sock();
    const handler = startProgram(process.execPath, [DROP_IN, socket, memory], 25_000);
    const vm = startProgram(guest.path!, [socket, memory, '--threads', '4', '--dontneed'], 25_000);
    const [h, g] = await Promise.all([handler.done, vm.done]);
    expect([g.code, g.timedOut], describeChild(g)).toEqual([0, false]);
    expect(JSON.parse(g.stdout)).toMatchObject({ ok: true, mismatches: 0, secondPassMismatches: 0 });
    expect([h.code, h.signal, h.timedOut], describeChild(h)).toEqual([0, null, false]);
    expect(h.stderr).toContain(`listening on ${socket}, serving ${memory} (4.0 MiB)`);
    expect(h.stderr).toContain(`serving pid ${vm.pid} (uid ${process.getuid!()}): 2 regions, 4.0 MiB`);
    expect(h.stderr).toMatch(new RegExp(`the VM process ${vm.pid} exited; faults [1-9]\\d* bytes [\\d.]+ MiB .* failures 0 latency p50 <`));
    expect(existsSync(socket)).toBe(false);
  });

  it('userfaultfd firecracker --socket --memory with options prints live statistics', async () => {
    const memory = snapshot(8 * MiB);
    const socket = sock();
    const args = [CLI, 'firecracker', '--socket', socket, '--memory', memory, '--uid', String(process.getuid!()), '--stats-interval', '1', '--read-ahead', '16K-256K'];
    const handler = startProgram(process.execPath, args, 25_000);
    const vm = startProgram(guest.path!, [socket, memory, '--threads', '2', '--regions', '4', '--dontneed'], 25_000);
    const [h, g] = await Promise.all([handler.done, vm.done]);
    expect(JSON.parse(g.stdout), describeChild(g)).toMatchObject({ ok: true, regions: 4 });
    expect([h.code, h.timedOut], describeChild(h)).toEqual([0, false]);
    expect(h.stderr).toContain('4 regions, 8.0 MiB');
    expect(h.stderr).toMatch(/exited; faults \d+/);
  });

  it('SIGTERM while waiting for the VM: a clean exit, the socket removed', async () => {
    const socket = sock();
    const handler = startProgram(process.execPath, [DROP_IN, socket, snapshot(MiB)], 25_000);
    await until(() => existsSync(socket), 'the socket');
    process.kill(handler.pid, 'SIGTERM');
    const h = await handler.done;
    expect([h.code, h.signal, h.timedOut], describeChild(h)).toEqual([0, null, false]);
    expect(h.stderr).toContain('SIGTERM: stopping');
    expect(existsSync(socket)).toBe(false);
  });

  it('SIGTERM while serving a running VM: stops serving, final statistics, exit 0', async () => {
    const memory = snapshot(2 * MiB);
    const socket = sock();
    const handler = startProgram(process.execPath, [DROP_IN, socket, memory], 25_000);
    let reported!: () => void;
    const report = new Promise<void>((resolve) => (reported = resolve));
    // The VM verifies everything, reports, then stays alive.
    const vm = startProgram(guest.path!, [socket, memory, '--hold-ms', '30000'], 25_000, (out) => out.includes('\n') && reported());
    await report;
    process.kill(handler.pid, 'SIGTERM');
    const h = await handler.done;
    expect([h.code, h.signal, h.timedOut], describeChild(h)).toEqual([0, null, false]);
    expect(h.stderr).toContain('SIGTERM: stopping');
    expect(h.stderr).toMatch(/stopped; faults [1-9]/);
    process.kill(vm.pid, 'SIGKILL');
    const g = await vm.done;
    expect(JSON.parse(g.stdout), describeChild(g)).toMatchObject({ ok: true });
  });

  it('a broken handshake: the sender is killed (it would hang on its first fault) and the exit code is 1', async () => {
    const socket = sock();
    const handler = startProgram(process.execPath, [DROP_IN, socket, snapshot(MiB)], 25_000);
    await until(() => existsSync(socket), 'the socket');
    // A "VM" that sends regions but no uffd, then waits.
    const code = `const { UnixSocket } = require(${JSON.stringify(join(DIST, 'index.js'))});
      UnixSocket.connect(${JSON.stringify(socket)}).then((s) => s.send('[{"base_host_virt_addr":4096,"size":4096,"offset":0,"page_size":4096}]'));
      setInterval(() => {}, 1000);`;
    const peer = startProgram(process.execPath, ['-e', code], 25_000);
    const [h, p] = await Promise.all([handler.done, peer.done]);
    expect([h.code, h.timedOut], describeChild(h)).toEqual([1, false]);
    expect(h.stderr).toContain('handshake failed: the handshake carried no file descriptor');
    expect(h.stderr).toContain(`killing the VM process ${peer.pid}`);
    expect([p.signal, p.timedOut], describeChild(p)).toEqual(['SIGKILL', false]);
  });
});

describe('Firecracker handler commands: usage', () => {
  it('wrong arguments exit 2 with the usage; a missing memory file exits 1 saying why', async () => {
    for (const args of [[DROP_IN], [DROP_IN, 'a'], [DROP_IN, 'a', 'b', 'c'], [CLI, 'firecracker', '--socket', 'a'], [CLI, 'firecracker', '--socket', 'a', '--memory', 'b', '--read-ahead', 'fast'], [CLI, 'firecracker', 'a', 'b', '--socket', 'c']]) {
      const r = await startProgram(process.execPath, args, 20_000).done;
      expect(r.code, `${args.join(' ')}\n${describeChild(r)}`).toBe(2);
      expect(r.stderr).toContain('usage: userfaultfd firecracker');
    }
    const r = await startProgram(process.execPath, [DROP_IN, sock(), join(dir, 'no-such-file')], 20_000).done;
    expect(r.code, describeChild(r)).toBe(1);
    expect(r.stderr).toMatch(/ENOENT.*no-such-file/);
  });
});
