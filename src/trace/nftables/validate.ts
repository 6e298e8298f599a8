/**
 * Checks run once the whole ruleset is parsed, as nft would refuse to load
 * it otherwise: every jump/goto target, every `@set` and every verdict in a
 * map names an object of the rule's table; sets must match the lookups that
 * use them. Also marks the sets filled from the packet path as dynamic.
 */
import { NftSyntaxError } from './elements.js';
import { typesOf } from './expressions.js';
import type { NftElement, NftRule, NftRuleset, NftSet, NftTable, Stmt, VerdictSpec } from './ruleset.js';

function checkVerdict(table: NftTable, v: VerdictSpec | undefined, line: number, where: string): void {
  if (v?.chain === undefined) return;
  if (!table.chains.has(v.chain)) {
    throw new NftSyntaxError(line, `${where}: chain ${v.chain} does not exist in table ${table.family} ${table.name}`);
  }
}

function lookupSet(table: NftTable, name: string, rule: NftRule, map: boolean | null): NftSet {
  const set = table.sets.get(name);
  if (set === undefined) throw new NftSyntaxError(rule.line, `set @${name} does not exist in table ${table.family} ${table.name}`);
  if (map === true && !set.isMap) throw new NftSyntaxError(rule.line, `@${name} is a set, vmap needs a map`);
  if (map === true && set.dataType !== 'verdict') throw new NftSyntaxError(rule.line, `map @${name} does not hold verdicts`);
  if (map === false && set.isMap) throw new NftSyntaxError(rule.line, `@${name} is a map; a lookup needs a set`);
  return set;
}

function checkArity(set: NftSet, keyLength: number, rule: NftRule): void {
  if (set.keyTypes.length !== keyLength && !(set.keyTypes.length === 1 && set.keyTypes[0] === 'unknown')) {
    throw new NftSyntaxError(rule.line, `@${set.name} has ${set.keyTypes.length} key component(s), the expression has ${keyLength}`);
  }
}

const NAT_DATA = new Set(['ipv4_addr', 'ipv6_addr', 'unknown']);

/** `dnat to KEY map @m`: a map whose data is `address [. port]`, keyed like KEY. */
function checkNatMap(table: NftTable, s: Extract<Stmt, { k: 'nat-map' }>, rule: NftRule): void {
  if (s.map.k === 'inline') return;
  const set = lookupSet(table, s.map.name, rule, null);
  if (!set.isMap || set.dataType === 'verdict') throw new NftSyntaxError(rule.line, `@${set.name} is not a data map; ${s.nat} needs one`);
  checkArity(set, typesOf(s.key).length, rule);
  const data = set.dataTypes ?? [];
  if (!NAT_DATA.has(data[0] ?? 'unknown') || data.length > 2) {
    throw new NftSyntaxError(rule.line, `map @${set.name} does not hold "address [. port]" ${s.nat} targets`);
  }
}

function checkElements(table: NftTable, elements: NftElement[], line: number, where: string): void {
  for (const e of elements) checkVerdict(table, e.verdict, line, where);
}

function checkStmt(table: NftTable, rule: NftRule, s: Stmt): void {
  switch (s.k) {
    case 'verdict':
      checkVerdict(table, s.verdict, rule.line, `rule in chain ${rule.chain}`);
      return;
    case 'vmap':
      if (s.map.k === 'inline') checkElements(table, s.map.elements, rule.line, `rule in chain ${rule.chain}`);
      else checkArity(lookupSet(table, s.map.name, rule, true), typesOf(s.lhs).length, rule);
      return;
    case 'match':
      if (s.rhs.k === 'set') checkArity(lookupSet(table, s.rhs.name, rule, false), typesOf(s.lhs).length, rule);
      return;
    case 'nat-map':
      checkNatMap(table, s, rule);
      return;
    case 'set-update': {
      const set = lookupSet(table, s.set, rule, null);
      checkArity(set, typesOf(s.key).length, rule);
      set.dynamic = true;
      return;
    }
    default:
      return;
  }
}

export function validateRuleset(rs: NftRuleset): void {
  for (const table of rs.tables.values()) {
    for (const set of table.sets.values()) {
      if (set.flags.includes('dynamic')) set.dynamic = true;
      if (set.dataType === 'verdict') checkElements(table, set.elements, set.line, `map ${set.name}`);
    }
    for (const chain of table.chains.values()) {
      for (const rule of chain.rules) for (const s of rule.stmts) checkStmt(table, rule, s);
    }
  }
}
