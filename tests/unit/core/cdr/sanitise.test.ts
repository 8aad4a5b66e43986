import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sanitiseClientIp, sanitiseErrorCode } from '../../../../services/core/index.ts';

describe('error_code is a bounded code, never free text', () => {
  const kept: [string, string][] = [
    ['MAP:27', 'MAP:27'],
    ['SMPP:0x0000000B', 'SMPP:0x0000000B'],
    ['SMTP:550 5.1.1', 'SMTP:550 5.1.1'],
    ['SIP:486 Busy Here', 'SIP:486 Busy Here'],
    ['  WA:131026 ', 'WA:131026'],
    ['DIAMETER:5030 3.2.1', 'DIAMETER:5030 3.2.1'],
    ['Q.850:16', 'Q.850:16'],
    // Found in review: SMTP enhanced codes, a vendor and result code, an address, a date, a version are no numbers.
    ['SMTP:550 5.7.133', 'SMTP:550 5.7.133'],
    ['451 4.7.500', '451 4.7.500'],
    ['DIAMETER 10415 5030', 'DIAMETER 10415 5030'],
    ['SMSC 10.20.30.40 timeout', 'SMSC 10.20.30.40 timeout'],
    ['ERR 2024-11-30', 'ERR 2024-11-30'],
    ['V1.2.3-45678', 'V1.2.3-45678'],
  ];
  for (const [raw, code] of kept) {
    it(`keeps ${JSON.stringify(raw)}`, () => assert.deepEqual(sanitiseErrorCode(raw).code, code));
  }
  const scrubbed: [string, string | null][] = [
    ['delivery failed for +60 12-345 6789 (alice@example.com)', 'delivery failed for'],
    ['ERR 60123456789', null],
    ['user alice@example.com unknown', 'user'],
    ['SMTP:550 5.1.1 Bob.Smith@corp.example', 'SMTP:550 5.1.1'],
    ['E1\nCaller: +60123456789', 'E1'],
    ['<script>', null],
    ['X'.repeat(100), 'X'.repeat(40)],
    // Found from outside (2026-12-06): numbers written with separators, or behind a hex prefix.
    ['SMPP:11 invalid dest 012-345 6789', null],
    ['MAP:27 60 12 345 6789', null],
    ['UNKNOWN_SUB 60.12.345.6789', null],
    ['ERR 0x60123456789', null],
    // Found from outside (2026-12-06): a cut inside an email's local part kept the part before it.
    ['bounce alice.smith+tag@example.com', 'bounce'],
    ['550 mailbox john.doe%work@example.com', '550 mailbox'],
    ['user bob.jones/x@example.com', 'user'],
    ['bounce jörg@bücher.de', 'bounce'],
    ['rcpt=dave.brown@example.com', null],
    ['alice.smith+tag@example.com', null],
  ];
  for (const [raw, code] of scrubbed) {
    it(`cuts ${JSON.stringify(raw.slice(0, 40))} to ${JSON.stringify(code)} and reports it`, () => {
      const r = sanitiseErrorCode(raw);
      assert.equal(r.code, code);
      assert.equal(r.dropped, true);
      assert.ok(!/\d{7,}/.test(r.code ?? '') && !(r.code ?? '').includes('@'), 'nothing phone- or email-shaped remains');
      assert.ok(!/alice|smith|john|doe|bob|jones|dave|brown|j$/i.test(r.code ?? ''), 'no part of a local part remains');
    });
  }
  it('null stays null and is not counted', () => assert.deepEqual(sanitiseErrorCode(null), { code: null, dropped: false }));
  it("drops a code that holds the record's own sender or recipient, however it is written", () => {
    const parties = ['+60123456789', 'ACMEBANK'];
    assert.deepEqual(sanitiseErrorCode('ERR 345-67 89', parties), { code: null, dropped: true });
    assert.deepEqual(sanitiseErrorCode('E 3 4 5 6 7 8 9', parties), { code: null, dropped: true });
    // Another record's code with the same shape stays; so does a code with fewer digits than the tail.
    assert.deepEqual(sanitiseErrorCode('ERR 345-67 88', parties), { code: 'ERR 345-67 88', dropped: false });
    assert.deepEqual(sanitiseErrorCode('MAP:27', parties), { code: 'MAP:27', dropped: false });
    // A party written in another script's digits is the same number.
    assert.deepEqual(sanitiseErrorCode('dest:9876:543:210', ['+९१ ९८७६५ ४३२१०']), { code: null, dropped: true });
  });
});

describe('client_ip must be an IP address', () => {
  const kept: [string, string][] = [
    ['192.0.2.7', '192.0.2.7'],
    [' 198.51.100.255 ', '198.51.100.255'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['::ffff:192.0.2.7', '192.0.2.7'],
    ['fe80::1%eth0', 'fe80::1'],
  ];
  for (const [raw, ip] of kept) it(`keeps ${raw} as ${ip}`, () => assert.deepEqual(sanitiseClientIp(raw), { ip, dropped: false }));
  for (const raw of ['1.2.3', '0x7f.1', '999.1.1.1', "'; DROP TABLE cdr; --", 'x'.repeat(5000), '+60123456789', 'localhost']) {
    it(`drops ${JSON.stringify(raw.slice(0, 30))}`, () => assert.deepEqual(sanitiseClientIp(raw), { ip: null, dropped: true }));
  }
  it('answers the same the second time and after its memory of parsed spellings filled and emptied', () => {
    const first = kept.map(([raw]) => sanitiseClientIp(raw));
    for (let i = 0; i < 5000; i++) sanitiseClientIp(`2001:db8::${i.toString(16)}`);
    assert.deepEqual(
      kept.map(([raw]) => sanitiseClientIp(raw)),
      first,
    );
    assert.deepEqual(sanitiseClientIp('2001:DB8::0:1'), { ip: '2001:db8::1', dropped: false });
    assert.deepEqual(sanitiseClientIp('2001:db8::g'), { ip: null, dropped: true });
    assert.deepEqual(sanitiseClientIp('2001:db8::g'), { ip: null, dropped: true });
  });
});
