// Test support: touch a mapping from a Worker's JavaScript thread. The
// Worker attaches the mapping by its handle and reads (or writes) the first
// word of each page through a view; while a fault is unresolved the
// Worker's thread is blocked in the kernel, and this environment resolves it.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { MappingHandle } from '../memory/mapping';
import { checkInteger, checkObject } from '../validate';

export interface WorkerTouchOptions {
  /** Byte offsets in the mapping to touch (default: the first word of every 4K page). */
  offsets?: readonly number[];
  /** Write `value + index` to each word before reading it back. */
  write?: boolean;
  value?: number;
}

export interface WorkerTouch {
  readonly worker: Worker;
  /** Settles when the Worker has touched every offset: { tid, values } as touchPages(). */
  readonly result: Promise<{ tid: number; values: Uint32Array }>;
}

// Runs in the Worker. It loads the built package by name (a package may
// require itself through its "exports"), since the Worker cannot load
// TypeScript sources.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { Mapping } = require(workerData.entry);
const { threadId } = require(workerData.testingEntry);
const mapping = Mapping.attach(workerData.handle);
const view = new DataView(mapping.arrayBuffer());
const tid = threadId();
parentPort.postMessage({ started: tid });
const values = new Uint32Array(workerData.offsets.length);
workerData.offsets.forEach((offset, i) => {
  if (workerData.write) view.setUint32(offset, (workerData.value + i) >>> 0, true);
  values[i] = view.getUint32(offset, true);
});
parentPort.postMessage({ tid, values });
`;

export function touchInWorker(handle: MappingHandle, length: number, options?: WorkerTouchOptions): WorkerTouch {
  const opts = checkObject<WorkerTouchOptions>('options', options);
  checkInteger('length', length, 4);
  const offsets = opts.offsets ?? Array.from({ length: Math.floor(length / 4096) }, (_, i) => i * 4096);
  for (const o of offsets) checkInteger('offset', o, 0, length - 4);
  const value = checkInteger('options.value', opts.value ?? 0, 0, 0xffffffff);
  const require = createRequire(__filename);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      handle,
      offsets: [...offsets],
      write: opts.write === true,
      value,
      entry: require.resolve('userfaultfd'),
      testingEntry: require.resolve('userfaultfd/testing'),
    },
  });
  const result = new Promise<{ tid: number; values: Uint32Array }>((resolve, reject) => {
    worker.on('message', (m: { tid?: number; values?: Uint32Array }) => {
      if (m.values) resolve({ tid: m.tid as number, values: m.values });
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before touching every page`)));
  });
  return { worker, result };
}
