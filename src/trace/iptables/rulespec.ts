/**
 * Parses and validates the rule specification part of an `-A`/`-I`/`-D`/`-R`
 * line: the matches (`-s`, `-p`, `-m mod --opt …`, with `!` negation) and the
 * target (`-j X …` / `-g X`). Errors are plain Errors with a short reason; the
 * caller adds the line number.
 */
import type { Token } from './tokenize.js';
import {
  MODULE_OPTIONS,
  OPTION_ALIASES,
  PROTOCOL_NUMBERS,
  TARGET_OPTION_ARITY,
  VARIADIC,
  type MatchOption,
  type RuleMatch,
  type RuleTarget,
} from './ruleset.js';
import {
  formatCidr,
  parseCidr,
  parseCidrList,
  parseMarkSpec,
  parseNatDestination,
  parsePortList,
  parsePortRange,
  parseProbability,
  parseUint32,
} from './values.js';

export interface RuleSpec {
  matches: RuleMatch[];
  target: RuleTarget | null;
  comment?: string;
}

const SELECTORS: Readonly<Record<string, string>> = {
  '-s': 'source', '--source': 'source', '--src': 'source',
  '-d': 'destination', '--destination': 'destination', '--dst': 'destination',
  '-p': 'protocol', '--protocol': 'protocol',
  '-i': 'in-interface', '--in-interface': 'in-interface',
  '-o': 'out-interface', '--out-interface': 'out-interface',
  '-f': 'fragment', '--fragment': 'fragment',
};

const PROTOCOL_BY_NUMBER: Readonly<Record<string, string>> = { '6': 'tcp', '17': 'udp', '132': 'sctp' };

/** Options that load the protocol match implicitly after `-p tcp|udp|sctp`. */
const IMPLICIT_PROTO_OPTIONS = new Set(['dport', 'sport', 'syn', 'tcp-flags', 'tcp-option', 'chunk-types']);

class TokenReader {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}
  done(): boolean {
    return this.pos >= this.tokens.length;
  }
  next(): Token {
    const t = this.tokens[this.pos];
    if (t === undefined) throw new Error('unexpected end of line');
    this.pos++;
    return t;
  }
  peek(): Token | undefined {
    return this.tokens[this.pos];
  }
  value(option: string): Token {
    const t = this.tokens[this.pos];
    if (t === undefined) throw new Error(`option ${option} requires a value`);
    this.pos++;
    return t;
  }
}

function isOperator(t: Token): boolean {
  return !t.quoted && (t.text === '!' || t.text.startsWith('-'));
}

/** Reads `arity` values for `option`; a leading `!` value is the old `--opt ! value` negation syntax. */
function readArgs(reader: TokenReader, option: string, arity: number): { args: string[]; negated: boolean } {
  const args: string[] = [];
  let negated = false;
  if (arity === VARIADIC) {
    for (let t = reader.peek(); t !== undefined && !isOperator(t); t = reader.peek()) args.push(reader.next().text);
    return { args, negated };
  }
  for (let k = 0; k < arity; k++) {
    let v = reader.value(option);
    if (k === 0 && !v.quoted && v.text === '!') {
      negated = true;
      v = reader.value(option);
    }
    args.push(v.text);
  }
  return { args, negated };
}

function findOwner(matches: RuleMatch[], option: string, protocol: MatchOption | undefined): RuleMatch | undefined {
  for (let k = matches.length - 1; k >= 0; k--) {
    const m = matches[k];
    if (m !== undefined && MODULE_OPTIONS[m.module]?.[option] !== undefined) return m;
  }
  const given = protocol?.args[0]?.toLowerCase();
  const proto = given === undefined ? undefined : PROTOCOL_BY_NUMBER[given] ?? given;
  if (IMPLICIT_PROTO_OPTIONS.has(option) && protocol !== undefined && !protocol.negated && proto !== undefined
    && MODULE_OPTIONS[proto]?.[option] !== undefined) {
    const implicit: RuleMatch = { module: proto, implicit: true, options: [] };
    matches.push(implicit);
    return implicit;
  }
  for (let k = matches.length - 1; k >= 0; k--) {
    const m = matches[k];
    if (m !== undefined && MODULE_OPTIONS[m.module] === undefined) return m;
  }
  return undefined;
}

