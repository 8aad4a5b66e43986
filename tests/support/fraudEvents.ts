import type { FraudEvent } from '../../services/core/index.ts';

/**
 * A delivered SMS to a Malaysian mobile from an alphanumeric sender, as the fraud detector sees it; `over` sets what a
 * case is about. Shared by the detector's unit tests and benchmarks/fraudMemory.ts.
 */
export function smsFraudEvent(over: Partial<FraudEvent> & Pick<FraudEvent, 'cdr_id' | 'event_time' | 'recipient_token'>): FraudEvent {
  return {
    account_id: 'acct-1',
    channel: 'sms',
    direction: 'mt',
    status: 'delivered',
    destination_country: 'MY',
    mcc: '502',
    mnc: '12',
    recipient_range: '6012',
    recipient_number_type: 'mobile',
    sender_token: 's-brand',
    sender_type: 'alphanumeric',
    duration_ms: 0,
    ...over,
  };
}
