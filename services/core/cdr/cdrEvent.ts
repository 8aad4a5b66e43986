/** The CDR event as decoded from Avro schema v1 (`schemas/cdr-event-v1.avsc`). Times are epoch milliseconds UTC. */
export const SENDER_TYPES = ['msisdn', 'alphanumeric', 'shortcode', 'email'] as const;
export const CHANNELS = ['sms', 'mms', 'email', 'voice', 'whatsapp', 'viber', 'rcs', 'push'] as const;
export const DIRECTIONS = ['mt', 'mo'] as const;
export const STATUSES = ['delivered', 'failed', 'rejected', 'expired', 'pending'] as const;

export type SenderType = (typeof SENDER_TYPES)[number];
export type Channel = (typeof CHANNELS)[number];
export type Direction = (typeof DIRECTIONS)[number];
export type Status = (typeof STATUSES)[number];

export interface CdrEvent {
  cdr_id: string;
  account_id: string;
  sender: string;
  recipient: string;
  sender_type: SenderType;
  event_time: number;
  submitted_at: number;
  delivered_at: number | null;
  channel: Channel;
  direction: Direction;
  provider_id: string;
  mcc: string | null;
  mnc: string | null;
  destination_country: string | null;
  ported: boolean;
  status: Status;
  error_code: string | null;
  segments: number;
  size_bytes: number;
  duration_ms: number | null;
  price: number;
  cost: number;
  currency: string;
  client_ip: string | null;
}
