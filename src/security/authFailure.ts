/**
 * A request refused by authentication (docs/SECURITY.md): its HTTP status, a stable code, a
 * message that never tells whether a user exists, and when to retry (a locked login).
 */
export class AuthFailure extends Error {
  override readonly name = 'AuthFailure';
  constructor(
    readonly status: 401 | 403 | 404 | 409 | 429,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}
