// userfaultfd for Node.js: the public API.
export { Userfaultfd } from './uffd/userfaultfd';
export type { OpenOptions, EventsOptions, RangeLike, RegisterOptions, UffdEvent } from './uffd/userfaultfd';
export { FEATURES, FEATURE_BITS, IOCTL_BITS } from './uffd/features';
export type { Feature, IoctlName, RegisterMode, UnknownBit } from './uffd/features';
export type { Registration } from './uffd/registrations';
export type { IoctlResult, IoctlStatus } from './ioctls/outcome';
export type { CopyOptions, ContinueOptions, MoveOptions, WakeOption, CopySource } from './ioctls/range-ioctls';
export type { PageFaultEvent, ForkEvent, RemapEvent, RemoveEvent, UnmapEvent } from './faults/events';
export type { JsThreadFaultPolicy } from './faults/fault-dispatcher';
export type { EventIterator } from './faults/event-iterator';
export { Mapping } from './memory/mapping';
export type { MappingHandle, MappingKind, AnonymousOptions, RemapOptions } from './memory/mapping';
export { MemoryFile } from './memory/memory-file';
export type { MemfdOptions, MapFileOptions } from './memory/memory-file';
export { PAGE_SIZE, HUGE_2M, HUGE_1G } from './memory/constants';
export type { Advice, Protection, PageSize } from './memory/constants';
export type { UffdError } from './errors';
