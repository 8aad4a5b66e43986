import type { PseudonymisedEvent } from '../../services/core/index.ts';

/**
 * A delivered SMS to a Malaysian mobile from an alphanumeric sender, as `cdr.pseudonymised` carries it (schema v1.1);
 * `over` sets what a case is about. Shared by the codec's round trip and the fraud service's batch tests.
 */
export function pseudonymisedEvent(over: Partial<PseudonymisedEvent> = {}): PseudonymisedEvent {
  return {
    cdr_id: 'c-1',
    account_id: 'a',
    sender_token: 'ab'.repeat(16),
    recipient_token: 'cd'.repeat(16),
    token_month: '2026-11',
    sender_type: 'alphanumeric',
    recipient_type: 'msisdn',
    event_time: 1,
    submitted_at: 1,
    delivered_at: null,
    channel: 'sms',
    direction: 'mt',
    provider_id: 'p',
    mcc: '',
    mnc: '',
    destination_country: 'MY',
    sender_country: 'MY',
    ported: false,
    status: 'delivered',
    error_code: '',
    segments: 1,
    size_bytes: 1,
    duration_ms: 0,
    price: 1,
    cost: 1,
    currency: 'EUR',
    late: false,
    sender_range: '',
    sender_number_type: '',
    recipient_range: '6017',
    recipient_number_type: 'mobile',
    ...over,
  };
}
