import type { z } from 'zod';

/**
 * A JSON column read for a metric: the value when it parses and has the shape asked for, else undefined. A row a
 * metric cannot read is left out of that metric; a scrape never fails for it.
 */
export function storedJson<T extends z.ZodType>(schema: T, text: string | null): z.output<T> | undefined {
  if (text === null) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
