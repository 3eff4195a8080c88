// The Firecracker handler as a command:
//
//   userfaultfd firecracker --socket <path> --memory <file> [--uid N]...
//       [--stats-interval ms] [--read-ahead on|off|<min>-<max>]
//       [--on-failure poison|zero] [--handshake-timeout ms] [--keep-vm-on-error]
//   userfaultfd-firecracker-handler <socket> <memory file>
//
// The second form is the argv of Firecracker's example handlers, so this is
// a drop-in replacement. Like them it serves ONE VM: it accepts one
// connection, serves until that Firecracker process exits, and exits 0.
// Like them, if the handshake is broken it kills the VM process (which
// would otherwise hang on its first fault) and exits 1. Statistics go to
// stderr. SIGINT/SIGTERM stop it cleanly (exit 0).
import { parseArgs } from 'node:util';
import { FirecrackerHandler, type FirecrackerSession } from './handler';
import type { PagerStats } from '../pager/stats';
import type { PagerOptions } from '../pager/pager';

export const FIRECRACKER_USAGE =
  'usage: userfaultfd firecracker --socket <path> --memory <file> [--uid N]... [--stats-interval ms]\n' +
  '           [--read-ahead on|off|<min>-<max>] [--on-failure poison|zero] [--handshake-timeout ms] [--keep-vm-on-error]\n' +
  '       userfaultfd firecracker <socket> <memory file>\n' +
  '       userfaultfd-firecracker-handler <socket> <memory file>\n';

export interface CliOptions {
  socket: string;
  memory: string;
  uids?: number[];
  statsIntervalMs: number;
  readAhead?: PagerOptions['readAhead'];
  onFailure?: 'poison' | 'zero';
  handshakeTimeoutMs?: number;
  killOnError: boolean;
}

class UsageError extends Error {}

function size(text: string): number {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(text);
  if (!m) throw new UsageError(`not a size: ${text} (e.g. 64K, 4M)`);
  return Number(m[1]) * { '': 1, K: 1024, M: 1 << 20, G: 1 << 30 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
}

function integer(name: string, text: string, min: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`--${name} must be an integer >= ${min} (got ${text})`);
  return Number(text);
}

/** Parses the subcommand's arguments (after `firecracker`). */
export function parseCli(argv: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        socket: { type: 'string' },
        memory: { type: 'string' },
        uid: { type: 'string', multiple: true },
        'stats-interval': { type: 'string' },
        'read-ahead': { type: 'string' },
        'on-failure': { type: 'string' },
        'handshake-timeout': { type: 'string' },
        'keep-vm-on-error': { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 0 && positionals.length !== 2) throw new UsageError(`expected <socket> <memory file>, got ${positionals.length} arguments`);
  if (positionals.length === 2 && (values.socket !== undefined || values.memory !== undefined)) {
    throw new UsageError('give the socket and memory file either as --socket/--memory or as two arguments, not both');
  }
  const socket = values.socket ?? positionals[0];
  const memory = values.memory ?? positionals[1];
  if (socket === undefined) throw new UsageError('--socket is required');
  if (memory === undefined) throw new UsageError('--memory is required');
  const opts: CliOptions = {
    socket,
    memory,
    statsIntervalMs: values['stats-interval'] === undefined ? 1000 : integer('stats-interval', values['stats-interval'], 0),
    killOnError: values['keep-vm-on-error'] !== true,
  };
  if (values.uid !== undefined) opts.uids = values.uid.map((u) => integer('uid', u, 0));
  const ra = values['read-ahead'];
  if (ra !== undefined) {
    if (ra === 'on') opts.readAhead = true;
    else if (ra === 'off') opts.readAhead = false;
    else {
      const m = /^([^-]+)-([^-]+)$/.exec(ra);
      if (!m) throw new UsageError(`--read-ahead must be on, off or <min>-<max> such as 64K-4M (got ${ra})`);
      opts.readAhead = { min: size(m[1]), max: size(m[2]) };
    }
  }
  const onFailure = values['on-failure'];
  if (onFailure !== undefined) {
    if (onFailure !== 'poison' && onFailure !== 'zero') throw new UsageError(`--on-failure must be poison or zero (got ${onFailure})`);
    opts.onFailure = onFailure;
  }
  if (values['handshake-timeout'] !== undefined) opts.handshakeTimeoutMs = integer('handshake-timeout', values['handshake-timeout'], 1);
  return opts;
}

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

