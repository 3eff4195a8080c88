#!/usr/bin/env node
// `userfaultfd-firecracker-handler <socket> <memory file>`: the argv of
// Firecracker's example page-fault handlers, for a drop-in replacement.
// The same as `userfaultfd firecracker <socket> <memory file>`.
import { FIRECRACKER_USAGE, runFirecracker } from './firecracker/cli-main';

async function main(argv: string[]): Promise<number> {
  if (argv.length !== 2 || argv.some((a) => a === '')) {
    process.stderr.write(`userfaultfd-firecracker-handler: expected <socket> <memory file>\n${FIRECRACKER_USAGE}`);
    return 2;
  }
  try {
    return await runFirecracker({ socket: argv[0], memory: argv[1], statsIntervalMs: 1000, killOnError: true });
  } catch (err) {
    process.stderr.write(`userfaultfd firecracker: ${(err as Error).message}\n`);
    return 1;
  }
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
