// onFailure 'zero' for the native sources: a file shorter than its range
// serves what it has, zero-fills the rest, and reports each failed page as a
// 'failure' event with its cause (the 'poison' test cannot show the report
// reliably: SIGBUS may end the process first). Child process: a failed page
// left unresolved would hang.
import { describe, expect, it } from 'vitest';
import { describeChild, resultOf, runScript } from './helpers/child';

describe("Pager onFailure 'zero'", () => {
  it('a short file: pages past its end read zeros, each reported as a failure resolved as zero', async () => {
    const r = await runScript(
      `
      const fs = require('node:fs'), os = require('node:os'), path = require('node:path');
      const { Userfaultfd, Mapping, Pager, PAGE_SIZE } = lib;
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pager-zero-'));
      const file = path.join(dir, 'snap');
      const data = Buffer.alloc(2 * PAGE_SIZE, 0x5a);
      fs.writeFileSync(file, data);
      const uffd = Userfaultfd.open();
      const m = Mapping.anonymous(4 * PAGE_SIZE);
      uffd.register(m, ['missing']);
      const pager = Pager.create(uffd, { onFailure: 'zero', readAhead: false });
      const failures = [];
      pager.on('failure', (f) => failures.push({ page: (f.address - m.address) / PAGE_SIZE, length: f.length, resolvedAs: f.resolvedAs, code: f.cause.code }));
      pager.serve(m, { kind: 'file', path: file });
      (async () => {
        const t = await testing.touchPages(m.address, m.length);
        // The failure notes may reach JavaScript after the faults were resolved.
        while (failures.length < 2) await new Promise((r) => setTimeout(r, 5));
        const b = Buffer.from(m.buffer());
        const expected = Buffer.concat([data, Buffer.alloc(2 * PAGE_SIZE)]);
        const s = pager.stats();
        console.log('RESULT ' + JSON.stringify({ values: Array.from(t.values), same: b.equals(expected), failures: failures.sort((a, b) => a.page - b.page), statsFailures: s.failures }));
        pager.close(); uffd.close(); fs.rmSync(dir, { recursive: true });
      })();`,
      30_000,
    );
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(0);
    expect(resultOf(r)).toEqual({
      values: [0x5a5a5a5a, 0x5a5a5a5a, 0, 0],
      same: true,
      failures: [
        { page: 2, length: 4096, resolvedAs: 'zero', code: 'ERR_PAGER_SHORT_READ' },
        { page: 3, length: 4096, resolvedAs: 'zero', code: 'ERR_PAGER_SHORT_READ' },
      ],
      statsFailures: 2,
    });
  });
});
