import { identifierShaped, recordIdShaped } from '../cdr/validate.ts';

/**
 * Why an account or provider id can match nothing (ingest would have refused it, core/cdr/validate.ts), in words that
 * never quote the value back — an identifier in its place is personal data (found from outside: a statement's 404
 * quoted a phone number); undefined when it could be an id. The API and the CLI both ask (found from outside: the CLI
 * reading the store itself skipped the check, and stored a re-rate run for a phone number). A space in a query
 * string's value is most often a raw `+`.
 */
export function impossibleIdProblem(
  field: string,
  kind: 'account' | 'provider',
  value: string,
  from: 'query' | 'path' | 'body' | 'option',
): string | undefined {
  const what = kind === 'account' ? 'an account id' : 'a provider id';
  if (identifierShaped(value)) return `${field}: ${what} is never a phone number or an email address`;
  if (!recordIdShaped(value)) {
    const plus = from === 'query' && value.includes(' ') ? "; in a query string a raw '+' reads as a space (send it as %2B)" : '';
    return `${field}: ${what} is 1-128 printable ASCII characters with no spaces${plus}`;
  }
  return undefined;
}
