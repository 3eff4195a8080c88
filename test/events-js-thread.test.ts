// The JS-thread fault policy: a registered page touched by the environment's
// own JavaScript thread (through a Mapping's Buffer) can never be resolved
// from JavaScript, so the native reader resolves it by the jsThreadFaults
// policy ('zero' by default). The event still arrives, with resolvedByReader
// true; uffd.jsThreadFaultsResolved counts it; a UserfaultfdWarning is
// emitted once. A regression would hang the JS thread, so this runs in a
// child process killed by pid on a timeout.
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../lib';
import { resultOf, runScript } from './helpers/child';

const script = `
const { Userfaultfd, Mapping } = lib;
const P = ${PAGE_SIZE};
const warnings = [];
process.on('warning', (w) => warnings.push({ name: w.name, code: w.code, message: w.message }));
(async () => {
  const uffd = Userfaultfd.open();
  const m = Mapping.anonymous(4 * P);
  uffd.register(m, ['missing']);
  const events = uffd.events();
  const buf = m.buffer();
  const out = { pid: process.pid, policy: uffd.jsThreadFaults, address: m.address };
  out.resolvedBefore = uffd.jsThreadFaultsResolved;
  // Each access blocks this thread in the kernel until the reader resolves it.
  out.read0 = buf.readUInt32LE(0);
  out.read1 = buf.readUInt32LE(P + 12);
  // A plain store (Buffer#writeUInt32LE reads the bytes first, for its bounds check).
  new Uint32Array(m.arrayBuffer(2 * P, P))[1] = 0xc0ffee;
  out.write2 = buf.readUInt32LE(2 * P + 4);
  out.events = [];
  for (let i = 0; i < 3; i++) out.events.push((await events.next()).value);
  out.resolved = uffd.jsThreadFaultsResolved;
  // Warnings are emitted on a later tick.
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setImmediate(r));
  out.warnings = warnings;
  // Page 3 is still registered and untouched: a native thread's fault is an
  // ordinary one, not resolved by the reader.
  const touching = testing.touchPages(m.address + 3 * P, 4);
  const other = (await events.next()).value;
  out.other = { resolvedByReader: other.resolvedByReader, address: other.address };
  uffd.copy(other.address, Buffer.alloc(P, 1));
  out.otherTid = (await touching).tid;
  out.otherThreadId = other.threadId;
  out.resolvedAfter = uffd.jsThreadFaultsResolved;
  console.log('RESULT ' + JSON.stringify(out));
  uffd.close();
})().catch((err) => { console.error(err); process.exit(1); });
`;

describe("faults of the environment's own JS thread", () => {
  it("are resolved natively by the 'zero' policy, reported with resolvedByReader, counted, and warned about once", async () => {
    const outcome = await runScript(script);
    expect(outcome.timedOut, outcome.stderr).toBe(false);
    expect(outcome.code, outcome.stderr).toBe(0);
    const r = resultOf<Record<string, any>>(outcome);
    const P = PAGE_SIZE;

    expect(r.policy).toBe('zero');
    expect(r.resolvedBefore).toBe(0);
    expect(r.read0).toBe(0);
    expect(r.read1).toBe(0);
    expect(r.write2).toBe(0xc0ffee);

    expect(r.events).toEqual([
      { type: 'pagefault', address: r.address, flags: 0, write: false, wp: false, minor: false, threadId: r.pid, resolvedByReader: true },
      { type: 'pagefault', address: r.address + P, flags: 0, write: false, wp: false, minor: false, threadId: r.pid, resolvedByReader: true },
      { type: 'pagefault', address: r.address + 2 * P, flags: 1, write: true, wp: false, minor: false, threadId: r.pid, resolvedByReader: true },
    ]);
    expect(r.resolved).toBe(3);

    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatchObject({ name: 'UserfaultfdWarning', code: 'UFFD_JS_THREAD_FAULT' });

    expect(r.other).toEqual({ resolvedByReader: false, address: r.address + 3 * P });
    expect(r.otherThreadId).toBe(r.otherTid);
    expect(r.otherTid).not.toBe(r.pid);
    expect(r.resolvedAfter).toBe(3);
    // The warning went to the child's stderr, once.
    expect(outcome.stderr.match(/UserfaultfdWarning/g)).toHaveLength(1);
  });
});
