/** This host's IP addresses, from `ip -j addr` (the thin edge; parsing is pure). */
import { execa } from 'execa';
import { parseIP } from './addr.js';

/** Every address of every interface in `ip -j addr` output; throws when it is not JSON. */
export function addressesFromIpJson(text: string): string[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error('cannot read the local addresses: `ip -j addr` did not print JSON');
  }
  const out: string[] = [];
  for (const link of Array.isArray(data) ? data : []) {
    const infos = (link as { addr_info?: unknown }).addr_info;
    for (const info of Array.isArray(infos) ? infos : []) {
      const ip = parseIP((info as { local?: unknown }).local);
      if (ip && !out.includes(ip.address)) out.push(ip.address);
    }
  }
  return out;
}

export async function localAddresses(): Promise<string[]> {
  const r = await execa('ip', ['-j', 'addr']);
  return addressesFromIpJson(r.stdout);
}
