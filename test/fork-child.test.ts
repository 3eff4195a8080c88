// forkChild() (userfaultfd/testing): a forked child runs a scripted program
// on its copy of our memory and exits; its values, exit code, signal and a
// failed step come back through `exited`. Bad programs are TypeError /
// RangeError before any fork.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE, Userfaultfd } from '../lib';
import { FORK_STEP_FAILED_EXIT, forkChild, type ForkStep } from '../lib/testing';
import { nextOf, page, useCleanup } from './helpers/events';
import { useForkedChildren } from './helpers/fork';
import { resultOf, runScript } from './helpers/child';

const { track, touch } = useCleanup();
const fork = useForkedChildren();

/** The kernel wait channel of a process (its only thread). */
function wchan(pid: number): string {
  return readFileSync(`/proc/${pid}/wchan`, 'utf8');
}

/**
 * Waits until the child sleeps in handle_userfault. The fault event is
 * queued before the faulting thread goes to sleep, so right after the event
 * the child may still be running (wchan "0"); the test timeout bounds this.
 */
async function untilBlockedInFault(pid: number): Promise<string> {
  while (wchan(pid) !== 'handle_userfault') await new Promise((r) => setTimeout(r, 2));
  return wchan(pid);
}

describe('forkChild', () => {
  it('rejects bad programs with TypeError / RangeError', () => {
    const a = 0x10000;
    const bad: [unknown, unknown, ErrorConstructor, RegExp][] = [
      ['not an array', undefined, TypeError, /steps must be an array/],
      [[null], undefined, TypeError, /steps\[0\] must be an object/],
      [[{ op: 'jump' }], undefined, TypeError, /steps\[0\]\.op must be one of/],
      [[{ op: 'read', length: 4 }], undefined, TypeError, /steps\[0\]\.address must be an integer/],
      [[{ op: 'read', address: a, length: 0 }], undefined, RangeError, /steps\[0\]\.length must be between 1/],
      [[{ op: 'read', address: a, length: 8, stride: 2 }], undefined, RangeError, /steps\[0\]\.stride/],
      [[{ op: 'write', address: a, length: 4, value: 2 ** 32 }], undefined, RangeError, /steps\[0\]\.value/],
      [[{ op: 'madvise', address: a + 1, length: 4, advice: 'DONTNEED' }], undefined, RangeError, /steps\[0\]\.address .* not aligned/],
      [[{ op: 'madvise', address: a, length: 4, advice: 'FORGET' }], undefined, TypeError, /steps\[0\]\.advice must be one of/],
      [[{ op: 'mremap', address: a, length: 4096, newAddress: a + 8 }], undefined, RangeError, /newAddress .* not aligned/],
      [[{ op: 'munmap', address: a + 8, length: 4096 }], undefined, RangeError, /not aligned/],
      [[{ op: 'raise', signal: 'SIGNOPE' }], undefined, TypeError, /steps\[0\]\.signal must be a signal name/],
      [[{ op: 'raise', signal: 0 }], undefined, RangeError, /steps\[0\]\.signal must be between 1 and 64/],
      [[], { exitCode: 256 }, RangeError, /options\.exitCode must be between 0 and 255/],
      [[], 'x', TypeError, /options must be an object/],
      [[{ op: 'read', address: a, length: 2 ** 30, stride: 4 }], undefined, RangeError, /more than 16777216 values/],
    ];
    for (const [steps, options, type, message] of bad) {
      expect(() => forkChild(steps as ForkStep[], options as object), JSON.stringify(steps)).toThrow(type);
      expect(() => forkChild(steps as ForkStep[], options as object)).toThrow(message);
    }
  });

  it('an empty program exits with options.exitCode', async () => {
    const child = fork([], { exitCode: 7 });
    expect(child.pid).toBeGreaterThan(0);
    expect(child.pid).not.toBe(process.pid);
    const r = await child.exited;
    expect(r).toEqual({ exitCode: 7, signal: null, values: new Uint32Array(0) });
    expect(child.kill()).toBe(false);
  });

  it('write and read steps report every word, on the child\'s own copy of memory', async () => {
    const m = track(Mapping.anonymous(3 * PAGE_SIZE));
    m.buffer().set(page(5, 3 * PAGE_SIZE));
    const r = await fork([
      { op: 'read', address: m.address, length: m.length },
      { op: 'write', address: m.address, length: 2 * PAGE_SIZE, value: 100 },
      { op: 'read', address: m.address, length: 16, stride: 4 },
    ]).exited;
    expect(r.exitCode).toBe(0);
    expect([...r.values]).toEqual([5, 5, 5, 100, 101, 100, 5, 5, 5]);
    // The parent's memory did not change.
    expect(m.buffer().readUInt32LE(0)).toBe(5);
  });

  it('a failing step stops the program: exit code 125 and an errno error naming the call and range', async () => {
    const m = track(Mapping.anonymous(PAGE_SIZE));
    // Below vm.mmap_min_addr: never mapped.
    const unmappedAddress = PAGE_SIZE;
    const r = await fork([
      { op: 'write', address: m.address, length: 4, value: 9 },
      { op: 'madvise', address: unmappedAddress, length: PAGE_SIZE, advice: 'DONTNEED' },
      { op: 'read', address: m.address, length: 4 },
    ]).exited;
    expect(r.exitCode).toBe(FORK_STEP_FAILED_EXIT);
    expect(r.signal).toBeNull();
    expect([...r.values]).toEqual([9]);
    expect(r.failedStep?.index).toBe(1);
    expect(r.failedStep?.error).toMatchObject({ code: 'ENOMEM', errno: -12, syscall: 'madvise', address: unmappedAddress, length: PAGE_SIZE });
  });

  it('a bad access ends the child with SIGSEGV, keeping the values read before', async () => {
    const m = track(Mapping.anonymous(PAGE_SIZE));
    // Below vm.mmap_min_addr: never mapped.
    const unmappedAddress = PAGE_SIZE;
    const r = await fork([
      { op: 'write', address: m.address, length: 4, value: 3 },
      { op: 'read', address: unmappedAddress, length: 4 },
    ]).exited;
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGSEGV' });
    expect([...r.values]).toEqual([3]);
  });

  it('raise: a fatal signal ends the child, an ignored one does not', async () => {
    expect(await fork([{ op: 'raise', signal: 'SIGTERM' }]).exited).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
    expect(await fork([{ op: 'raise', signal: 10 }]).exited).toMatchObject({ exitCode: null, signal: 'SIGUSR1' });
    expect(await fork([{ op: 'raise', signal: 'SIGCHLD' }], { exitCode: 4 }).exited).toMatchObject({ exitCode: 4, signal: null });
  });

  it('munmap and mremap steps act on the child only', async () => {
    const m = track(Mapping.anonymous(2 * PAGE_SIZE));
    const target = track(Mapping.anonymous(2 * PAGE_SIZE));
    m.buffer().set(page(11, 2 * PAGE_SIZE));
    const r = await fork([
      { op: 'mremap', address: m.address, length: 2 * PAGE_SIZE, newAddress: target.address },
      { op: 'read', address: target.address, length: 2 * PAGE_SIZE },
      { op: 'munmap', address: target.address, length: PAGE_SIZE },
      { op: 'read', address: target.address, length: 4 },
    ]).exited;
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGSEGV' });
    expect([...r.values]).toEqual([11, 11]);
    expect(m.buffer().readUInt32LE(PAGE_SIZE)).toBe(11);
  });

  it('kill() ends a child blocked in a fault; it returns false once the child is gone', async () => {
    const uffd = track(Userfaultfd.open({ features: ['EVENT_FORK'] }));
    const m = track(Mapping.anonymous(2 * PAGE_SIZE));
    uffd.register(m, ['missing']);
    const events = uffd.events();
    const child = fork([
      { op: 'write', address: m.address + PAGE_SIZE, length: 4, value: 1 },
      { op: 'read', address: m.address, length: 4 },
    ]);
    const childUffd = track((await nextOf(events, 'fork')).uffd);
    const childEvents = childUffd.events();
    // The first fault is resolved, the second is left pending.
    const first = await nextOf(childEvents, 'pagefault');
    expect(first).toMatchObject({ address: m.address + PAGE_SIZE, write: true });
    childUffd.zeropage(first.address, PAGE_SIZE);
    expect((await nextOf(childEvents, 'pagefault')).address).toBe(m.address);
    expect(await untilBlockedInFault(child.pid)).toBe('handle_userfault');

    expect(child.kill('SIGKILL')).toBe(true);
    const r = await child.exited;
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    expect([...r.values]).toEqual([1]);
    expect(child.kill()).toBe(false);
  });

  it('the child holds no copy of our fds: closing a userfaultfd wakes our blocked threads while the child lives', async () => {
    const uffd = track(Userfaultfd.open({ features: ['EVENT_FORK'] }));
    const m = track(Mapping.anonymous(2 * PAGE_SIZE));
    uffd.register(m, ['missing']);
    const events = uffd.events();
    const child = fork([{ op: 'read', address: m.address, length: 4 }]);
    const childUffd = track((await nextOf(events, 'fork')).uffd);
    expect((await nextOf(childUffd.events(), 'pagefault')).address).toBe(m.address);
    expect(await untilBlockedInFault(child.pid)).toBe('handle_userfault');

    const touching = touch(m.address + PAGE_SIZE, 4);
    expect((await nextOf(events, 'pagefault')).address).toBe(m.address + PAGE_SIZE);
    uffd.close();
    // Released at once: the toucher reads a plain zero page.
    expect([...(await touching).values]).toEqual([0]);
    expect(wchan(child.pid)).toBe('handle_userfault');
  });

  it('a child still running when its environment (a Worker) ends is killed', async () => {
    // The child blocks in a fault of a userfaultfd the main thread owns and
    // never resolves; only the Worker's cleanup can end it.
    const outcome = await runScript(`
const { Worker } = require('node:worker_threads');
const { Userfaultfd, Mapping } = lib;
(async () => {
  const uffd = Userfaultfd.open({ features: ['EVENT_FORK'] });
  const m = Mapping.anonymous(4096);
  uffd.register(m, ['missing']);
  const worker = new Worker(\`
    const { parentPort, workerData } = require('node:worker_threads');
    const testing = require(workerData.testing);
    const child = testing.forkChild([{ op: 'read', address: workerData.address, length: 4 }]);
    parentPort.postMessage(child.pid);
  \`, { eval: true, workerData: { address: m.address, testing: ${JSON.stringify(require.resolve('../dist/testing/index.js'))} } });
  const pid = await new Promise((resolve) => worker.once('message', resolve));
  const wchan = () => { try { return require('fs').readFileSync('/proc/' + pid + '/wchan', 'utf8'); } catch { return 'gone'; } };
  while (wchan() !== 'handle_userfault') await new Promise((r) => setTimeout(r, 5));
  const blocked = wchan();
  await worker.terminate();
  const alive = () => { try { process.kill(pid, 0); return true; } catch (e) { return e.code !== 'ESRCH'; } };
  while (alive()) await new Promise((r) => setTimeout(r, 5));
  console.log('RESULT ' + JSON.stringify({ blocked, gone: !alive(), uffdStillOpen: !uffd.closed }));
  uffd.close();
})().catch((err) => { console.error(err); process.exit(1); });
`);
    expect(outcome.timedOut, outcome.stderr).toBe(false);
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(resultOf(outcome)).toEqual({ blocked: 'handle_userfault', gone: true, uffdStillOpen: true });
  });
});
