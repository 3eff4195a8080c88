// The uffd-stress equivalent, short runs: native locking threads and
// background copiers race on dst while the library resolves the faults
// (copy(), writeProtect()). Each run is a child process killed on a timeout.
import { describe, expect, it } from 'vitest';
import { Mapping, PAGE_SIZE } from '../lib';
import { native } from '../lib/native';
import { freeHugetlbPages2M, runStress, stressHugetlbPagesNeeded, type StressMemory } from '../lib/testing';
import { join } from 'node:path';
import { DIST, runNodeChild, runStressChild, type StressChildOutcome } from './helpers/stress-child';

const MIB = 4;
const BOUNCES = 4;
const hugetlbNeed = stressHugetlbPagesNeeded(MIB);
const hugetlbFree = freeHugetlbPages2M();
const noHugetlb =
  hugetlbFree < hugetlbNeed
    ? `needs ${hugetlbNeed} free 2M hugetlb pages, ${hugetlbFree} free (run scripts/reserve-hugepages.mjs as root)`
    : '';

function expectClean<R>(outcome: StressChildOutcome<R>): R {
  const how = `code ${outcome.code}, signal ${outcome.signal}, timed out ${outcome.timedOut}, error ${JSON.stringify(outcome.error)}\n${outcome.stderr}`;
  expect(outcome.result, how).toBeDefined();
  expect(outcome.timedOut).toBe(false);
  expect(outcome.code).toBe(0);
  return outcome.result as R;
}

const cases: { memory: StressMemory; wp: boolean; skip: string }[] = [];
for (const memory of ['anon', 'shmem', 'hugetlb'] as const) {
  for (const wp of [false, true]) cases.push({ memory, wp, skip: memory === 'hugetlb' ? noHugetlb : '' });
}

describe('stress: bounces with the library as the fault handler', () => {
  for (const { memory, wp, skip } of cases) {
    const name = `${memory}${wp ? ' wp' : ''}: ${MIB} MiB, ${BOUNCES} bounces, verified, with faults${wp ? ', WP faults' : ''} and EEXIST retries every bounce${skip ? ` (skipped: ${skip})` : ''}`;
    it.skipIf(skip !== '')(name, async (ctx) => {
      const outcome = await runStressChild({ memory, mib: MIB, bounces: BOUNCES, wp });
      // Other test files may hold 2M pages at the same moment.
      if (outcome.error?.code === 'ERR_UFFD_HUGETLB_POOL') ctx.skip(`the 2M hugetlb pool ran short while other tests ran: ${outcome.error.message}`);
      const r = expectClean(outcome);
      const pageSize = memory === 'hugetlb' ? 2 * 1024 * 1024 : PAGE_SIZE;
      expect(r.pageSize).toBe(pageSize);
      expect(r.pages).toBe((MIB * 1024 * 1024) / pageSize);
      expect(r.wp).toBe(wp);
      expect(r.bounces.map((b) => b.mode)).toEqual(['seq', 'rnd', 'seq racing', 'rnd racing']);
      for (const b of r.bounces) {
        expect(b.verified).toBe(true);
        // Every page mapped exactly once, by the handler or by a copier.
        expect(b.handlerCopies + b.backgroundCopies).toBe(r.pages);
        expect(b.backgroundCopies + b.backgroundEexist).toBe(r.pages);
        expect(b.handlerCopies + b.raced).toBe(b.faults);
        expect(b.handlerCopies).toBeGreaterThan(0);
        expect(b.eexistRetries).toBeGreaterThan(0);
        expect(b.eexist).toBe(b.raced + b.eexistRetries + b.backgroundEexist);
        expect(b.locks).toBeGreaterThan(0);
        if (wp) expect(b.wpFaults).toBeGreaterThan(0);
        else expect(b.wpFaults).toBe(0);
      }
      const viaAlias = r.bounces.reduce((n, b) => n + b.eexistRetriesViaAlias, 0);
      if (memory === 'anon') expect(viaAlias).toBe(0);
      else expect(viaAlias).toBeGreaterThan(0);
    }, 90_000);
  }
});

// A Worker terminated mid-bounce: its mappings are unmapped at teardown
// while locking threads run or sit blocked in faults its handler will never
// resolve. The teardown stops them, resolves their faults and joins them
// first, so none touches unmapped memory and none is left behind.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
require(workerData.entry).runStress({
  memory: workerData.memory, mib: 4, bounces: 1e6, wp: workerData.wp,
  onBounce: (s) => parentPort.postMessage(s.bounce),
}).catch((e) => parentPort.postMessage('error: ' + e.message));
`;

describe('stress: Workers terminated mid-run', () => {
  for (const memory of ['anon', 'shmem', 'hugetlb'] as const) {
    const skip = memory === 'hugetlb' ? noHugetlb : '';
    it.skipIf(skip !== '')(`${memory}: 12 Workers (with and without WP) terminated while their threads run; no crash, no thread left${skip ? ` (skipped: ${skip})` : ''}`, async () => {
      const source = `
