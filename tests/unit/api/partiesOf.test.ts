import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { partiesOf } from '../../../services/api/disclosure/answerStream.ts';

const rec = (sender: string, sender_type: string, recipient: string, recipient_type: string) => ({
  sender,
  sender_type,
  recipient,
  recipient_type,
  destination_country: 'MY',
});

describe('the parties an answer discloses besides its subject', () => {
  it('counts people’s numbers and addresses per record, as ingest reads them, never the subject, a brand or a shortcode', () => {
    const subject = { type: 'msisdn', value: '+60198765432' };
    const parties = partiesOf(
      [
        rec('+60123456789', 'msisdn', '+60198765432', 'msisdn'),
        rec('+60123456789', 'msisdn', '+60198765432', 'msisdn'),
        // Her number sent as an alphanumeric sender id is still hers.
        rec('+60123456789', 'alphanumeric', '+60198765432', 'msisdn'),
        rec('ACMEBANK', 'alphanumeric', '+60198765432', 'msisdn'),
        rec('MY:12345', 'shortcode', '+60198765432', 'msisdn'),
        rec('+60198765432', 'msisdn', 'bob@example.com', 'email'),
        // To themselves: one record of theirs.
        rec('carol@example.com', 'email', 'carol@example.com', 'email'),
      ],
      subject,
    );
    assert.deepEqual(
      parties.map((p) => [p.type, p.value, p.records]),
      [
        ['msisdn', '+60123456789', 3],
        ['email', 'bob@example.com', 1],
        ['email', 'carol@example.com', 1],
      ],
    );
    assert.deepEqual(partiesOf([rec('+60198765432', 'msisdn', '+60198765432', 'msisdn')], subject), []);
  });
});
