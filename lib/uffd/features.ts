// UFFD_FEATURE_* and ioctl bits as typed names. Bits this version does not
// know are kept as 'bit<N>' names rather than dropped or rejected, so a newer
// kernel never breaks an older library.

export const FEATURE_BITS = {
  PAGEFAULT_FLAG_WP: 0,
  EVENT_FORK: 1,
  EVENT_REMAP: 2,
  EVENT_REMOVE: 3,
  MISSING_HUGETLBFS: 4,
  MISSING_SHMEM: 5,
  EVENT_UNMAP: 6,
  SIGBUS: 7,
  THREAD_ID: 8,
  MINOR_HUGETLBFS: 9,
  MINOR_SHMEM: 10,
  EXACT_ADDRESS: 11,
  WP_HUGETLBFS_SHMEM: 12,
  WP_UNPOPULATED: 13,
  POISON: 14,
  WP_ASYNC: 15,
  MOVE: 16,
} as const;

/** A UFFD_FEATURE_* name without the prefix, e.g. 'MINOR_SHMEM'. */
export type Feature = keyof typeof FEATURE_BITS;
export const FEATURES = Object.keys(FEATURE_BITS) as Feature[];

/** The ioctl numbers (_UFFDIO_*), as reported in uffdio_api.ioctls and uffdio_register.ioctls. */
export const IOCTL_BITS = {
  REGISTER: 0x00,
  UNREGISTER: 0x01,
  WAKE: 0x02,
  COPY: 0x03,
  ZEROPAGE: 0x04,
  MOVE: 0x05,
  WRITEPROTECT: 0x06,
  CONTINUE: 0x07,
  POISON: 0x08,
  API: 0x3f,
} as const;

export type IoctlName = keyof typeof IOCTL_BITS;
/** An ioctl bit this version does not know, kept as `bit<N>`. */
export type UnknownBit = `bit${number}`;

export function isFeature(name: unknown): name is Feature {
  return typeof name === 'string' && Object.hasOwn(FEATURE_BITS, name);
}

export function featureMask(features: Iterable<Feature>): bigint {
  let mask = 0n;
  for (const f of features) mask |= 1n << BigInt(FEATURE_BITS[f]);
  return mask;
}

export function featureNames(mask: bigint): Set<Feature | UnknownBit> {
  return namesOf(mask, FEATURE_BITS);
}

export function ioctlNames(mask: bigint): Set<IoctlName | UnknownBit> {
  return namesOf(mask, IOCTL_BITS);
}

function namesOf<K extends string>(mask: bigint, bits: Record<K, number>): Set<K | UnknownBit> {
  const byBit = new Map<number, K>();
  for (const [name, bit] of Object.entries(bits) as [K, number][]) byBit.set(bit, name);
  const out = new Set<K | UnknownBit>();
  for (let bit = 0; bit < 64; bit++) {
    if ((mask >> BigInt(bit)) & 1n) out.add(byBit.get(bit) ?? `bit${bit}`);
  }
  return out;
}

/** Register modes (UFFDIO_REGISTER_MODE_*). */
export const REGISTER_MODE_BITS = { missing: 1, wp: 2, minor: 4 } as const;
export type RegisterMode = keyof typeof REGISTER_MODE_BITS;
