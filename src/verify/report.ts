import { findCollisions, findProblems, formatOffset, type ProblemLimits } from './compare.js';
import type { ChildFacts, SkippedVm, VerifyReport } from './types.js';

export interface ReportInput {
  template: string | null;
  children: ChildFacts[];
  skipped: SkippedVm[];
  wallMs: number;
  limits?: ProblemLimits;
}

/** Compares the collected children and states the verdict. */
export function buildReport(input: ReportInput): VerifyReport {
  const collisions = findCollisions(input.children);
  const problems = input.children.flatMap((c) => findProblems(c, input.limits));
  return {
    template: input.template,
    checkedAt: new Date().toISOString(),
    wallMs: input.wallMs,
    children: input.children,
    skipped: input.skipped,
    collisions,
    problems,
    ok: collisions.length === 0 && problems.length === 0,
  };
}

export const TABLE_COLUMNS = ['name', 'ip', 'mac', 'machine-id', 'ssh-key', 'clock', 'boot_id=template', 'ping'] as const;

const short = (v: string | null | undefined, n: number): string | null => (v ? v.slice(0, n) : null);

function yesNo(v: boolean | null): string | null {
  if (v === null) return null;
  return v ? 'yes' : 'NO';
}

/** One table row per child; the MAC cell shows both views when the guest and QEMU disagree. */
export function tableRows(report: VerifyReport): Record<(typeof TABLE_COLUMNS)[number], string | null>[] {
  return report.children.map((c) => {
    const ed = c.sshHostKeys.find((k) => k.type === 'ED25519') ?? c.sshHostKeys[0];
    const macsDiffer = c.mac && c.qemuMac && c.mac !== c.qemuMac;
    return {
      name: c.name,
      ip: c.ipv4,
      mac: macsDiffer ? `${c.mac} (qemu ${c.qemuMac})` : (c.mac ?? c.qemuMac),
      'machine-id': short(c.machineId, 8),
      // the first 8 characters of the base64 digest, after the SHA256: prefix
      'ssh-key': ed ? `${ed.type.toLowerCase()} ${ed.fingerprint.replace(/^SHA256:/, '').slice(0, 8)}` : null,
      clock: c.clockOffsetMs === null ? null : formatOffset(c.clockOffsetMs, c.clockUncertaintyMs),
      'boot_id=template': yesNo(c.bootIdMatchesTemplate),
      ping: c.reachable === null ? null : c.reachable ? `${c.pingRttMs?.toFixed(2) ?? '?'} ms` : 'NO',
    };
  });
}

/** The lines under the table: skipped VMs, then collisions and problems, or the all-clear. */
export function summaryLines(report: VerifyReport): string[] {
  const lines: string[] = [];
  for (const s of report.skipped) lines.push(`skipped ${s.name}: ${s.state} (only running VMs are verified)`);
  const n = report.children.length;
  if (n === 0) lines.push('no running VM to verify');
  for (const c of report.collisions) lines.push(`COLLISION ${c.field} ${c.value}: ${c.children.join(', ')}`);
  for (const p of report.problems) lines.push(`PROBLEM ${p.child} ${p.kind}: ${p.detail}`);
  if (n > 0 && report.collisions.length === 0) lines.push(`no collisions among ${n} ${n === 1 ? 'child' : 'children'}`);
  if (n > 0 && report.problems.length === 0) lines.push('no problems');
  lines.push(`verified ${n} in ${(report.wallMs / 1000).toFixed(2)} s`);
  return lines;
}