const { Worker } = require('node:worker_threads');
const { readdirSync } = require('node:fs');
const threads = () => readdirSync('/proc/self/task').length;
async function cycle(i) {
  const w = new Worker(${JSON.stringify(WORKER_SOURCE)}, { eval: true, workerData: { entry: ${JSON.stringify(join(DIST, 'testing', 'index.js'))}, memory: ${JSON.stringify(memory)}, wp: i % 2 === 1 } });
  await new Promise((resolve, reject) => {
    w.on('message', (m) => (typeof m === 'string' ? reject(new Error(m)) : m >= i % 3 ? resolve() : undefined));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error('worker exited with ' + code)));
  });
  await w.terminate();
}
(async () => {
  await cycle(0); // starts whatever threads Node starts lazily
  // The first Worker's own threads may still be leaving /proc/self/task:
  // count once the number has been steady for a while.
  let before = threads();
  for (let steady = 0, tries = 0; steady < 5 && tries < 200; tries++) {
    await new Promise((r) => setTimeout(r, 20));
    const now = threads();
    steady = now === before ? steady + 1 : 0;
    before = now;
  }
  for (let i = 1; i <= 12; i++) await cycle(i);
  // A thread that was joined may take a moment to leave /proc/self/task.
  for (let tries = 0; tries < 100 && threads() > before; tries++) await new Promise((r) => setTimeout(r, 20));
  console.log('RESULT ' + JSON.stringify({ terminated: 12, leftThreads: threads() - before }));
})().catch((e) => { console.log('ERROR ' + JSON.stringify({ name: e.name, message: e.message })); process.exitCode = 1; });
`;
      const r = expectClean(await runNodeChild(source, 60_000)) as { terminated: number; leftThreads: number };
      expect(r.terminated).toBe(12);
      // Fewer threads than before is fine (a lazily started Node thread ended); more is a leak.
      expect(r.leftThreads).toBeLessThanOrEqual(0);
    }, 90_000);
  }
});

describe('stress: the checks can fail', () => {
  it('stressVerify names the first wrong field and counts the wrong pages', () => {
    const m = Mapping.anonymous(4 * PAGE_SIZE);
    try {
      const session = native.stressSession(PAGE_SIZE, 4);
      native.stressInit(session, m.address);
      expect(native.stressVerify(session, m.address)).toBeNull();
      const view = new DataView(m.arrayBuffer());
      view.setUint32(2 * PAGE_SIZE + 1000, 0xdead, true);
      expect(native.stressVerify(session, m.address)).toMatchObject({ page: 2, field: 'pattern', badPages: 1 });
      view.setBigUint64(PAGE_SIZE + 40, 7n, true); // the counter of page 1 (after the 40-byte mutex)
      expect(native.stressVerify(session, m.address)).toMatchObject({ page: 1, field: 'count', expected: 1n, actual: 7n, badPages: 2 });
      m.buffer(3 * PAGE_SIZE, PAGE_SIZE).fill(0); // a zero page
      expect(native.stressVerify(session, m.address)).toMatchObject({ page: 1, badPages: 3 });
      native.stressInit(session, m.address);
      new Uint8Array(m.arrayBuffer()).copyWithin(0, PAGE_SIZE, 2 * PAGE_SIZE); // page 1 copied over page 0
      expect(native.stressVerify(session, m.address)).toMatchObject({ page: 0, field: 'index', expected: 0n, actual: 1n, badPages: 1 });
    } finally {
      m.unmap();
    }
  });
});

describe('stress: bad options', () => {
  it('rejects them with TypeError or RangeError before mapping anything', async () => {
    await expect(runStress({ memory: 'ram' as StressMemory, mib: 4, bounces: 1 })).rejects.toThrow(TypeError);
    await expect(runStress({ memory: 'anon', mib: 0, bounces: 1 })).rejects.toThrow(RangeError);
    await expect(runStress({ memory: 'anon', mib: 1.5, bounces: 1 })).rejects.toThrow(TypeError);
    await expect(runStress({ memory: 'anon', mib: 4, bounces: 0 })).rejects.toThrow(RangeError);
    await expect(runStress({ memory: 'hugetlb', mib: 3, bounces: 1 })).rejects.toThrow(/even for hugetlb/);
    await expect(runStress({ memory: 'anon', mib: 4, bounces: 1, threads: 0 })).rejects.toThrow(RangeError);
    await expect(runStress({ memory: 'anon', mib: 4, bounces: 1, wp: 1 as unknown as boolean })).rejects.toThrow(TypeError);
    await expect(runStress({ memory: 'anon', mib: 4, bounces: 1, eexistEvery: 0 })).rejects.toThrow(RangeError);
  });
});
