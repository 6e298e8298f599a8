/**
 * What a backend needs to talk to nftables: apply a Transaction (atomically)
 * and list a table's object names. Two implementations: the real `nft`
 * (through an NftRunner) and the in-memory Fake.
 */
import type { FakeNft } from './fake.js';
import type { Family } from './objects.js';
import { execNft, listTable, setHandle } from './run.js';
import type { ExecNftOptions, NftRunner, TableListing } from './run.js';
import type { Transaction } from './transaction.js';

export interface NftApplier {
  /** Applies one transaction; rejects (changing nothing) when nft refuses it. */
  apply(tx: Transaction): Promise<void>;
  /** The chains, sets and maps of a table (names and types; no rules, no elements). */
  list(family: Family, table: string): Promise<TableListing>;
  /** A set's kernel handle (undefined when the set or its table is not there). Cheap: reads that set's definition only. */
  setHandle(family: Family, table: string, set: string): Promise<number | undefined>;
}

export function realApplier(runner: NftRunner = execNft()): NftApplier {
  return {
    async apply(tx) {
      if (!tx.isEmpty) await runner.run(tx.chunks());
    },
    list: (family, table) => listTable(runner, family, table),
    setHandle: (family, table, set) => setHandle(runner, family, table, set),
  };
}

/** The real nft, optionally inside another network namespace (`{ prefix: ['ip', 'netns', 'exec', ns] }`). */
export function execApplier(opts: ExecNftOptions = {}): NftApplier {
  return realApplier(execNft(opts));
}

export function fakeApplier(fake: FakeNft): NftApplier {
  return {
    async apply(tx) {
      if (!tx.isEmpty) fake.run(tx);
    },
    async list(family, table) {
      return fake.listing(family, table);
    },
    async setHandle(family, table, set) {
      return fake.table(family, table)?.sets.get(set)?.seq;
    },
  };
}
