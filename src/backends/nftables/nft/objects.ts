/**
 * The nftables objects this project writes, typed, in the spirit of
 * sigs.k8s.io/knftables: a table, chains (regular or base), rules (rule text
 * plus an optional comment), sets, maps and their elements. Every object
 * lives in the one table a Transaction is bound to, so objects carry no
 * family or table of their own. Pure data plus their `nft` text forms.
 */

export type Family = 'ip' | 'ip6' | 'inet';

export type ChainType = 'filter' | 'nat' | 'route';
export type ChainHook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
export type SetFlag = 'constant' | 'dynamic' | 'interval' | 'timeout';

export interface TableObj {
  kind: 'table';
  comment?: string;
}

export interface ChainObj {
  kind: 'chain';
  name: string;
  /** type, hook and priority: all three for a base chain, none for a regular chain. */
  type?: ChainType;
  hook?: ChainHook;
  /** A number (-100) or a named priority (`dstnat`). */
  priority?: number | string;
  policy?: 'accept' | 'drop';
  comment?: string;
}

export interface RuleObj {
  kind: 'rule';
  chain: string;
  /** The rule in nft syntax, without its comment. */
  rule: string;
  comment?: string;
  /** add: after this rule; insert: before it; replace/delete: this rule. */
  handle?: number;
  /** add: after the rule at this index (from 0); insert: before it. */
  index?: number;
}

interface SetLike {
  name: string;
  /** `ipv4_addr . inet_proto . inet_service` (a map adds ` : verdict`). Either type or typeOf. */
  type?: string;
  typeOf?: string;
  flags?: SetFlag[];
  /** Default element timeout, seconds. */
  timeout?: number;
  size?: number;
  comment?: string;
}

export interface SetObj extends SetLike {
  kind: 'set';
}

export interface MapObj extends SetLike {
  kind: 'map';
}

export interface ElementObj {
  kind: 'element';
  /** The set or map holding it. */
  container: string;
  /** Whether the container is a map (then value is required) or a set. */
  isMap: boolean;
  /** Key parts (joined with ` . `; a part may itself be several parts already joined). */
  key: string[];
  /** Value parts, maps only (for a verdict map: `goto some-chain`, `drop`). */
  value?: string[];
  comment?: string;
  /** Element timeout, seconds. */
  timeout?: number;
}

/**
 * Many elements added at once, made only when the transaction is written or
 * applied (a full sync's 270,000 elements at 10,000 services are never all
 * objects at the same time). Only `add` takes it.
 */
export interface ElementBatchObj {
  kind: 'elements';
  count: number;
  items: () => Iterable<ElementObj>;
}

export type NftObject = TableObj | ChainObj | RuleObj | SetObj | MapObj | ElementObj | ElementBatchObj;

export type Verb = 'add' | 'create' | 'insert' | 'replace' | 'delete' | 'flush' | 'destroy';

/** The verbs each kind of object accepts (as nft does). */
export const VERBS: Record<NftObject['kind'], readonly Verb[]> = {
  table: ['add', 'create', 'delete', 'flush', 'destroy'],
  chain: ['add', 'create', 'delete', 'flush', 'destroy'],
  rule: ['add', 'insert', 'replace', 'delete', 'destroy'],
  set: ['add', 'create', 'delete', 'flush', 'destroy'],
  map: ['add', 'create', 'delete', 'flush', 'destroy'],
  element: ['add', 'create', 'delete', 'destroy'],
  elements: ['add'],
};

// ---- constructors ---------------------------------------------------------

export const table = (comment?: string): TableObj => (comment === undefined ? { kind: 'table' } : { kind: 'table', comment });

export function chain(name: string, opts: Omit<ChainObj, 'kind' | 'name'> = {}): ChainObj {
  return { kind: 'chain', name, ...opts };
}

export function rule(chainName: string, text: string, comment?: string): RuleObj {
  return comment === undefined ? { kind: 'rule', chain: chainName, rule: text } : { kind: 'rule', chain: chainName, rule: text, comment };
}

export function set(name: string, opts: Omit<SetObj, 'kind' | 'name'>): SetObj {
  return { kind: 'set', name, ...opts };
}

export function map(name: string, opts: Omit<MapObj, 'kind' | 'name'>): MapObj {
  return { kind: 'map', name, ...opts };
}

export function setElement(container: string, key: string[], opts: { comment?: string; timeout?: number } = {}): ElementObj {
  return { kind: 'element', container, isMap: false, key, ...opts };
}

