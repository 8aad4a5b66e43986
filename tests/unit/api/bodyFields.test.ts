import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { alignmentDistance, dropUnreadFields, meantField, type ObjectSchema } from '../../../services/api/bodyFields.ts';

const identifier: ObjectSchema = { type: 'object', additionalProperties: true, properties: { type: {}, value: {}, country: {}, as_sent: {} } };
const lea: ObjectSchema = {
  type: 'object',
  additionalProperties: true,
  properties: { authority: {}, case_reference: {}, legal_basis: {}, identifier, from: {}, to: {}, confidential: {} },
};
const leaKnown = Object.keys(lea.properties!);

describe('alignmentDistance', () => {
  it('counts edits, a swap of neighbours as one', () => {
    assert.equal(alignmentDistance('from', 'from'), 0);
    assert.equal(alignmentDistance('form', 'from'), 1);
    assert.equal(alignmentDistance('fro', 'from'), 1);
    assert.equal(alignmentDistance('confidental', 'confidential'), 1);
    assert.equal(alignmentDistance('kitten', 'sitting'), 3);
    assert.equal(alignmentDistance('', 'to'), 2);
  });
});

describe('meantField', () => {
  it('names the field a misspelling, another spelling or another name of it meant', () => {
    for (const [name, meant] of [
      ['form', 'from'],
      ['From', 'from'],
      ['TO', 'to'],
      ['caseReference', 'case_reference'],
      ['Case-Reference', 'case_reference'],
      ['case_refernce', 'case_reference'],
      ['legalBasis', 'legal_basis'],
      ['confidental', 'confidential'],
      ['Confidential', 'confidential'],
      ['autority', 'authority'],
      ['identifer', 'identifier'],
      ['identifiers', 'identifier'],
      ['start', 'from'],
      ['from_date', 'from'],
      ['until', 'to'],
      ['end_time', 'to'],
      ['secret', 'confidential'],
    ] as const) {
      assert.equal(meantField(name, leaKnown), meant, name);
    }
    assert.equal(meantField('contry', ['type', 'value', 'country', 'as_sent']), 'country');
    assert.equal(meantField('region', ['type', 'value', 'country', 'as_sent']), 'country');
    assert.equal(meantField('assent', ['type', 'value', 'country', 'as_sent']), 'as_sent');
    assert.equal(meantField('dryRun', ['now', 'dry_run']), 'dry_run');
  });

  it('leaves alone what is no field of the request, and what two fields are equally close to', () => {
    for (const name of ['note', 'reason', 'requested_by', 'officer', 'ticket', 'x', '', '___', 'tag', 'priority']) {
      assert.equal(meantField(name, leaKnown), undefined, name);
    }
    // A name far longer than any field is no misspelling of one (and is not compared letter by letter).
    assert.equal(meantField('from'.repeat(250_000), leaKnown), undefined);
    assert.equal(meantField(`case_reference${'x'.repeat(3)}`, leaKnown), undefined);
    // Short names need the exact letters: one slip from a two-letter name is too easy to hit by chance.
    assert.equal(meantField('tp', leaKnown), undefined);
    assert.equal(meantField('ab', ['ac', 'ad']), undefined);
    assert.equal(meantField('abcd', ['abce', 'abcf']), undefined);
  });
});

describe('dropUnreadFields', () => {
  const body = (extra: Record<string, unknown> = {}, identifierExtra: Record<string, unknown> = {}): Record<string, unknown> => ({
    authority: 'A',
    case_reference: 'C',
    legal_basis: 'L',
    identifier: { type: 'msisdn', value: '+60123456789', ...identifierExtra },
    from: '2026-01-01T00:00:00Z',
    to: '2026-02-01T00:00:00Z',
    ...extra,
  });

  it('removes the fields a request does not read, at every depth the schema opts in, and keeps the rest exactly', () => {
    const b = body({ reason: 'copied from a hold', note: { nested: [1, 2] }, requested_by: 'officer 7' }, { label: 'mobile', __proto__x: 1 });
    assert.equal(dropUnreadFields(b, lea), undefined);
    assert.deepEqual(b, body());
  });

  it('refuses a field that looks like a misspelling of one it reads, naming both, and leaves the body as sent', () => {
    const b = body({ note: 'kept until the refusal', confidental: true });
    const problem = dropUnreadFields(b, lea);
    assert.match(problem ?? '', /^body: "confidental" is not a field of this request: did you mean "confidential"\?/);
    assert.equal(b['note'], 'kept until the refusal');
    assert.match(dropUnreadFields(body({}, { contry: 'MY' }), lea) ?? '', /^body\.identifier: "contry" .* did you mean "country"\?/);
    assert.match(dropUnreadFields(body({ form: '2020-01-01T00:00:00Z' }), lea) ?? '', /did you mean "from"/);
  });

  it('never quotes back a field name that could hold a number', () => {
    const problem = dropUnreadFields(body({ 'from+60123456789': 1 }), lea);
    // Not a misspelling of anything (too far from every field): ignored, and so never quoted.
    assert.equal(problem, undefined);
    // Near a field and holding a run of digits: refused without its name.
    const near = dropUnreadFields(body({ 'case_ref 60123': 1 }), { ...lea, properties: { ...lea.properties, case_ref_60123x: {} } });
    assert.match(near ?? '', /^body: a field name that is not one of this request's was sent: did you mean "case_ref_60123x"\?/);
  });

  it('refuses any other field of a strict object (the retention pass), naming it and the field it likely meant', () => {
    const strict: ObjectSchema = { type: 'object', additionalProperties: false, properties: { now: {}, dry_run: {} } };
    const b = { dryRun: true, other: 1 };
    assert.equal(dropUnreadFields(b, strict), 'body: "dryRun" is not a field of this request: did you mean "dry_run"? (it takes "now", "dry_run" only)');
    assert.deepEqual(b, { dryRun: true, other: 1 }, 'left as sent');
    assert.equal(dropUnreadFields({ dry_run: true, note: 'x' }, strict), 'body: "note" is not a field of this request (it takes "now", "dry_run" only)');
    assert.equal(dropUnreadFields({ dry_run: true }, strict), undefined);
  });

  it('leaves what it cannot read to the schema', () => {
    // An object whose schema says nothing about other fields.
    assert.equal(dropUnreadFields({ b: 1 }, { type: 'object', properties: { a: {} } }), undefined);
    assert.equal(dropUnreadFields(undefined, lea), undefined);
    assert.equal(dropUnreadFields([1, 2], lea), undefined);
    assert.equal(dropUnreadFields('text', lea), undefined);
    assert.equal(dropUnreadFields({ a: 1 }, undefined), undefined);
  });
});
