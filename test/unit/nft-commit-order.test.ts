/**
 * Transaction text order (commitOrder): the rules of chains that use an
 * anonymous set move up to just after what they depend on, and nothing else
 * moves (see transaction.ts for why: the kernel's per-binding walk of the
 * pending transaction).
 */
import t from 'tap';
import { chain, map, mapElement, rule, table } from '../../src/backends/nftables/nft/objects.js';
import { commitOrder, Transaction } from '../../src/backends/nftables/nft/transaction.js';
import { FakeNft } from '../../src/backends/nftables/nft/fake.js';

const tx = (): Transaction => new Transaction('ip', 't');
const lines = (x: Transaction): string[] => x.toText().trimEnd().split('\n').map((l) => l.replace(/^(\w+ \w+) ip t /, '$1 '));

t.test('without anonymous sets the order is the operations’ own', async (t) => {
  const x = tx().add(table()).add(chain('a')).add(chain('b')).add(rule('b', 'jump a')).add(rule('a', 'accept'));
  t.same(commitOrder(x.operations), [0, 1, 2, 3, 4]);
});

t.test('a chain with an anonymous vmap: its flush and rules follow its add and its targets’ adds', async (t) => {
  const x = tx()
    .add(table())
    .add(chain('ep1'))
    .add(chain('ep2'))
    .add(chain('svc'))
    .add(chain('other'))
    .flush(chain('ep1'))
    .flush(chain('svc'))
    .add(rule('ep1', 'dnat to 10.0.0.1'))
    .add(rule('svc', 'ip daddr 10.96.0.1 jump other'))
    .add(rule('svc', 'numgen random mod 2 vmap { 0 : goto ep1 , 1 : goto ep2 }'))
    .add(map('m', { type: 'ipv4_addr : verdict' }))
    .add(mapElement('m', ['10.96.0.1'], ['goto svc']))
    .delete(chain('stale'));
  t.same(lines(x), [
    'add table ip t',
    'add chain ep1',
    'add chain ep2',
    'add chain svc',
    // moved up: the flush right after its chain's add, the rules after the last chain they name (other), in their order
    'flush chain svc',
    'add chain other',
    'add rule svc ip daddr 10.96.0.1 jump other',
    'add rule svc numgen random mod 2 vmap { 0 : goto ep1 , 1 : goto ep2 }',
    'flush chain ep1',
    'add rule ep1 dnat to 10.0.0.1',
    'add map m { type ipv4_addr : verdict ; }',
    'add element m { 10.96.0.1 : goto svc }',
    'delete chain stale',
  ]);
});

t.test('nothing moves above an operation it depends on', async (t) => {
  // A partial sync: the service chain exists; its flush stays where it is and its rules follow it.
  const partial = tx()
    .add(chain('ep3'))
    .flush(chain('svc'))
    .flush(chain('ep1'))
    .add(rule('ep3', 'dnat to 10.0.0.3'))
    .add(rule('svc', 'numgen random mod 2 vmap { 0 : goto ep2 , 1 : goto ep3 }'))
    .delete(chain('ep1'));
  t.same(lines(partial), [
    'add chain ep3',
    'flush chain svc',
    'add rule svc numgen random mod 2 vmap { 0 : goto ep2 , 1 : goto ep3 }',
    'flush chain ep1',
    'add rule ep3 dnat to 10.0.0.3',
    'delete chain ep1',
  ]);
  // A chain deleted and re-created: rules follow the re-creation; a named set they use: its (re)creation.
  const x = tx()
    .add(table())
    .add(chain('c'))
    .add(chain('d'))
    .delete(chain('d'))
    .add(chain('d'))
    .add(map('s', { type: 'ipv4_addr : verdict' }))
    .add(rule('c', 'ip saddr { 10.0.0.1, 10.0.0.2 } ip daddr vmap @s'))
    .add(rule('c', 'jump d'));
  t.same(lines(x).slice(-2), ['add rule c ip saddr { 10.0.0.1, 10.0.0.2 } ip daddr vmap @s', 'add rule c jump d'], 'rules after the map and the re-created chain');
  // Rules placed by handle or index never move, nor do the rules after them in their chain.
  const y = tx().add(table()).add(chain('c')).add(chain('z')).add({ ...rule('c', 'accept'), index: 0 }).add(rule('c', 'ip saddr { 1.1.1.1 } drop'));
  t.same(commitOrder(y.operations), [0, 1, 2, 3, 4]);
});

t.test('chunks: the same input as toText, in pieces, with the same byte count', async (t) => {
  const x = tx().add(table()).add(chain('svc')).add(chain('ep'));
  for (let i = 0; i < 500; i++) x.add(rule('ep', `ip saddr 10.0.${i >> 8}.${i & 255} drop comment "ünïcode ${i}"`));
  x.add(rule('svc', 'numgen random mod 1 vmap { 0 : goto ep }'));
  const pieces = [...x.chunks(1024)];
  t.ok(pieces.length > 10, `${pieces.length} pieces`);
  t.ok(pieces.slice(0, -1).every((p) => p.length >= 1024 && p.endsWith('\n')), 'whole lines, about the size asked');
  t.equal(x.byteLength(), Buffer.byteLength(x.toText()), 'bytes counted as they were made');
  t.equal(pieces.join(''), x.toText(), 'the same text, in commit order');
  t.same([...tx().chunks()], [], 'an empty transaction has no piece');
});

t.test('a batch of elements is written, counted and applied as its elements, made when taken', async (t) => {
  let made = 0;
  const items = function* () {
    for (let i = 0; i < 3; i++) {
      made++;
      yield mapElement('m', [`10.0.0.${i}`], ['drop']);
    }
  };
  const x = tx().add(table()).add(map('m', { type: 'ipv4_addr : verdict' })).add({ kind: 'elements', count: 3, items }).add(chain('after'));
  t.equal(made, 0, 'nothing made while planning');
  t.same(lines(x), ['add table ip t', 'add map m { type ipv4_addr : verdict ; }', 'add element m { 10.0.0.0 : drop }', 'add element m { 10.0.0.1 : drop }', 'add element m { 10.0.0.2 : drop }', 'add chain after']);
  t.same(x.counts(), { 'add table': 1, 'add map': 1, 'add element': 3, 'add chain': 1 });
  const fake = new FakeNft();
  fake.run(x);
  t.equal(fake.lookup('ip', 't', 'm', ['10.0.0.2']), 'drop', 'the Fake applies each element');
});
