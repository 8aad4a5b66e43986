import type { CdrEvent } from '../../services/core/cdr/cdrEvent.ts';

/** One ordinary routing-layer record (an SMS to a Malaysian mobile), with what a test needs changed. */
export function cdrEvent(over: Partial<CdrEvent> = {}): CdrEvent {
  return {
    cdr_id: 'c-1',
    account_id: 'acct-1',
    sender: 'BRAND',
    recipient: '+60123456789',
    sender_type: 'alphanumeric',
    event_time: Date.UTC(2026, 10, 1, 12),
    submitted_at: Date.UTC(2026, 10, 1, 12),
    delivered_at: null,
    channel: 'sms',
    direction: 'mt',
    provider_id: 'op-my-maxis',
    mcc: '502',
    mnc: '12',
    destination_country: 'MY',
    ported: false,
    status: 'delivered',
    error_code: null,
    segments: 1,
    size_bytes: 140,
    duration_ms: null,
    price: 25_000,
    cost: 12_000,
    currency: 'EUR',
    client_ip: '192.0.2.1',
    ...over,
  };
}
