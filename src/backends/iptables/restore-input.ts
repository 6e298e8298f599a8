/**
 * Builds one iptables-restore (--noflush) input. Per table: chain
 * declarations first (declaring a chain flushes it), then rules in the order
 * given, then deletions of chains that are no longer wanted (by then nothing
 * written in this input refers to them). Pure.
 */
export type Table = 'filter' | 'nat' | 'mangle';

const TABLE_ORDER: readonly Table[] = ['filter', 'nat', 'mangle'];

interface TableParts {
  declared: Set<string>;
  rules: string[];
  deleted: Set<string>;
}

export interface BuiltInput {
  text: string;
  ruleCount: number;
  rulesByTable: Record<string, number>;
}

export class RestoreInputBuilder {
  private readonly tables = new Map<Table, TableParts>();

  private part(table: Table): TableParts {
    let p = this.tables.get(table);
    if (!p) this.tables.set(table, (p = { declared: new Set(), rules: [], deleted: new Set() }));
    return p;
  }

  /** Declares (creates or flushes) a chain. */
  declare(table: Table, chain: string): this {
    this.part(table).declared.add(chain);
    return this;
  }

  /** Declares a chain and writes its rules. */
  chain(table: Table, chain: string, rules: readonly string[]): this {
    this.declare(table, chain);
    return this.rules(table, rules);
  }

  rules(table: Table, rules: readonly string[]): this {
    const p = this.part(table);
    for (const r of rules) p.rules.push(r);
    return this;
  }

  /** Flushes and deletes a chain. */
  delete(table: Table, chain: string): this {
    const p = this.part(table);
    p.declared.add(chain);
    p.deleted.add(chain);
    return this;
  }

  get isEmpty(): boolean {
    return this.tables.size === 0;
  }

  build(): BuiltInput {
    const lines: string[] = [];
    const rulesByTable: Record<string, number> = {};
    let ruleCount = 0;
    for (const table of TABLE_ORDER) {
      const p = this.tables.get(table);
      if (!p) continue;
      lines.push(`*${table}`);
      for (const c of p.declared) lines.push(`:${c} - [0:0]`);
      for (const r of p.rules) lines.push(r);
      for (const c of p.deleted) lines.push(`-X ${c}`);
      lines.push('COMMIT');
      rulesByTable[table] = p.rules.length;
      ruleCount += p.rules.length;
    }
    lines.push('');
    return { text: lines.join('\n'), ruleCount, rulesByTable };
  }
}

/**
 * About how many characters go into one piece of a large input: a pipe's
 * capacity. Larger pieces measured slower (their lines are still young
 * when the young generation is collected, so they are copied).
 */
export const CHUNK_CHARS = 1 << 16;

/**
 * Lines of text collected into pieces of about CHUNK_CHARS characters each,
 * every line ending in a newline: a large input is handed to the kernel tool
 * piece by piece, never built as one string.
 */
export class LineChunks {
  readonly chunks: string[] = [];
  private pending: string[] = [];
  private size = 0;

  constructor(private readonly chunkChars: number = CHUNK_CHARS) {}

  line(text: string): void {
    this.pending.push(text);
    this.size += text.length + 1;
    if (this.size >= this.chunkChars) this.flush();
  }

  lines(texts: readonly string[]): void {
    for (const t of texts) this.line(t);
  }

  /** Closes the current piece. */
  flush(): void {
    if (this.pending.length === 0) return;
    this.pending.push('');
    this.chunks.push(this.pending.join('\n'));
    this.pending = [];
    this.size = 0;
  }
}