export function parseRuleSpec(tokens: Token[]): RuleSpec {
  const reader = new TokenReader(tokens);
  const builtin: RuleMatch = { module: 'builtin', implicit: false, options: [] };
  const matches: RuleMatch[] = [];
  let target: RuleTarget | null = null;
  let negate = false;

  while (!reader.done()) {
    const tok = reader.next();
    if (!tok.quoted && tok.text === '!') {
      if (negate) throw new Error('"!" given twice');
      negate = true;
      continue;
    }
    if (tok.quoted || !tok.text.startsWith('-')) throw new Error(`unexpected "${tok.text}"`);
    const flag = tok.text;
    const selector = SELECTORS[flag];
    if (selector !== undefined) {
      if (builtin.options.some((o) => o.name === selector)) throw new Error(`${flag} given more than once`);
      const { args, negated } = readArgs(reader, flag, selector === 'fragment' ? 0 : 1);
      builtin.options.push({ name: selector, args, negated: negate || negated });
      negate = false;
      continue;
    }
    if (flag === '-m' || flag === '--match') {
      if (negate) throw new Error('"!" cannot precede -m');
      matches.push({ module: reader.value(flag).text, implicit: false, options: [] });
      continue;
    }
    if (flag === '-j' || flag === '--jump' || flag === '-g' || flag === '--goto') {
      if (negate) throw new Error(`"!" cannot precede ${flag}`);
      if (target !== null) throw new Error('more than one target (-j/-g) given');
      const kind = flag === '-g' || flag === '--goto' ? 'goto' : 'jump';
      target = { kind, name: reader.value(flag).text, args: [], options: [] };
      continue;
    }
    if (flag === '-c' || flag === '--set-counters') {
      reader.value(flag);
      reader.value(flag);
      continue;
    }
    if (!flag.startsWith('--') || flag.length === 2) throw new Error(`unknown option "${flag}"`);
    const name = flag.slice(2);
    if (target !== null) {
      if (negate) throw new Error(`"!" cannot precede target option ${flag}`);
      const { args } = readArgs(reader, flag, TARGET_OPTION_ARITY[name] ?? VARIADIC);
      target.options.push({ name, args });
      target.args.push(flag, ...args);
      continue;
    }
    const canonical = OPTION_ALIASES[name] ?? name;
    const protocol = builtin.options.find((o) => o.name === 'protocol');
    const owner = findOwner(matches, canonical, protocol);
    if (owner === undefined) {
      const loaded = matches.map((m) => m.module).join(', ');
      throw new Error(`unknown option "${flag}"${loaded === '' ? ' (no match module loaded with -m)' : ` (not an option of ${loaded})`}`);
    }
    const { args, negated } = readArgs(reader, flag, MODULE_OPTIONS[owner.module]?.[canonical] ?? VARIADIC);
    owner.options.push({ name: canonical, args, negated: negate || negated });
    negate = false;
  }
  if (negate) throw new Error('"!" at end of rule');

  const all = builtin.options.length > 0 ? [builtin, ...matches] : matches;
  const spec: RuleSpec = { matches: all, target };
  const comment = matches.find((m) => m.module === 'comment')?.options.find((o) => o.name === 'comment')?.args[0];
  if (comment !== undefined) spec.comment = comment;
  validateRuleSpec(spec);
  return spec;
}

const CT_STATES = new Set(['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED', 'SNAT', 'DNAT']);
const ADDR_TYPES = new Set([
  'UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST',
  'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE',
]);
const MARK_OPTIONS = ['set-xmark', 'set-mark', 'or-mark', 'and-mark', 'xor-mark'];

function checkList(value: string, allowed: ReadonlySet<string>, what: string): void {
  for (const v of value.split(',')) {
    if (!allowed.has(v)) throw new Error(`unknown ${what} "${v}"`);
  }
}

