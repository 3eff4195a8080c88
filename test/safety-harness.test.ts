// The child-process harness itself: a child that hangs is killed by pid and
// reported as timed out, so the safety tests can fail instead of hanging.
import { describe, expect, it } from 'vitest';
import { runChild } from './helpers/child';

describe('test/helpers/child', () => {
  it('reports output, exit code and signal of a child that ends by itself', async () => {
    const r = await runChild({ code: "console.log('out'); console.error('err'); process.exitCode = 3;" });
    expect(r).toEqual({ code: 3, signal: null, stdout: 'out\n', stderr: 'err\n', timedOut: false });
  });

  it('runs ES modules inline', async () => {
    const r = await runChild({ code: "const { PAGE_SIZE } = await import('./dist/index.js'); console.log(PAGE_SIZE);", module: 'module' });
    expect([r.code, r.stdout]).toEqual([0, '4096\n']);
  });

  it('kills a child blocked for ever in an unresolved fault, and says so', async () => {
    // The touching thread keeps the loop alive and nothing resolves its fault.
    const code = `
      const { Userfaultfd, Mapping } = require('./dist');
      const { touchPages } = require('./dist/testing');
      const uffd = Userfaultfd.open();
      const mapping = Mapping.anonymous(4096);
      uffd.register(mapping, ['missing']);
      touchPages(mapping.address, 4096).then(() => console.log('resolved?'));
      console.log('blocked');
    `;
    const r = await runChild({ code }, { timeoutMs: 1500 });
    expect(r).toMatchObject({ timedOut: true, code: null, signal: 'SIGKILL', stdout: 'blocked\n' });
  });
});
