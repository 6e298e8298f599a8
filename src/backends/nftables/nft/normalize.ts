/**
 * A canonical form of `nft -j list table FAMILY NAME`, for comparing two
 * kernels' tables (or a kernel's and the Fake's, loaded into a namespace):
 * no handles, no element expiry times, objects by kind and name, rules in
 * chain order, set elements sorted. Pure.
 */
import type { NftJSON } from './run.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function strip(v: Json): Json {
  if (Array.isArray(v)) return v.map(strip);
  if (v !== null && typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const k of Object.keys(v).sort()) {
      if (k === 'handle' || k === 'expires') continue;
      out[k] = strip(v[k]!);
    }
    // {"elem": {"val": X}} (an element without timeout/comment left) is just X.
    if (Object.keys(out).length === 1 && out['elem'] && typeof out['elem'] === 'object' && !Array.isArray(out['elem'])) {
      const e = out['elem'] as { [k: string]: Json };
      if (Object.keys(e).length === 1 && 'val' in e) return e['val']!;
    }
    return out;
  }
  return v;
}

const key = (v: Json): string => JSON.stringify(v);

export interface NormalTable {
  table?: Json;
  chains: Record<string, Json>;
  sets: Record<string, Json>;
  maps: Record<string, Json>;
  rules: Record<string, Json[]>;
}

export function normalizeTable(json: NftJSON): NormalTable {
  const out: NormalTable = { chains: {}, sets: {}, maps: {}, rules: {} };
  for (const o of json.nftables) {
    const [kind] = Object.keys(o);
    const body = strip(o[kind!] as Json) as { [k: string]: Json };
    switch (kind) {
      case 'table':
        out.table = body;
        break;
      case 'chain':
        out.chains[String(body['name'])] = body;
        break;
      case 'set':
      case 'map': {
        const elems = body['elem'];
        if (Array.isArray(elems)) body['elem'] = [...elems].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
        (kind === 'set' ? out.sets : out.maps)[String(body['name'])] = body;
        break;
      }
      case 'rule': {
        const c = String(body['chain']);
        (out.rules[c] ??= []).push(body);
        break;
      }
      default:
        break;
    }
  }
  const sortObj = (r: Record<string, Json>): Record<string, Json> => Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1)));
  return {
    ...(out.table !== undefined ? { table: out.table } : {}),
    chains: sortObj(out.chains),
    sets: sortObj(out.sets),
    maps: sortObj(out.maps),
    rules: sortObj(out.rules) as Record<string, Json[]>,
  };
}

/** Lines of a readable diff between two normal tables ('' when equal). */
export function diffTables(a: NormalTable, b: NormalTable, names: [string, string] = ['a', 'b']): string {
  const out: string[] = [];
  const kinds = ['chains', 'sets', 'maps', 'rules'] as const;
  if (key(a.table ?? null) !== key(b.table ?? null)) out.push(`table: ${key(a.table ?? null)} vs ${key(b.table ?? null)}`);
  for (const k of kinds) {
    const ra = a[k] as Record<string, Json>;
    const rb = b[k] as Record<string, Json>;
    for (const n of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
      if (key(ra[n] ?? null) === key(rb[n] ?? null)) continue;
      out.push(`${k} ${n}:\n  ${names[0]}: ${key(ra[n] ?? null)}\n  ${names[1]}: ${key(rb[n] ?? null)}`);
    }
  }
  return out.join('\n');
}
