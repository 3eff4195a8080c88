// Users add us as an npm dependency: `npm pack`, then a plain `npm install
// <tarball>` in a fresh project must build the addon and work from
// TypeScript (with the shipped types) and from plain JavaScript.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..');
const fixtures = join(__dirname, 'fixtures', 'consumer');
const work = mkdtempSync(join(tmpdir(), 'uffd-pack-'));
function run(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000, killSignal: 'SIGKILL' });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack → npm install <tarball>', () => {
  it('builds in a fresh project and works from TypeScript, CommonJS and ESM', () => {
    run('npm', ['pack', '--pack-destination', work], root);
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();

    const project = join(work, 'consumer');
    run('mkdir', ['-p', project], work);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    run('npm', ['install', '--no-audit', '--no-fund', join(work, tarball as string)], project);

    for (const f of ['use.ts', 'use.cjs', 'use.mjs']) copyFileSync(join(fixtures, f), join(project, f));
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022', module: 'node16', moduleResolution: 'node16', strict: true,
          lib: ['ES2022', 'esnext.disposable'], typeRoots: [join(root, 'node_modules', '@types')], types: ['node'],
          outDir: 'out',
        },
        files: ['use.ts'],
      }),
    );
    run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], project);

    expect(run(process.execPath, ['out/use.js'], project).trim()).toBe('ts 117901063,117901063,117901063,117901063');
    expect(run(process.execPath, ['use.cjs'], project).trim()).toBe('cjs 0,0');
    expect(run(process.execPath, ['use.mjs'], project).trim()).toMatch(/^esm 17 true$/);
  }, 300_000);
});
