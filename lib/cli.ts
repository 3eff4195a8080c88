#!/usr/bin/env node
// The package's command line: `userfaultfd doctor [--json]`.
import { probeSupport } from './doctor/support-matrix';
import { formatReport } from './doctor/format-report';

function main(argv: string[]): number {
  const [command, ...rest] = argv;
  if (command === 'doctor') {
    const report = probeSupport();
    process.stdout.write(rest.includes('--json') ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return 0;
  }
  process.stderr.write('usage: userfaultfd doctor [--json]\n');
  return command === undefined || command === '--help' || command === '-h' ? 0 : 2;
}

process.exitCode = main(process.argv.slice(2));
