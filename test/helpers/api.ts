/**
 * A caller of a running service's JSON API with an API key: the status and the parsed body
 * (null for 204 No Content).
 */
export function apiCaller(port: () => number | string) {
  return async (method: string, path: string, key: string, body?: object) => {
    const response = await fetch(`http://127.0.0.1:${port()}${path}`, {
      method, headers: { 'x-api-key': key, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, body: response.status === 204 ? null : ((await response.json()) as any) };
  };
}
