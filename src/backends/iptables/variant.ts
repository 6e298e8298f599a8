/**
 * Which iptables the host uses. Debian and most distributions ship both
 * iptables-nft and iptables-legacy; rules written with one are invisible to
 * the other, so the agent must use the one the host (kubelet, the CNI, the
 * firewall) uses. As the iptables-wrapper used by upstream's images does: the
 * variant holding more rules wins; on a tie (a fresh host), `iptables` on the
 * PATH (the system's choice) is used.
 */
import { execa } from 'execa';
import type { IptablesCommands } from './tool.js';
import { DEFAULT_COMMANDS, IPV6_COMMANDS } from './tool.js';

export type Variant = 'nft' | 'legacy' | 'default';

async function ruleCount(save: string): Promise<number | undefined> {
  const r = await execa(save, [], { reject: false, maxBuffer: 1024 * 1024 * 1024 });
  if (r.exitCode !== 0 || r.failed) return undefined;
  return r.stdout.split('\n').filter((l) => l.startsWith('-A ') || (l.startsWith(':') && !/^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) /.test(l))).length;
}

export async function detectVariant(): Promise<{ variant: Variant; legacy?: number; nft?: number }> {
  const [legacy, nft] = await Promise.all([ruleCount('iptables-legacy-save'), ruleCount('iptables-nft-save')]);
  if (legacy === undefined || nft === undefined) return { variant: 'default', ...(legacy !== undefined ? { legacy } : {}), ...(nft !== undefined ? { nft } : {}) };
  if (legacy > nft) return { variant: 'legacy', legacy, nft };
  if (nft > legacy) return { variant: 'nft', legacy, nft };
  return { variant: 'default', legacy, nft };
}

export function commandsFor(variant: Variant, family: 'IPv4' | 'IPv6'): IptablesCommands {
  const base = family === 'IPv4' ? DEFAULT_COMMANDS : IPV6_COMMANDS;
  if (variant === 'default') return base;
  return { iptables: `${base.iptables}-${variant}`, save: `${base.iptables}-${variant}-save`, restore: `${base.iptables}-${variant}-restore` };
}