function validateOption(module: string, o: MatchOption): void {
  const v = o.args[0] ?? '';
  switch (`${module}:${o.name}`) {
    case 'builtin:source':
    case 'builtin:destination':
      parseCidrList(v);
      if (o.negated && v.includes(',')) throw new Error('"!" cannot be used with several addresses');
      break;
    case 'builtin:protocol':
      if (PROTOCOL_NUMBERS[v.toLowerCase()] === undefined && !(/^\d+$/.test(v) && Number(v) <= 255)) {
        throw new Error(`unknown protocol "${v}"`);
      }
      break;
    case 'tcp:dport': case 'tcp:sport': case 'udp:dport': case 'udp:sport': case 'sctp:dport': case 'sctp:sport':
      parsePortRange(v);
      break;
    case 'multiport:dports': case 'multiport:sports': case 'multiport:ports':
      parsePortList(v);
      break;
    case 'mark:mark':
      parseMarkSpec(v);
      break;
    case 'conntrack:ctstate': case 'state:state':
      checkList(v, CT_STATES, 'conntrack state');
      break;
    case 'conntrack:ctorigsrc': case 'conntrack:ctorigdst': case 'conntrack:ctreplsrc': case 'conntrack:ctrepldst':
      parseCidr(v);
      break;
    case 'conntrack:ctorigsrcport': case 'conntrack:ctorigdstport':
    case 'conntrack:ctreplsrcport': case 'conntrack:ctrepldstport':
      parsePortRange(v);
      break;
    case 'addrtype:dst-type': case 'addrtype:src-type':
      checkList(v, ADDR_TYPES, 'address type');
      break;
    case 'statistic:mode':
      if (v !== 'random' && v !== 'nth') throw new Error(`unknown statistic mode "${v}"`);
      break;
    case 'statistic:probability':
      parseProbability(v);
      break;
    case 'statistic:every': case 'statistic:packet':
      parseUint32(v);
      break;
    default:
      break;
  }
}

function validateTarget(target: RuleTarget): void {
  const opt = (name: string): string | undefined => target.options.find((o) => o.name === name)?.args[0];
  switch (target.name) {
    case 'DNAT': {
      const to = opt('to-destination');
      if (to === undefined) throw new Error('DNAT requires --to-destination');
      parseNatDestination(to);
      break;
    }
    case 'SNAT': {
      const to = opt('to-source');
      if (to === undefined) throw new Error('SNAT requires --to-source');
      parseNatDestination(to);
      break;
    }
    case 'MARK': {
      const given = target.options.filter((o) => MARK_OPTIONS.includes(o.name));
      const first = given[0];
      if (given.length !== 1 || first === undefined) {
        throw new Error(`MARK requires exactly one of ${MARK_OPTIONS.map((m) => `--${m}`).join(', ')}`);
      }
      const v = first.args[0] ?? '';
      if (first.name === 'set-xmark' || first.name === 'set-mark') parseMarkSpec(v);
      else parseUint32(v);
      break;
    }
    default:
      break;
  }
}

function validateRuleSpec(spec: RuleSpec): void {
  for (const m of spec.matches) {
    if (m.module === 'statistic') {
      const mode = m.options.find((o) => o.name === 'mode')?.args[0];
      if (mode === undefined) throw new Error('statistic match requires --mode');
      if (mode === 'random' && !m.options.some((o) => o.name === 'probability')) {
        throw new Error('statistic --mode random requires --probability');
      }
    }
    for (const o of m.options) validateOption(m.module, o);
  }
  if (spec.target !== null) validateTarget(spec.target);
}

/** A canonical text for a rule spec, equal for equivalent specs (used by `-D` with a rule spec). */
export function ruleSpecKey(spec: RuleSpec): string {
  const groups = spec.matches.map((m) => {
    const options = m.options.map((o) => {
      const args = (o.name === 'source' || o.name === 'destination') && m.module === 'builtin'
        ? o.args.map((a) => parseCidrList(a).map(formatCidr).join(','))
        : o.args;
      return `${o.negated ? '!' : ''}${o.name}=${args.join(' ')}`;
    });
    return `${m.module}(${options.sort().join(';')})`;
  });
  const target = spec.target === null ? '' : `${spec.target.kind} ${spec.target.name} ${spec.target.args.join(' ')}`;
  return `${groups.sort().join(' ')} -> ${target}`;
}
