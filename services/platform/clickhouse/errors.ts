import { PipelineError, classifyError } from '../../core/index.ts';

/**
 * ClickHouse's error codes (src/Common/ErrorCodes.cpp) sorted into the pipeline's error model. The same numbers
 * come from a server (`ClickHouseError.code`) and from embedded chDB (`Code: N.` in the message).
 */

/** The engine is busy, short of memory or a replica, or the network failed: the same statement can succeed later. */
const TRANSIENT = new Set([
  32, // ATTEMPT_TO_READ_AFTER_EOF (connection cut)
  159, // TIMEOUT_EXCEEDED
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  203, // NO_FREE_CONNECTION
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  236, // ABORTED
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY (replica lost its Keeper session)
  243, // NOT_ENOUGH_SPACE
  252, // TOO_MANY_PARTS (merges behind); also "too many partitions for a single INSERT block", see ingest
  279, // ALL_CONNECTION_TRIES_FAILED
  285, // TOO_FEW_LIVE_REPLICAS
  286, // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
  319, // UNKNOWN_STATUS_OF_INSERT
  341, // UNFINISHED (a mutation still running)
  394, // QUERY_WAS_CANCELLED
  425, // SYSTEM_ERROR
  473, // DEADLOCK_AVOIDED
  999, // KEEPER_EXCEPTION
  1000, // POCO_EXCEPTION
]);

/** The rows themselves cannot be stored: an insert fails for its data, not for the statement. */
const DATA = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  190, // SIZES_OF_ARRAYS_DONT_MATCH
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  407, // DECIMAL_OVERFLOW
]);

/** Credentials or permissions: configuration. */
const CONFIG = new Set([
  164, // READONLY
  192, // UNKNOWN_USER
  193, // WRONG_PASSWORD
  194, // REQUIRED_PASSWORD
  497, // ACCESS_DENIED
  516, // AUTHENTICATION_FAILED
]);

/** The statement is wrong for this schema or this server: a programming or deployment error. */
const STATEMENT = new Set([
  8, // THERE_IS_NO_COLUMN
  10, // NOT_FOUND_COLUMN_IN_BLOCK
  16, // NO_SUCH_COLUMN_IN_TABLE
  36, // BAD_ARGUMENTS
  43, // ILLEGAL_TYPE_OF_ARGUMENT
  44, // ILLEGAL_COLUMN
  46, // UNKNOWN_FUNCTION
  47, // UNKNOWN_IDENTIFIER
  48, // NOT_IMPLEMENTED
  60, // UNKNOWN_TABLE
  62, // SYNTAX_ERROR
  73, // UNKNOWN_FORMAT
  81, // UNKNOWN_DATABASE
  115, // UNKNOWN_SETTING
  184, // ILLEGAL_AGGREGATION
  215, // NOT_AN_AGGREGATE
  457, // BAD_QUERY_PARAMETER
]);

/** The ClickHouse error code of an error from @clickhouse/client or chDB, if it carries one. */
export function clickhouseCodeOf(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const c = Number(err.code);
    if (Number.isInteger(c) && c > 0) return c;
  }
  const text = err instanceof Error ? err.message : String(err);
  const m = /Code:\s*(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * A ClickHouse failure as a PipelineError. `what` names the statement for the message ("insert into cdr").
 * Data errors are `record_rejected` for inserts (the batch is split to find the record) and `storage_rejected`
 * for queries; anything unknown goes through the generic classifier (socket errors → retry, else `unexpected`).
 */
export function storageError(cause: unknown, what: string, isInsert: boolean): PipelineError {
  if (cause instanceof PipelineError) return cause;
  const first = (cause instanceof Error ? cause.message : String(cause)).split('\n')[0];
  const message = `ClickHouse ${what} failed: ${first}`;
  const code = clickhouseCodeOf(cause);
  if (code !== undefined) {
    if (TRANSIENT.has(code)) return new PipelineError('storage_unavailable', message, { cause });
    if (DATA.has(code)) return new PipelineError(isInsert ? 'record_rejected' : 'storage_rejected', message, { cause });
    if (CONFIG.has(code)) return new PipelineError('config_invalid', message, { cause });
    if (STATEMENT.has(code)) return new PipelineError('storage_rejected', message, { cause });
  }
  const generic = classifyError(cause, 'storage');
  return generic.code === 'unexpected' ? new PipelineError('unexpected', message, { cause }) : new PipelineError(generic.code, message, { cause });
}
