// The README's promises about itself: its opening example runs as printed
// (imports resolve to this package through its own name, as for a user), and
// the set-up is two commands, the same ones .ci/run runs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeChild, root, runChild } from './helpers/child';

const readme = readFileSync(join(root, 'README.md'), 'utf8');

function firstBlock(lang: string, after = 0): string {
  const start = readme.indexOf('```' + lang + '\n', after);
  if (start < 0) throw new Error(`README has no \`\`\`${lang} block`);
  const body = start + lang.length + 4;
  return readme.slice(body, readme.indexOf('\n```', body));
}

describe('README', () => {
  it('opens with a runnable example: a region filled lazily, page by page, as another thread touches it', async () => {
    const firstCode = readme.indexOf('```');
    expect(readme.indexOf('```js\n')).toBe(firstCode);
    const code = firstBlock('js');
    expect(code).toMatch(/from 'userfaultfd'/);
    const r = await runChild({ code, module: 'module' }, { timeoutMs: 30_000 });
    expect(r.timedOut, describeChild(r)).toBe(false);
    expect(r.code, describeChild(r)).toBe(0);
    const printed = r.stdout.replace(/\s+/g, '');
    expect(printed).toBe('[1000,1001,1002,1003,1004,1005,1006,1007]');
  });

  it('set-up is two commands, install and test, and .ci/run runs exactly those', () => {
    const setup = readme.slice(readme.indexOf('## Set-up'));
    const commands = firstBlock('sh', readme.indexOf('## Set-up'))
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean);
    expect(setup.length).toBeGreaterThan(0);
    expect(commands).toEqual(['npm install', 'npm test']);
    const ci = readFileSync(join(root, '.ci', 'run'), 'utf8');
    const ciCommands = ci
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /\bnpm\b/.test(l) && !l.startsWith('#'))
      .map((l) => l.replace(/^timeout -s KILL \d+ /, ''));
    expect(ciCommands).toEqual(commands);
    expect(ci).toMatch(/reserve-hugepages/);
  });
});