function micros(ns: number): string {
  return ns === 0 ? '-' : ns < 10_000 ? `${(ns / 1000).toFixed(1)}us` : `${Math.round(ns / 1000)}us`;
}

/** One line of live statistics; `previous` and `seconds` give the rates. */
export function formatStats(s: PagerStats, previous: PagerStats | null, seconds: number): string {
  const rate = previous && seconds > 0 ? ` (${Math.round((s.faults - previous.faults) / seconds)}/s, ${mib((s.bytes - previous.bytes) / seconds)}/s)` : '';
  return (
    `faults ${s.faults}${rate} bytes ${mib(s.bytes)} read-ahead ${s.readAheadPages} pages eexist ${s.eexist} eagain ${s.eagain}` +
    ` failures ${s.failures} latency p50 <${micros(s.latencyP50Ns)} p99 <${micros(s.latencyP99Ns)}`
  );
}

const log = (line: string): void => {
  process.stderr.write(`userfaultfd firecracker: ${line}\n`);
};

/** Runs the handler for one VM. Resolves with the exit code. */
export async function runFirecracker(opts: CliOptions): Promise<number> {
  // Signal handlers first: a SIGTERM that comes as soon as the socket
  // exists must find them installed.
  const stop = new AbortController();
  let session: FirecrackerSession | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping`);
    stop.abort();
    session?.close();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let handler: FirecrackerHandler;
  try {
    handler = FirecrackerHandler.listen({
      socket: opts.socket,
      memory: opts.memory,
      ...(opts.uids ? { allowedUids: opts.uids } : {}),
      ...(opts.readAhead !== undefined ? { readAhead: opts.readAhead } : {}),
      ...(opts.onFailure ? { onFailure: opts.onFailure } : {}),
      ...(opts.handshakeTimeoutMs ? { handshakeTimeoutMs: opts.handshakeTimeoutMs } : {}),
    });
  } catch (err) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    throw err;
  }
  handler.on('reject', (r) => log(`rejected pid ${r.peer.pid}: ${r.reason}`));
  log(`listening on ${opts.socket}, serving ${opts.memory} (${mib(handler.memorySize)})`);
  let timer: NodeJS.Timeout | undefined;
  try {
    try {
      session = await handler.accept({ signal: stop.signal });
    } catch (err) {
      if ((err as Error).name === 'AbortError') return 0;
      log(`handshake failed: ${(err as Error).message}`);
      const pid = (err as { peerPid?: number }).peerPid;
      if (opts.killOnError && pid !== undefined) {
        log(`killing the VM process ${pid}, which would hang on its first fault`);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      return 1;
    } finally {
      handler.close();
    }
    const s = session;
    log(`serving pid ${s.peer.pid} (uid ${s.peer.uid}): ${s.regions.length} regions, ${mib(s.regions.reduce((a, r) => a + r.size, 0))}`);
    s.on('unexpected', (e) => log(`a fault outside every region: ${JSON.stringify(e)}`));
    s.on('failure', (f) => log(`the memory file failed at offset ${f.offset}: ${String((f.cause as Error)?.message ?? f.cause)} (page resolved as ${f.resolvedAs})`));
    if (opts.statsIntervalMs > 0) {
      let previous: PagerStats | null = null;
      let at = process.hrtime.bigint();
      timer = setInterval(() => {
        if (s.closed) return;
        const now = process.hrtime.bigint();
        const stats = s.stats();
        log(formatStats(stats, previous, Number(now - at) / 1e9));
        previous = stats;
        at = now;
      }, opts.statsIntervalMs);
    }
    const end = await s.ended;
    log(`${end.reason === 'peer-exited' ? `the VM process ${s.peer.pid} exited` : 'stopped'}; ${formatStats(end.stats, null, 0)}`);
    return 0;
  } finally {
    if (timer) clearInterval(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Parses `argv` and runs; usage errors print the usage and give 2. */
export async function firecrackerMain(argv: string[]): Promise<number> {
  let opts: CliOptions;
  try {
    opts = parseCli(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`userfaultfd firecracker: ${err.message}\n${FIRECRACKER_USAGE}`);
    return 2;
  }
  try {
    return await runFirecracker(opts);
  } catch (err) {
    log(`${(err as Error).message}`);
    return 1;
  }
}
