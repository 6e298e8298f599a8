/**
 * nftables packet tracer: parse `nft -f` input or `nft list` output, then
 * trace a packet through it with the iptables tracer's contract.
 */
export { parseNftRuleset, NftParseError } from './parse.js';
export { traceNftPacket, MAX_JUMP_DEPTH } from './trace.js';
export { formatNftTrace } from './format.js';
export type {
  BaseChainSpec, Family, Hook, NftChain, NftElement, NftRule, NftRuleset, NftSet, NftTable, Stmt, Expr,
} from './ruleset.js';
export type { TraceOptions, TracePacket, TracePath, TraceResult, TraceStep, Verdict } from './trace.js';