export function mapElement(container: string, key: string[], value: string[], opts: { comment?: string; timeout?: number } = {}): ElementObj {
  return { kind: 'element', container, isMap: true, key, value, ...opts };
}

// ---- text -----------------------------------------------------------------

/** Longest comment nft accepts. */
export const COMMENT_MAX = 128;

/** A double-quoted nft string; comments come from validated names, quotes are dropped and the text is cut at 128 bytes. */
export function quote(text: string): string {
  let safe = text.replace(/["\\\n\r]/g, '');
  while (Buffer.byteLength(safe) > COMMENT_MAX) safe = safe.slice(0, -1);
  return `"${safe}"`;
}

export const joinParts = (parts: readonly string[]): string => parts.join(' . ');

function options(parts: (string | undefined)[]): string {
  const xs = parts.filter((p): p is string => p !== undefined && p !== '');
  return xs.length === 0 ? '' : ` { ${xs.map((x) => `${x} ;`).join(' ')} }`;
}

function setOptions(s: SetLike): string {
  return options([
    s.type !== undefined ? `type ${s.type}` : s.typeOf !== undefined ? `typeof ${s.typeOf}` : undefined,
    s.flags && s.flags.length > 0 ? `flags ${s.flags.join(',')}` : undefined,
    s.timeout !== undefined ? `timeout ${s.timeout}s` : undefined,
    s.size !== undefined ? `size ${s.size}` : undefined,
    s.comment !== undefined ? `comment ${quote(s.comment)}` : undefined,
  ]);
}

export function elementText(e: ElementObj, withValue: boolean): string {
  let t = joinParts(e.key);
  if (withValue && e.timeout !== undefined) t += ` timeout ${e.timeout}s`;
  if (withValue && e.comment !== undefined) t += ` comment ${quote(e.comment)}`;
  if (withValue && e.isMap && e.value) t += ` : ${joinParts(e.value)}`;
  return t;
}

/** One line of `nft -f` input for a verb on an object of table `family name`. */
export function operationText(verb: Verb, obj: NftObject, family: Family, tableName: string): string {
  const where = `${family} ${tableName}`;
  switch (obj.kind) {
    case 'table':
      return `${verb} table ${where}${verb === 'add' || verb === 'create' ? options([obj.comment !== undefined ? `comment ${quote(obj.comment)}` : undefined]) : ''}`;
    case 'chain': {
      if (verb !== 'add' && verb !== 'create') return `${verb} chain ${where} ${obj.name}`;
      const base = obj.type !== undefined ? `type ${obj.type} hook ${obj.hook} priority ${obj.priority}` : undefined;
      return `${verb} chain ${where} ${obj.name}${options([base, obj.policy !== undefined ? `policy ${obj.policy}` : undefined, obj.comment !== undefined ? `comment ${quote(obj.comment)}` : undefined])}`;
    }
    case 'rule': {
      let pos = '';
      if (obj.handle !== undefined) pos = verb === 'add' || verb === 'insert' ? ` position ${obj.handle}` : ` handle ${obj.handle}`;
      else if (obj.index !== undefined) pos = ` index ${obj.index}`;
      if (verb === 'delete' || verb === 'destroy') return `${verb} rule ${where} ${obj.chain}${pos}`;
      const c = obj.comment !== undefined ? ` comment ${quote(obj.comment)}` : '';
      return `${verb} rule ${where} ${obj.chain}${pos} ${obj.rule}${c}`;
    }
    case 'set':
    case 'map':
      return `${verb} ${obj.kind} ${where} ${obj.name}${verb === 'add' || verb === 'create' ? setOptions(obj) : ''}`;
    case 'element': {
      const full = verb === 'add' || verb === 'create';
      return `${verb} element ${where} ${obj.container} { ${elementText(obj, full)} }`;
    }
    case 'elements': {
      const lines: string[] = [];
      for (const e of obj.items()) lines.push(operationText(verb, e, family, tableName));
      return lines.join('\n');
    }
  }
}

/** A short identity for messages: `chain services`, `element service-ips { 10.96.0.1 . tcp . 80 }`. */
export function describe(obj: NftObject): string {
  switch (obj.kind) {
    case 'table':
      return 'table';
    case 'rule':
      return `rule in chain ${obj.chain}${obj.handle !== undefined ? ` (handle ${obj.handle})` : ''}`;
    case 'element':
      return `element ${obj.container} { ${joinParts(obj.key)} }`;
    case 'elements':
      return `${obj.count} elements`;
    default:
      return `${obj.kind} ${obj.name}`;
  }
}
