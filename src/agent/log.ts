/**
 * Structured logging: one line per event on stderr, `key=value` fields, and
 * upstream-like verbosity (`--v`): 0 quiet, 2 a line per sync, 4 per-object
 * detail. Warnings and errors are always printed.
 */
export type Fields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  info(v: number, msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  enabled(v: number): boolean;
}

function formatValue(v: string | number | boolean): string {
  const s = String(v);
  return /^[\w.:/@+-]+$/.test(s) ? s : JSON.stringify(s);
}

function line(level: string, msg: string, fields?: Fields): string {
  const parts = [new Date().toISOString(), level, JSON.stringify(msg)];
  for (const [k, v] of Object.entries(fields ?? {})) if (v !== undefined) parts.push(`${k}=${formatValue(v)}`);
  return parts.join(' ');
}

export function createLogger(verbosity: number, write: (s: string) => void = (s) => process.stderr.write(`${s}\n`)): Logger {
  return {
    info(v, msg, fields) {
      if (v <= verbosity) write(line('I', msg, fields));
    },
    warn(msg, fields) {
      write(line('W', msg, fields));
    },
    error(msg, fields) {
      write(line('E', msg, fields));
    },
    enabled(v) {
      return v <= verbosity;
    },
  };
}

/** A logger that keeps lines in memory, for tests. */
export function memoryLogger(verbosity = 10): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger(verbosity, (s) => lines.push(s)), { lines });
}
