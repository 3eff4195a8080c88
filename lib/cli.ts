#!/usr/bin/env node
// The package's command line: `userfaultfd doctor [--json]`,
// `userfaultfd firecracker ...` (lib/firecracker/cli-main.ts).
import { probeSupport } from './doctor/support-matrix';
import { formatReport } from './doctor/format-report';
import { FIRECRACKER_USAGE, firecrackerMain } from './firecracker/cli-main';

function main(argv: string[]): number | Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'firecracker') return firecrackerMain(rest);
  if (command === 'doctor') {
    const report = probeSupport();
    process.stdout.write(rest.includes('--json') ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return 0;
  }
  process.stderr.write(`usage: userfaultfd doctor [--json]\n${FIRECRACKER_USAGE}`);
  return command === undefined || command === '--help' || command === '-h' ? 0 : 2;
}

void Promise.resolve(main(process.argv.slice(2))).then((code) => {
  process.exitCode = code;
});
