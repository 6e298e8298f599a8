/**
 * Tokenizer for nft scripts (`nft -f` input) and `nft list` output.
 *
 * Tokens are words (anything between blanks and the punctuation below),
 * double-quoted strings, the punctuation `{ } , ;`, newlines (statement
 * separators in blocks and scripts) and `# handle N` annotations printed by
 * `nft -a list`. Other `#` comments are dropped; a backslash before a newline
 * joins the lines.
 */

export type TokenKind = 'word' | 'string' | 'punct' | 'newline' | 'handle';

export interface Token {
  kind: TokenKind;
  /** The word, the string's content (unquoted), the punctuation, '\n', or the handle number. */
  text: string;
  /** 1-based line of the token's first character. */
  line: number;
  /** Offsets of the token in the source text (for strings: including the quotes). */
  start: number;
  end: number;
}

export class NftTokenizeError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

const PUNCT = new Set(['{', '}', ',', ';']);

function isBlank(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v';
}

/** Splits `text` into tokens; throws NftTokenizeError on an unterminated string. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i] ?? '';
    if (c === '\n') {
      tokens.push({ kind: 'newline', text: '\n', line, start: i, end: i + 1 });
      line++;
      i++;
      continue;
    }
    if (isBlank(c)) {
      i++;
      continue;
    }
    if (c === '\\' && (text[i + 1] === '\n' || (text[i + 1] === '\r' && text[i + 2] === '\n'))) {
      i += text[i + 1] === '\n' ? 2 : 3;
      line++;
      continue;
    }
    if (c === '#') {
      let j = text.indexOf('\n', i);
      if (j < 0) j = n;
      const m = /^#\s*handle\s+(\d+)\s*$/.exec(text.slice(i, j));
      if (m !== null) tokens.push({ kind: 'handle', text: m[1] ?? '', line, start: i, end: j });
      i = j;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let value = '';
      while (j < n && text[j] !== '"') {
        if (text[j] === '\n') throw new NftTokenizeError(line, 'unterminated string');
        if (text[j] === '\\' && j + 1 < n && text[j + 1] !== '\n') {
          value += text[j + 1];
          j += 2;
          continue;
        }
        value += text[j];
        j++;
      }
      if (j >= n) throw new NftTokenizeError(line, 'unterminated string');
      tokens.push({ kind: 'string', text: value, line, start: i, end: j + 1 });
      i = j + 1;
      continue;
    }
    if (PUNCT.has(c)) {
      tokens.push({ kind: 'punct', text: c, line, start: i, end: i + 1 });
      i++;
      continue;
    }
    let j = i;
    while (j < n) {
      const d = text[j] ?? '';
      if (d === '\n' || isBlank(d) || PUNCT.has(d) || d === '"' || d === '#') break;
      j++;
    }
    tokens.push({ kind: 'word', text: text.slice(i, j), line, start: i, end: j });
    i = j;
  }
  return tokens;
}

/** A cursor over a token list, for the recursive-descent parsers. */
export class Cursor {
  pos = 0;
  constructor(readonly tokens: Token[], readonly source: string) {}

  peek(offset = 0): Token | undefined {
    return this.tokens[this.pos + offset];
  }

  /** The text of the next token if it is a word, else undefined. */
  word(offset = 0): string | undefined {
    const t = this.peek(offset);
    return t?.kind === 'word' ? t.text : undefined;
  }

  isPunct(p: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t?.kind === 'punct' && t.text === p;
  }

  next(): Token | undefined {
    const t = this.tokens[this.pos];
    if (t !== undefined) this.pos++;
    return t;
  }

  atEnd(): boolean {
    return this.pos >= this.tokens.length;
  }

  /** Line of the next token (or of the last one at the end). */
  line(): number {
    return (this.peek() ?? this.tokens[this.tokens.length - 1])?.line ?? 1;
  }

  skipNewlines(): void {
    while (this.peek()?.kind === 'newline') this.pos++;
  }
}
