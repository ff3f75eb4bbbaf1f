/** Small shared helpers with no knowledge of VMs: running programs, logging, names, sizes, statistics, quoting. */
export { hostNowMs, hostNowNs } from './clock.js';
export { run, which, type RunOptions, type RunResult } from './exec.js';
export { sha256File } from './file-hash.js';
export { createLogger, REDACT_PATHS, type Logger } from './log.js';
export { assertValidName, isValidName } from './names.js';
export { formatName, labelProblem, parseNamePattern, patternNames, type NamePattern } from './name-pattern.js';
export { isPostgresUrl, REDACTED, redactSecrets, redactText, redactUrl } from './redact.js';
export { shQuote } from './shell-quote.js';
export { FAULT_POINTS, FAULT_SCENARIOS, faultPoint, faultSwitch, isFaultPoint, type FaultPoint, type FaultScenario } from './fault.js';
export { formatBytes, parseMemoryMiB, parseSize } from './size.js';
export { describe, percentile, roundStats, type Stats } from './stats.js';
export { waitUntil, type WaitOptions } from './wait-until.js';
export { freePort, parseListen } from './listen.js';
export { secretEquals } from './secret-equal.js';
