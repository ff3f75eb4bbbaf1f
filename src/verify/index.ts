/**
 * `vmfork verify`: proves forked children are distinct machines. Every fact is read from the guest (one exec), from
 * QEMU (QMP) or by a real client on the child's network (ping, ssh-keyscan) — never from vmfork's own records.
 */
export { collectHere, verifyChildren, type HostCollection, type VerifyRequest } from './collect.js';
export { findCollisions, findProblems, formatOffset, type ProblemLimits } from './compare.js';
export { summaryLines, TABLE_COLUMNS, tableRows } from './report.js';
export type { ChildFacts, Collision, Problem, SkippedVm, SshHostKey, VerifyReport } from './types.js';
