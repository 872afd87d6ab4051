/**
 * Errors with stable codes. The cause is always chained; only the code that
 * handles an error logs it.
 */
/** sysexits EX_CONFIG, the exit code of a refused config: systemd's RestartPreventExitStatus keeps it from restart-looping. */
export const EXIT_CONFIG = 78;

export const ERROR_CODES = ['CONFIG_INVALID', 'CONFIG_READ', 'LISTEN', 'SOURCE', 'SPOOL_OPEN', 'SEQ_STATE'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class SpillwayError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SpillwayError';
    this.code = code;
  }
}

/** An invalid config: every problem, each naming the key, the value and what is allowed. */
export class ConfigError extends SpillwayError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super('CONFIG_INVALID', `invalid config:\n  ${problems.join('\n  ')}`, options);
    this.problems = problems;
  }
}
