/**
 * Typed errors. Each carries a stable string code users can switch on and the
 * RFC 6455 close code (or HTTP status for handshake failures) it maps to.
 *
 * Three families are kept apart on purpose:
 *  - ProtocolError & co: the peer broke the protocol -> we fail the connection.
 *  - UsageError: the application misused the API (send after close, bad option).
 *  - HandshakeError: the opening handshake failed, with an HTTP status.
 */

export class LifelineError extends Error {
  /** Stable machine-readable code, e.g. 'WS_ERR_INVALID_OPCODE'. */
  readonly code: string;
  /** RFC 6455 close code this error maps to (0 when it has none). */
  readonly closeCode: number;
  constructor(code: string, closeCode: number, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.closeCode = closeCode;
  }
}

/** The peer violated RFC 6455 framing rules (close code 1002). */
export class ProtocolError extends LifelineError {
  constructor(code: string, message: string, closeCode = 1002) {
    super(code, closeCode, message);
  }
}

/** A text message or close reason was not valid UTF-8 (close code 1007). */
export class InvalidPayloadError extends LifelineError {
  constructor(code: string, message: string) {
    super(code, 1007, message);
  }
}

/** A message or frame exceeded a configured size limit (close code 1009). */
export class MessageTooBigError extends LifelineError {
  constructor(code: string, message: string) {
    super(code, 1009, message);
  }
}

/** A policy (rate, origin, buffered bytes...) was violated (close code 1008). */
export class PolicyViolationError extends LifelineError {
  constructor(code: string, message: string) {
    super(code, 1008, message);
  }
}

/** The application misused the API. Never caused by peer input. */
export class UsageError extends LifelineError {
  constructor(code: string, message: string) {
    super(code, 0, message);
  }
}

/** The opening handshake failed. `status` is the HTTP status to answer with (server) or that was received (client). */
export class HandshakeError extends LifelineError {
  readonly status: number;
  constructor(code: string, status: number, message: string) {
    super(code, 1002, message);
    this.status = status;
  }
}

/** The connection was closed abnormally (no close frame: 1006). */
export class ConnectionLostError extends LifelineError {
  constructor(code: string, message: string) {
    super(code, 1006, message);
  }
}
