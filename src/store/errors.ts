/** A request the store cannot answer because an argument is wrong; `parameter` names it. */
export class InvalidArgumentError extends Error {
  override readonly name = 'InvalidArgumentError';
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(`${parameter}: ${message}`);
  }
}

/** What was asked for does not exist (an unknown market, an order that is not the caller's). */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  constructor(
    readonly what: 'market' | 'order' | 'strategy' | 'backtest' | 'risk limit' | 'risk event' | 'credential' | 'model' | 'user' | 'API key',
    readonly id: string,
  ) {
    super(`unknown ${what} ${JSON.stringify(id)}`);
  }
}
