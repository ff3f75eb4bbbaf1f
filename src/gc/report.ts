import { z } from 'zod';
import { GC_ACTION_KINDS } from './plan.js';

/** One action of a gc pass as the CLI and the API show it (a contract: docs/gc.md). */
export const GcActionViewSchema = z.object({
  kind: z.enum(GC_ACTION_KINDS),
  target: z.string(),
  /** Why it is this data dir's and left over. */
  reason: z.string(),
  /** Done by this pass (always false in a dry run). */
  done: z.boolean(),
  /** Not done: the re-check just before acting found it no longer left over, and why. */
  skipped: z.string().optional(),
  /** Not done: acting failed (the next pass tries again). */
  error: z.string().optional(),
});

export const GcReportSchema = z.object({
  dryRun: z.boolean(),
  actions: z.array(GcActionViewSchema),
});
export type GcReport = z.infer<typeof GcReportSchema>;
