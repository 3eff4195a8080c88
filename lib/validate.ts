// Argument checks shared by every public function: precise TypeError and
// RangeError before any system call.

export function checkInteger(name: string, value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value === 'bigint') value = Number(value);
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer (got ${describe(value)})`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${name} must be between ${min} and ${max} (got ${value})`);
  }
  return value;
}

export function checkAligned(name: string, value: number, alignment: number): void {
  if (value % alignment !== 0) {
    throw new RangeError(`${name} 0x${value.toString(16)} is not aligned to the page size ${alignment}`);
  }
}

export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean (got ${describe(value)})`);
  return value;
}

export function checkObject<T extends object>(name: string, value: unknown): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object') {
    throw new TypeError(`${name} must be an object (got ${describe(value)})`);
  }
  return value as Partial<T>;
}

export function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new TypeError(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')} (got ${describe(value)})`);
  }
  return value as T;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`;
  if (typeof value === 'object' || typeof value === 'function') {
    return (value as object).constructor?.name ?? typeof value;
  }
  return `${typeof value} ${String(value)}`;
}
