/**
 * Shell-like tokeniser for one line of iptables-restore / iptables-save text.
 *
 * Words are separated by blanks. Double quotes group words (`--comment "a b"`)
 * and accept `\"` and `\\` escapes inside; single quotes group words literally;
 * outside quotes a backslash escapes the next character. Each token remembers
 * whether any part of it was quoted, so a quoted `"!"` or `"-x"` is a value,
 * never an operator.
 */

export interface Token {
  text: string;
  quoted: boolean;
}

export function tokenizeLine(line: string): Token[] {
  const tokens: Token[] = [];
  let current = '';
  let inToken = false;
  let quoted = false;
  let i = 0;

  const flush = (): void => {
    if (inToken) tokens.push({ text: current, quoted });
    current = '';
    inToken = false;
    quoted = false;
  };

  while (i < line.length) {
    const ch = line.charAt(i);
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') {
      flush();
      i++;
    } else if (ch === '"') {
      inToken = true;
      quoted = true;
      i++;
      let closed = false;
      while (i < line.length) {
        const c = line.charAt(i);
        if (c === '\\' && i + 1 < line.length && (line.charAt(i + 1) === '"' || line.charAt(i + 1) === '\\')) {
          current += line.charAt(i + 1);
          i += 2;
        } else if (c === '"') {
          closed = true;
          i++;
          break;
        } else {
          current += c;
          i++;
        }
      }
      if (!closed) throw new Error('unterminated double quote');
    } else if (ch === "'") {
      inToken = true;
      quoted = true;
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote');
      current += line.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '\\' && i + 1 < line.length) {
      inToken = true;
      quoted = true;
      current += line.charAt(i + 1);
      i += 2;
    } else {
      inToken = true;
      current += ch;
      i++;
    }
  }
  flush();
  return tokens;
}
