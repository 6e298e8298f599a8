/**
 * The typed nftables layer: Transaction text (what `nft -f -` gets), error
 * parsing, and the Fake's kernel-like semantics (atomic transactions,
 * references, element clashes). test/e2e/nft-fake-vs-kernel.test.ts checks
 * that the Fake and the real nft end in the same state.
 */
import t from 'tap';
import { FakeNft } from '../../src/backends/nftables/nft/fake.js';
import { chain, map, mapElement, rule, set, setElement, table } from '../../src/backends/nftables/nft/objects.js';
import { NftError, parseNftError } from '../../src/backends/nftables/nft/run.js';
import { Transaction } from '../../src/backends/nftables/nft/transaction.js';

const tx = (): Transaction => new Transaction('ip', 't');

t.test('transaction text', async (t) => {
  const x = tx()
    .add(table('my table'))
    .add(chain('base', { type: 'nat', hook: 'prerouting', priority: -100 }))
    .add(chain('c', { comment: 'a "quoted" comment' }))
    .flush(chain('c'))
    .add(rule('c', 'ip daddr 10.0.0.1 drop', 'why'))
    .insert({ ...rule('c', 'accept'), index: 0 })
    .replace({ ...rule('c', 'counter'), handle: 7 })
    .delete({ ...rule('c', ''), handle: 7 })
    .add(set('s', { type: 'ipv4_addr', flags: ['dynamic', 'timeout'], timeout: 60 }))
    .add(map('m', { type: 'ipv4_addr . inet_proto . inet_service : verdict', comment: 'dispatch' }))
    .add(mapElement('m', ['10.0.0.1', 'tcp', '80'], ['goto c'], { comment: 'ns/a:http' }))
    .delete(mapElement('m', ['10.0.0.1', 'tcp', '80'], []))
    .add(setElement('s', ['10.0.0.2'], { timeout: 5 }))
    .destroy(chain('gone'));
  t.equal(
    x.toText(),
    [
      'add table ip t { comment "my table" ; }',
      'add chain ip t base { type nat hook prerouting priority -100 ; }',
      'add chain ip t c { comment "a quoted comment" ; }',
      'flush chain ip t c',
      'add rule ip t c ip daddr 10.0.0.1 drop comment "why"',
      'insert rule ip t c index 0 accept',
      'replace rule ip t c handle 7 counter',
      'delete rule ip t c handle 7',
      'add set ip t s { type ipv4_addr ; flags dynamic,timeout ; timeout 60s ; }',
      'add map ip t m { type ipv4_addr . inet_proto . inet_service : verdict ; comment "dispatch" ; }',
      'add element ip t m { 10.0.0.1 . tcp . 80 comment "ns/a:http" : goto c }',
      'delete element ip t m { 10.0.0.1 . tcp . 80 }',
      'add element ip t s { 10.0.0.2 timeout 5s }',
      'destroy chain ip t gone',
      '',
    ].join('\n'),
  );
  t.same(x.counts()['add rule'], 1);
  t.throws(() => tx().flush(rule('c', 'x')), /not an operation/);
  t.throws(() => tx().delete(rule('c', 'x')), /needs the rule's handle/);
  t.throws(() => tx().add(mapElement('m', ['1.2.3.4'], [])), /needs a value/);
  t.equal(tx().add(chain('x', { comment: 'y'.repeat(200) })).toText().length, 'add chain ip t x { comment "'.length + 128 + '" ; }\n'.length, 'comments cut at 128 bytes');
});

t.test("nft's error output is parsed: message, line and that line's text", async (t) => {
  const input = 'add table ip t\nadd element ip t m { 1.2.3.4 : drop }\n';
  const stderr = '/dev/stdin:2:22-28: Error: Could not process rule: File exists\nadd element ip t m { 1.2.3.4 : drop }\n                     ^^^^^^^\n';
  t.same(parseNftError(stderr, input), { message: 'Could not process rule: File exists', line: 2, lineText: 'add element ip t m { 1.2.3.4 : drop }' });
  t.same(parseNftError('Error: syntax error\n', input), { message: 'syntax error' });
});

t.test('the Fake: atomic, strict about references and clashes', async (t) => {
  const fake = new FakeNft();
  fake.run(
    tx()
      .add(table())
      .add(chain('a'))
      .add(chain('b'))
      .add(rule('a', 'jump b'))
      .add(map('m', { type: 'ipv4_addr : verdict' }))
      .add(mapElement('m', ['1.2.3.4'], ['goto b']))
      .add(set('s', { type: 'ipv4_addr' }))
      .add(rule('a', 'ip saddr @s drop')),
  );
  const before = fake.dump('ip', 't');
  const fails = (x: Transaction, re: RegExp, msg: string): void => {
    t.throws(() => fake.run(x), re, msg);
    t.equal(fake.dump('ip', 't'), before, `${msg}: nothing changed`);
  };
  fails(tx().add(chain('new')).delete(chain('b')), /Device or resource busy.*chain b is used/, 'a referenced chain cannot go');
  fails(tx().flush(chain('a')).delete(chain('b')), /busy.*element m/, 'still referenced by the map element');
  fails(tx().delete(set('s', { type: 'ipv4_addr' })), /busy/, 'a referenced set cannot go');
  fails(tx().add(rule('a', 'goto nowhere')), /No such file.*chain nowhere/, 'jump targets must exist');
  fails(tx().add(rule('a', 'ip saddr @nope drop')), /No such file.*set nope/, 'sets must exist');
  fails(tx().add(mapElement('m', ['1.2.3.4'], ['drop'])), /File exists.*another value/, 'an element with another value clashes');
  fails(tx().add(mapElement('m', ['1.2.3.4', 'tcp'], ['drop'])), /needs 1 parts/, 'key arity');
  fails(tx().delete(chain('zz')), /No such file/, 'delete of a missing chain');
  fails(tx().create(chain('a')), /File exists/, 'create of an existing chain');
  fails(tx().add(chain('a', { type: 'filter', hook: 'input', priority: 0 })), /File exists/, 'a regular chain re-declared as a base chain');
  const err = (() => {
    try {
      fake.run(tx().add(chain('ok')).add(rule('ok', 'accept')).delete(chain('b')));
    } catch (e) {
      return e as NftError;
    }
    return undefined;
  })();
  t.equal(err?.line, 3, 'the failing line');
  t.equal(err?.lineText, 'delete chain ip t b');

  // What does work.
  fake.run(tx().add(mapElement('m', ['1.2.3.4'], ['goto b'])).add(chain('a')).destroy(chain('zz')));
  t.equal(fake.dump('ip', 't'), before, 'add of what exists and destroy of what does not change nothing');
  fake.run(tx().flush(chain('a')).delete(mapElement('m', ['1.2.3.4'], [])).delete(chain('b')).delete(set('s', { type: 'ipv4_addr' })));
  t.same(fake.chainNames('ip', 't'), ['a']);
  fake.run(tx().add(chain('c')).add(rule('c', 'counter')).delete(chain('c')));
  t.same(fake.chainNames('ip', 't'), ['a'], 'a chain with rules can be deleted when nothing refers to it');
  fake.run(tx().add(rule('a', 'accept')).add(rule('a', 'drop')).flush(table()));
  t.same(fake.rules('ip', 't', 'a'), [], 'flush table empties the chains');
  fake.run(tx().add(rule('a', 'accept')).add(rule('a', 'drop')));
  const h = fake.table('ip', 't')!.chains.get('a')!.rules[0]!.handle;
  fake.run(tx().insert({ ...rule('a', 'counter'), handle: h }).replace({ ...rule('a', 'reject'), handle: h }));
  t.same(fake.rules('ip', 't', 'a'), ['counter', 'reject', 'drop'], 'insert before and replace by handle');
  fake.failNext = 1;
  t.throws(() => fake.run(tx().add(chain('x'))), /injected/);
  t.notOk(fake.chainNames('ip', 't').includes('x'));
  t.throws(() => fake.run(new Transaction('ip', 'missing').add(chain('x'))), /No such file.*table/, 'no table');
});

t.test('dump: loadable, canonical or in list order', async (t) => {
  const fake = new FakeNft();
  fake.run(tx().add(table()).add(chain('z')).add(chain('a')).add(rule('z', 'jump a')).add(set('s', { type: 'ipv4_addr' })).add(setElement('s', ['10.0.0.2'])).add(setElement('s', ['10.0.0.1'])));
  t.equal(
    fake.dump('ip', 't'),
    'add table ip t\nadd set ip t s { type ipv4_addr ; }\nadd chain ip t a\nadd chain ip t z\nadd rule ip t z jump a\nadd element ip t s { 10.0.0.1 }\nadd element ip t s { 10.0.0.2 }\n',
  );
  t.match(fake.dump('ip', 't', { order: 'list' }), /add chain ip t z\nadd chain ip t a\n/);
  const again = new FakeNft();
  const replay = new Transaction('ip', 't');
  // The dump is valid input: replaying it line by line through raw rules gives the same state.
  for (const line of fake.dump('ip', 't').trim().split('\n')) replay.operations.push({ verb: 'add', obj: parseForTest(line) });
  again.run(replay);
  t.equal(again.dump('ip', 't'), fake.dump('ip', 't'));
});

/** Just enough of a parser for the dump lines above. */
function parseForTest(line: string): Parameters<Transaction['add']>[0] {
  const m = /^add (\w+) ip t ?(\S*) ?(.*)$/.exec(line)!;
  const [, kind, name, rest] = m;
  if (kind === 'table') return table();
  if (kind === 'chain') return chain(name!);
  if (kind === 'set') return set(name!, { type: 'ipv4_addr' });
  if (kind === 'rule') return rule(name!, rest!);
  return setElement(name!, [/\{ (\S+) \}/.exec(rest!)![1]!]);
}
