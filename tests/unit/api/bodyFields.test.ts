import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dropUnreadFields, MAX_UNREAD_FIELDS, meantField, meantFields, type ObjectSchema } from '../../../services/api/bodyFields.ts';

const identifier: ObjectSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['type', 'value'],
  properties: { type: {}, value: {}, country: {}, as_sent: {} },
};
const lea: ObjectSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['authority', 'case_reference', 'legal_basis', 'identifier', 'from', 'to'],
  properties: { authority: {}, case_reference: {}, legal_basis: {}, identifier, from: {}, to: {}, confidential: {} },
};
const dsar: ObjectSchema = { type: 'object', additionalProperties: true, required: ['identifier'], properties: { identifier, from: {}, to: {} } };
const retention: ObjectSchema = { type: 'object', additionalProperties: true, properties: { now: {}, dry_run: {} } };
const leaKnown = Object.keys(lea.properties!);

describe('meantFields', () => {
  it('names the field a misspelling, another spelling or another name of it meant', () => {
    for (const [name, meant] of [
      ['form', 'from'],
      ['From', 'from'],
      ['TO', 'to'],
      ['ot', 'to'],
      ['too', 'to'],
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
      ['period_start', 'from'],
      ['until', 'to'],
      ['end_time', 'to'],
      ['through', 'to'],
      ['upto', 'to'],
    ] as const) {
      assert.deepEqual(meantFields(name, leaKnown), [meant], name);
    }
    assert.equal(meantField('contry', ['type', 'value', 'country', 'as_sent']), 'country');
    assert.equal(meantField('region', ['type', 'value', 'country', 'as_sent']), 'country');
    assert.equal(meantField('assent', ['type', 'value', 'country', 'as_sent']), 'as_sent');
    assert.equal(meantField('dryRun', ['now', 'dry_run']), 'dry_run');
  });

  it('takes any name that speaks of secrecy as meant for "confidential" (a request must never lose it to a name)', () => {
    for (const name of [
      'confidentiality',
      'conf_idential',
      'secret',
      'is_secret',
      'gag_order',
      'do_not_disclose',
      'doNotDisclose',
      'nondisclosure',
      'sealed',
      'classified',
      'restricted',
      'covert',
      'private',
      'sensitive',
      'hidden',
      'no_tipoff',
      // Found from outside (2026-12-06): each of these was welcome, and the request went to its subject's export.
      'tipping_off',
      'tipping-off',
      'tippingOff',
      'conceal',
      'concealed',
      'discreet',
      'in_camera',
      'sub_judice',
      'quiet',
      'anonymous',
      'silent',
      'withhold_from_subject',
      'do_not_notify_subject',
      'notify_subject',
      'do_not_inform',
      'hush',
      'eyes_only',
    ]) {
      assert.deepEqual(meantFields(name, leaKnown), ['confidential'], name);
    }
  });

  it('leaves alone what is no field of the request, or is a field with something after its name', () => {
    for (const name of [
      'note',
      'reason',
      'requested_by',
      'officer',
      'ticket',
      'x',
      '',
      '___',
      'tag',
      'priority',
      'tz',
      't',
      'lang',
      'channel',
      'notification_email',
      'information',
      'contact_info',
      'camera_id',
      // Found in review: secrecy words inside other words are no secrecy.
      'without_prejudice',
      'discrepancy_note',
      'secretary',
      'mortgage',
      'do_not_notify_officer',
      'hotel',
    ]) {
      assert.deepEqual(meantFields(name, leaKnown), [], name);
    }
    for (const name of ['authority_id', 'authorityId', 'case_reference_id', 'caseReferenceNo', 'identifier2', 'legal_basis_text', 'from_id']) {
      assert.deepEqual(meantFields(name, leaKnown), [], name);
    }
    // A name far longer than any field (a body may hold a megabyte-long one).
    assert.deepEqual(meantFields('from'.repeat(250_000), leaKnown), []);
    assert.deepEqual(meantFields(`case_reference${'x'.repeat(3)}`, leaKnown), []);
  });

  it('names every field a name is equally close to', () => {
    assert.deepEqual(meantFields('abcd', ['abce', 'abcf']), ['abce', 'abcf']);
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
    const b = body(
      { reason: 'copied from a hold', note: { nested: [1, 2] }, requested_by: 'officer 7', authority_id: 'PDRM-7' },
      { label: 'mobile', tz: 'UTC' },
    );
    assert.equal(dropUnreadFields(b, lea), undefined);
    assert.deepEqual(b, body());
  });

  it('refuses a field that looks meant as one the body lacks, naming both, and leaves the body as sent', () => {
    const b = body({ note: 'kept until the refusal', confidental: true });
    assert.match(dropUnreadFields(b, lea) ?? '', /^body: "confidental" is not a field of this request: did you mean "confidential"\?/);
    assert.equal(b['note'], 'kept until the refusal');
    assert.match(dropUnreadFields(body({ confidentiality: true }), lea) ?? '', /did you mean "confidential"/);
    assert.match(dropUnreadFields(body({}, { contry: 'MY' }), lea) ?? '', /^body\.identifier: "contry" .* did you mean "country"\?/);
    assert.match(dropUnreadFields({ identifier: { type: 'msisdn', value: 'x' }, form: '2020-01-01T00:00:00Z' }, dsar) ?? '', /did you mean "from"/);
    assert.match(dropUnreadFields({ identifier: { type: 'msisdn', value: 'x' }, ot: '2020-01-01T00:00:00Z' }, dsar) ?? '', /did you mean "to"/);
  });

  it('ignores another name of a field the body already has (it is not meant as that field)', () => {
    const b = body({ reference: 'internal 7', end: 'of the week', confidential: false, confidential_note: 'none' });
    assert.equal(dropUnreadFields(b, lea), undefined);
    assert.deepEqual(b, body({ confidential: false }));
  });

  it('refuses a field sent in the wrong object, naming where it belongs', () => {
    assert.equal(
      dropUnreadFields(body({}, { confidential: true }), lea),
      'body.identifier: "confidential" is not a field here: did you mean "body.confidential"?',
    );
    assert.match(dropUnreadFields(body({ country: 'MY' }), lea) ?? '', /^body: "country" is not a field here: did you mean "body\.identifier\.country"\?/);
    assert.match(dropUnreadFields(body({ as_sent: true }), lea) ?? '', /did you mean "body\.identifier\.as_sent"/);
    // Required fields are not looked for elsewhere: a top-level "type" is the caller's own.
    assert.equal(dropUnreadFields(body({ type: 'lea' }), lea), undefined);
  });

  it('refuses a name meant as "confidential" inside an object it does not read, at any depth, when the body lacks it', () => {
    // Found from outside (2026-12-06): `"options": {"confidential": true}` was dropped with "options", and the request
    // went to its subject's export.
    assert.equal(
      dropUnreadFields(body({ options: { confidential: true } }), lea),
      'body: "options" holds "confidential", which is not read there: did you mean "body.confidential"? (a field a request does not read is ignored with all it holds)',
    );
    assert.match(dropUnreadFields(body({ meta: [{ flags: { tipping_off: true } }] }), lea) ?? '', /"meta" holds "tipping_off".*"body\.confidential"/);
    // Only secrecy is looked for inside: another field's name there is the caller's own.
    const officer = body({ officer: { name: 'J. Doe', country: 'FR' } });
    assert.equal(dropUnreadFields(officer, lea), undefined);
    assert.deepEqual(officer, body());
    const deep = body({ note: Object.fromEntries([...Array.from({ length: 500 }, (_, i) => [`k${i}`, i]), ['secret', true]]) });
    assert.match(dropUnreadFields(deep, lea) ?? '', /"note" holds "secret"/);
    // Never quoted back where a name could hold a number.
    const problem = dropUnreadFields(body({ options: { '+60 12 345 6789': { confidential: true } } }), lea);
    assert.ok(problem !== undefined && !/6789/.test(problem), problem);
    // Found in review: a secrecy word as a one-word value was dropped too; a sentence is a note.
    assert.match(
      dropUnreadFields(body({ tags: ['urgent', 'confidential'] }), lea) ?? '',
      /^body: "tags" holds the word "confidential", which is not read: did you mean "body\.confidential": true\?/,
    );
    assert.match(dropUnreadFields(body({ handling: 'Tipping-Off' }), lea) ?? '', /holds the word "Tipping-Off"/);
    const note = body({ note: 'this one is not confidential', meta: { without_prejudice: true, discrepancy_note: 'x', officer: { secretary: 'A. B.' } } });
    assert.equal(dropUnreadFields(note, lea), undefined);
    // Too large to look through: refused, not dropped unread.
    const wide = body({ note: Object.fromEntries(Array.from({ length: 1_001 }, (_, i) => [`k${i}`, 0])) });
    assert.match(dropUnreadFields(wide, lea) ?? '', /^body: "note" holds more than 1000 names and values or is nested deeper than 32: not looked through/);
    let deepest: Record<string, unknown> = { x: 1 };
    for (let i = 0; i < 40; i++) deepest = { d: deepest };
    assert.match(dropUnreadFields(body({ note: deepest }), lea) ?? '', /not looked through/);
    // With the field itself in its place, what the unread object holds is the caller's own, and dropped with it.
    const sent = body({ confidential: true, options: { confidential: true }, note: { from: 'the desk', to: 'legal' } });
    assert.equal(dropUnreadFields(sent, lea), undefined);
    assert.deepEqual(sent, body({ confidential: true }));
  });

  it(`takes at most ${MAX_UNREAD_FIELDS} fields it does not read`, () => {
    const many = Object.fromEntries(Array.from({ length: MAX_UNREAD_FIELDS }, (_, i) => [`note${String(i).padStart(3, '0')}x`, i]));
    const b = body(many);
    assert.equal(dropUnreadFields(b, lea), undefined);
    assert.deepEqual(b, body());
    const tooMany = body({ ...many, one_more: 1 });
    assert.match(dropUnreadFields(tooMany, lea) ?? '', /^body: more than 64 fields this request does not read/);
    assert.equal(tooMany['one_more'], 1, 'left as sent');
  });

  it('never quotes back a field name that could hold a number', () => {
    const problem = dropUnreadFields(body({}, { confidential: true, '+60 12 345 6789': 1 }), lea);
    assert.ok(problem !== undefined && !/6789/.test(problem), problem);
    const strict: ObjectSchema = { type: 'object', additionalProperties: false, properties: { month: {} } };
    assert.equal(dropUnreadFields({ '0044 7700 900 123': 1 }, strict), 'body: a field name is not a field of this request (it takes "month" only)');
  });

  it('refuses any other field of a strict object, naming it and the field it likely meant', () => {
    const strict: ObjectSchema = { type: 'object', additionalProperties: false, properties: { month: {}, through: {} } };
    const b = { mnoth: '2026-01', other: 1 };
    assert.equal(dropUnreadFields(b, strict), 'body: "mnoth" is not a field of this request: did you mean "month"? (it takes "month", "through" only)');
    assert.deepEqual(b, { mnoth: '2026-01', other: 1 }, 'left as sent');
    assert.equal(dropUnreadFields({ month: '2026-01', note: 'x' }, strict), 'body: "note" is not a field of this request (it takes "month", "through" only)');
    assert.equal(dropUnreadFields({ month: '2026-01' }, strict), undefined);
  });

  it('the retention pass: other fields only beside an explicit dry_run, so an unread "dryRun" never runs a real pass', () => {
    const opts = { strictUnless: 'dry_run' };
    assert.equal(
      dropUnreadFields({ dryRun: true }, retention, opts),
      'body: "dryRun" is not a field of this request: did you mean "dry_run"? (without "dry_run" it takes "now", "dry_run" only)',
    );
    assert.match(dropUnreadFields({ note: 'drill' }, retention, opts) ?? '', /^body: "note" is not a field of this request \(without "dry_run"/);
    const dry = { dry_run: true, note: 'drill', ticket: 7 };
    assert.equal(dropUnreadFields(dry, retention, opts), undefined);
    assert.deepEqual(dry, { dry_run: true });
    const real = { dry_run: false, note: 'planned' };
    assert.equal(dropUnreadFields(real, retention, opts), undefined);
    assert.deepEqual(real, { dry_run: false });
    // Beside dry_run, a field meant as `now` is still refused.
    assert.match(dropUnreadFields({ dry_run: false, as_of: '2030-01-01T00:00:00Z' }, retention, opts) ?? '', /did you mean "now"/);
    assert.equal(dropUnreadFields({}, retention, opts), undefined);
  });

  it('leaves what it cannot read to the schema', () => {
    assert.equal(dropUnreadFields({ b: 1 }, { type: 'object', properties: { a: {} } }), undefined);
    assert.equal(dropUnreadFields(undefined, lea), undefined);
    assert.equal(dropUnreadFields(null, lea), undefined);
    assert.equal(dropUnreadFields([1, 2], lea), undefined);
    assert.equal(dropUnreadFields('text', lea), undefined);
    assert.equal(dropUnreadFields({ a: 1 }, undefined), undefined);
    // An identifier that is not an object is left to the schema too.
    const b = body({ note: 1 });
    b['identifier'] = 'not an object';
    assert.equal(dropUnreadFields(b, lea), undefined);
    assert.equal(b['identifier'], 'not an object');
  });
});
